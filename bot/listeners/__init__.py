"""Every listener is registered here, once, for both `serve` and `socket`."""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Callable
from typing import Any

from slack_bolt import App, BoltResponse
from sqlalchemy.exc import SQLAlchemyError

from bot.listeners import actions, commands, connect, events, home
from bot.services import Services

log = logging.getLogger(__name__)
OTHER_WORKSPACE = (
    "This Knowlify bot is set up for another Slack workspace and its Knowlify account, so it can't act "
    "here. Ask your admin to install knowlify-slack for this workspace."
)


def request_team(body: dict[str, Any]) -> str | None:
    """The workspace a request comes from, whatever its kind (command, event, interaction)."""
    team = (
        body.get("team_id") or (body.get("team") or {}).get("id") or (body.get("user") or {}).get("team_id")
    )
    return str(team) if team else None


def register_listeners(app: App, services: Services) -> None:
    if services.workspaces is not None:
        connect.register_middleware(app, services, services.workspaces)

    @app.middleware
    def only_our_workspace(body: dict[str, Any], next: Callable[[], BoltResponse]) -> BoltResponse | None:
        """One workspace's Knowlify key is never used for another's request."""
        team = request_team(body)
        if services.team_id and team and team != services.team_id:
            log.warning("request from workspace %s refused: this bot serves %s", team, services.team_id)
            if body.get("command"):
                return BoltResponse(status=200, body=OTHER_WORKSPACE)
            return BoltResponse(status=200, body="")
        return next()

    @app.error
    def on_error(error: Exception) -> BoltResponse:
        """Listeners run before Slack gets its answer (process_before_response), so the answer can
        say what happened: storage down → 503 and Slack delivers the event again later (nothing is
        lost); a bug → logged with a reference and 200, since a retry would fail the same way."""
        if isinstance(error, SQLAlchemyError):
            log.error("database unavailable, Slack will deliver this again: %s", type(error).__name__)
            return BoltResponse(status=503, body="")
        ref = uuid.uuid4().hex[:8]
        log.exception("listener failed (ref %s)", ref, exc_info=error)
        return BoltResponse(status=200, body="")

    commands.register(app, services)
    actions.register(app, services)
    events.register(app, services)
    home.register(app, services)
    if services.workspaces is not None:
        connect.register(app, services, services.workspaces)

    # Anything else Slack sends is acknowledged with 200: a 404 would make Slack retry it.
    @app.event(re.compile(".*"))
    def _ignore(event: dict) -> None:
        return None

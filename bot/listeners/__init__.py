"""Every listener is registered here, once, for both `serve` and `socket`."""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Callable
from typing import Any

from slack_bolt import App, BoltContext, BoltResponse
from sqlalchemy.exc import SQLAlchemyError

from bot.listeners import actions, commands, connect, events, home
from bot.services import SERVICES_KEY, Services, services_of
from bot.ui.card import RETRY_ACTION
from bot.ui.modal import CALLBACK_ID

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


def only_our_workspace(
    body: dict[str, Any], context: BoltContext, next: Callable[[], BoltResponse]
) -> BoltResponse | None:
    """One workspace's Knowlify key is never used for another's request."""
    services = services_of(context)
    team = request_team(body)
    if services.team_id and team and team != services.team_id:
        log.warning("request from workspace %s refused: this bot serves %s", team, services.team_id)
        if body.get("command"):
            return BoltResponse(status=200, body=OTHER_WORKSPACE)
        return BoltResponse(status=200, body="")
    return next()


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


def ignore(event: dict[str, Any]) -> None:
    """Anything else Slack sends is acknowledged with 200: a 404 would make Slack retry it."""
    return None


def register_listeners(app: App, services: Services) -> None:
    """The one place where listeners meet the app; the listeners themselves are plain functions
    (ack, body, client, context, …) that unit tests call with mocks."""

    if services.workspaces is None:

        @app.middleware
        def single_workspace(
            body: dict[str, Any], context: BoltContext, next: Callable[[], BoltResponse]
        ) -> BoltResponse | None:
            """Runs first: every listener finds the bot's services in its context (services_of);
            a request from another workspace goes no further. One middleware, not two: each
            costs Bolt an argument-injection pass on every request, the acks' included."""
            context[SERVICES_KEY] = services
            return only_our_workspace(body, context, next)

    else:  # several workspaces: this request's workspace's services

        @app.middleware
        def provide_services(context: BoltContext, next: Callable[[], BoltResponse]) -> BoltResponse | None:
            context[SERVICES_KEY] = services
            return next()

        app.middleware(connect.workspace_bound)
        app.middleware(only_our_workspace)
    app.error(on_error)
    if services.workspaces is not None:
        connect.register(app)

    app.command("/knowlify")(commands.on_command)
    app.view(CALLBACK_ID)(commands.on_submit)
    app.action(RETRY_ACTION)(actions.on_retry)
    app.event("message")(events.on_message)
    app.event("reaction_added")(events.on_reaction)
    app.event("app_home_opened")(home.on_home)
    app.event(re.compile(".*"))(ignore)

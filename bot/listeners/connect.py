"""Several workspaces: connecting each workspace's Knowlify key from App Home, and uninstalling.

Registered only when `serve` runs distributed. Who may connect, replace or remove the key: a
workspace admin or owner (users.info, with this workspace's token) or the person who installed the
app. That is checked when the button is pressed and again when the modal is submitted, since a
submission can be forged without the button ever being shown.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
from collections.abc import Callable
from typing import Any

from slack_bolt import Ack, App, BoltContext, BoltResponse
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.core.mrkdwn import escape
from bot.services import SERVICES_KEY, Services, services_of
from bot.slack_ops import PermissionUnknown, SlackOps, make_client
from bot.ui.modal import CALLBACK_ID as CREATE_MODAL
from bot.workspaces import Workspaces

log = logging.getLogger(__name__)

CONNECT_ACTION = "knowlify_connect"
CONNECT_MODAL = "knowlify_connect_modal"
KEY_BLOCK, KEY_INPUT = "knowlify_key", "key"
REMOVE_BLOCK, REMOVE_INPUT = "knowlify_remove", "remove"
NOT_ALLOWED = "Only a workspace admin or owner, or the person who installed Knowlify, can change its key."


def not_connected_text(installer: str | None) -> str:
    who = f"<@{installer}> (who installed the app) or a workspace admin" if installer else "A workspace admin"
    return (
        "Knowlify isn't connected in this workspace yet, so nothing was started. "
        f"{who} can connect it: open the Knowlify app's *Home* tab and press *Connect Knowlify*."
    )


def may_manage(workspaces: Workspaces, services: Services, team_id: str, user_id: str) -> bool:
    if user_id and user_id == workspaces.installs.installer(team_id):
        return True
    try:
        return services.slack.is_admin(user_id, team_id)
    except PermissionUnknown:  # Slack could not say: no button, and no change to the key
        return False


def home_blocks(workspaces: Workspaces, services: Services, team_id: str, user_id: str) -> list[dict[str, Any]]:
    """The App Home section about the workspace's Knowlify connection (a button only for those
    who may use it)."""
    row = workspaces.connected(team_id)
    state = (
        f":white_check_mark: Knowlify is connected (key ending `{escape(row.last4)}`)."
        if row
        else ":warning: Knowlify isn't connected in this workspace yet."
    )
    if not may_manage(workspaces, services, team_id, user_id):
        if row is None:
            state += " " + not_connected_text(workspaces.installs.installer(team_id)).split(". ", 1)[1]
        return [{"type": "section", "text": {"type": "mrkdwn", "text": state}}, {"type": "divider"}]
    return [
        {
            "type": "section",
            "text": {"type": "mrkdwn", "text": state},
            "accessory": {
                "type": "button",
                "action_id": CONNECT_ACTION,
                "text": {"type": "plain_text", "text": "Replace or remove key" if row else "Connect Knowlify"},
                **({} if row else {"style": "primary"}),
            },
        },
        {"type": "divider"},
    ]


def connect_modal(last4: str | None) -> dict[str, Any]:
    blocks: list[dict[str, Any]] = [
        {
            "type": "input",
            "block_id": KEY_BLOCK,
            "optional": last4 is not None,
            "label": {"type": "plain_text", "text": "Knowlify API key"},
            "hint": {
                "type": "plain_text",
                "text": "kn_ followed by 64 hex characters, from the Developer tab of your Knowlify dashboard. "
                "Videos and credits go to that key's account.",
            },
            "element": {
                "type": "plain_text_input",
                "action_id": KEY_INPUT,
                "placeholder": {"type": "plain_text", "text": "kn_…"},
            },
        }
    ]
    if last4 is not None:
        blocks.insert(
            0,
            {
                "type": "section",
                "text": {
                    "type": "mrkdwn",
                    "text": f"The connected key ends in `{escape(last4)}`. Paste a new key to replace it.",
                },
            },
        )
        blocks.append(
            {
                "type": "input",
                "block_id": REMOVE_BLOCK,
                "optional": True,
                "label": {"type": "plain_text", "text": "Remove"},
                "element": {
                    "type": "checkboxes",
                    "action_id": REMOVE_INPUT,
                    "options": [
                        {
                            "text": {"type": "plain_text", "text": "Remove the connected key"},
                            "value": "remove",
                        }
                    ],
                },
            }
        )
    return {
        "type": "modal",
        "callback_id": CONNECT_MODAL,
        "title": {"type": "plain_text", "text": "Connect Knowlify"},
        "submit": {"type": "plain_text", "text": "Save"},
        "close": {"type": "plain_text", "text": "Cancel"},
        "blocks": blocks,
    }


def _done_view(text: str) -> dict[str, Any]:
    return {
        "type": "modal",
        "title": {"type": "plain_text", "text": "Connect Knowlify"},
        "close": {"type": "plain_text", "text": "Done"},
        "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": text}}],
    }


def _team_of(body: dict[str, Any]) -> str:
    return str(body.get("team_id") or (body.get("team") or {}).get("id") or "")


def workspace_bound(
    body: dict[str, Any], context: BoltContext, next: Callable[[], BoltResponse]
) -> BoltResponse | None:
    """Runs right after the services are provided: the listeners of this request get a copy made
    for its workspace (its id, its bot user, Slack calls with its token, failing fast like every
    listener's), and until the workspace's key is connected nothing that would reach Knowlify runs."""
    shared = services_of(context)
    workspaces: Workspaces = shared.workspaces
    team = context.team_id or _team_of(body)
    token = context.bot_token or ""
    context[SERVICES_KEY] = dataclasses.replace(
        shared,
        team_id=team or None,
        bot_user_id=context.bot_user_id,
        slack=SlackOps(make_client(token, shared.settings.slack_api_base, fast=True)),
    )
    if team and workspaces.connected(team) is None:
        if body.get("command"):
            return BoltResponse(status=200, body=not_connected_text(workspaces.installs.installer(team)))
        event = (body.get("event") or {}).get("type")
        view = (body.get("view") or {}).get("callback_id")
        if event in ("message", "reaction_added") or view == CREATE_MODAL:
            return BoltResponse(status=200, body="")
    return next()


def on_connect(ack: Ack, body: dict[str, Any], client: WebClient, context: BoltContext) -> None:
    ack()
    services = services_of(context)
    workspaces: Workspaces = services.workspaces
    team, user = _team_of(body), (body.get("user") or {}).get("id", "")
    if not may_manage(workspaces, services, team, user):
        log.warning("connect button pressed by %s in %s, who may not manage the key: ignored", user, team)
        return
    row = workspaces.connected(team)
    try:
        client.views_open(trigger_id=body["trigger_id"], view=connect_modal(row.last4 if row else None))
    except SlackApiError as exc:
        log.warning("connect modal not opened: %s", exc.response.get("error"))


def on_connect_submit(
    ack: Ack, body: dict[str, Any], view: dict[str, Any], client: WebClient, context: BoltContext
) -> None:
    services = services_of(context)
    workspaces: Workspaces = services.workspaces
    team, user = _team_of(body), (body.get("user") or {}).get("id", "")
    values = (view.get("state") or {}).get("values") or {}
    key = str(((values.get(KEY_BLOCK) or {}).get(KEY_INPUT) or {}).get("value") or "").strip()
    remove = bool(((values.get(REMOVE_BLOCK) or {}).get(REMOVE_INPUT) or {}).get("selected_options"))
    if not may_manage(workspaces, services, team, user):
        log.warning("connect submission from %s in %s, who may not manage the key: refused", user, team)
        ack(response_action="errors", errors={KEY_BLOCK: NOT_ALLOWED})
        return
    if remove and not key:
        removed = workspaces.disconnect(team)
        ack(
            response_action="update",
            view=_done_view(
                "The Knowlify key was removed. `/knowlify` answers that Knowlify isn't connected "
                "until someone connects a key again."
                if removed
                else "No key was connected."
            ),
        )
        _refresh_home(services, client, team, user)
        return
    if not key:
        ack(response_action="errors", errors={KEY_BLOCK: "Paste a Knowlify API key (kn_ + 64 hex characters)."})
        return
    problem = workspaces.check(key)
    if problem is not None:
        ack(response_action="errors", errors={KEY_BLOCK: problem.message})
        return
    last4 = workspaces.connect(team, key, user)
    ack(
        response_action="update",
        view=_done_view(
            f":white_check_mark: Knowlify is connected (key ending `{escape(last4)}`). "
            "Everyone here can now use `/knowlify`."
        ),
    )
    _refresh_home(services, client, team, user)


def on_uninstalled(body: dict[str, Any], context: BoltContext) -> None:
    team = _team_of(body)
    if team:
        services_of(context).workspaces.uninstall(team)


def on_tokens_revoked(body: dict[str, Any], event: dict[str, Any], context: BoltContext) -> None:
    team = _team_of(body)
    if team and (event.get("tokens") or {}).get("bot"):
        services_of(context).workspaces.uninstall(team)


def register(app: App) -> None:
    app.action(CONNECT_ACTION)(on_connect)
    app.view(CONNECT_MODAL)(on_connect_submit)
    app.event("app_uninstalled")(on_uninstalled)
    app.event("tokens_revoked")(on_tokens_revoked)


def _refresh_home(services: Services, client: WebClient, team: str, user: str) -> None:
    """Show the new state in App Home without holding up the modal's answer."""
    from bot.listeners import home

    def run() -> None:
        try:
            home.publish(services, client, team, user)
        except Exception:
            log.warning("home tab of %s not refreshed", user, exc_info=True)

    threading.Thread(target=run, name="home-refresh", daemon=True).start()

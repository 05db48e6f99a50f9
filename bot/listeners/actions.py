"""Buttons: the one button is "Retry anyway" after a create whose outcome is unknown."""

from __future__ import annotations

import logging
from typing import Any

from slack_bolt import Ack, BoltContext

from bot.core import lifecycle as lc
from bot.core import texts
from bot.services import Services, services_of
from bot.slack_ops import PermissionUnknown, SlackFailure
from storage.models import VideoJob

log = logging.getLogger(__name__)


def on_retry(ack: Ack, body: dict[str, Any], action: dict[str, Any], context: BoltContext) -> None:
    services = services_of(context)
    store, slack = services.store, services.slack
    ack()
    user = body["user"]["id"]
    channel = (body.get("channel") or {}).get("id", "")
    try:
        job = store.get_video(int(action.get("value", "0")))
    except ValueError:
        return
    if job is None or job.channel_id != channel:
        return  # a button may only act on its own channel's job
    allowed = user == job.user_id
    if not allowed:
        try:
            allowed = slack.is_admin(user, services.team_id)
        except PermissionUnknown as exc:
            log.warning("users.info for a retry failed (%s): asking %s to try again", exc, user)
            _say(services, channel, user, texts.PERMISSION_UNKNOWN)
            return
    if not allowed:
        _say(
            services,
            channel,
            user,
            f"Only <@{job.user_id}>, who asked for this video, or an admin can retry it.",
        )
        return
    # Compare-and-set: a double click retries once.
    if store.transition(VideoJob, job.id, (lc.UNKNOWN,), state=lc.READY, attempts=0):  # type: ignore[arg-type]
        message_ts = (body.get("message") or {}).get("ts")
        if message_ts:
            try:
                slack.update(
                    channel, message_ts, f":arrows_counterclockwise: Retrying, as <@{user}> asked.", []
                )
            except SlackFailure as exc:
                log.warning("retry notice not updated: %s", exc.error)
            except Exception as exc:  # a timeout of the fast client: the retry still happens
                log.warning("retry notice not updated: %s", type(exc).__name__)
        services.kick()



def _say(services: Services, channel: str, user: str, text: str) -> None:
    try:
        services.slack.ephemeral(channel, user, text)
    except SlackFailure as exc:
        log.warning("ephemeral not sent: %s", exc.error)
    except Exception as exc:  # a timeout of the fast client: the answer is lost, not the click
        log.warning("ephemeral not sent: %s", type(exc).__name__)

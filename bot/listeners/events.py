"""Thread replies become edits; the revert emoji becomes a revert. Slack gets its answer when these
return: they write a row (or fail, and Slack delivers the event again) and wake the worker, which
makes the Knowlify calls."""

from __future__ import annotations

import json
import logging
from typing import Any

from slack_bolt import App

from bot.core import lifecycle as lc
from bot.core import texts
from bot.core.edit_reply import EditReplyError, parse_edit_reply
from bot.core.events import is_thread_reply_by_a_person
from bot.services import Services
from bot.slack_ops import SlackFailure
from storage.models import EditJob

log = logging.getLogger(__name__)


def _team(body: dict[str, Any], event: dict[str, Any]) -> str:
    return str(body.get("team_id") or event.get("team") or "")


def register(app: App, services: Services) -> None:
    store, slack = services.store, services.slack
    emoji = services.settings.knowlify_revert_emoji

    @app.event("message")
    def on_message(event: dict[str, Any], body: dict[str, Any]) -> None:
        if not is_thread_reply_by_a_person(event):
            return
        team, channel = _team(body, event), event["channel"]
        video = store.video_for_thread(team, channel, event["thread_ts"])
        if video is None:
            return  # not a video's thread (or another channel's: the lookup is keyed by channel)
        text = event.get("text")
        reply = parse_edit_reply(text if isinstance(text, str) else "")
        if isinstance(reply, EditReplyError):
            event_id = body.get("event_id")  # without one, "event:None" would silence every later answer
            if not event_id or store.record_delivery(f"event:{event_id}"):
                _ephemeral(services, channel, event["user"], reply.problem, video.card_ts)
            return
        state = lc.PENDING if video.state == lc.COMPLETE else lc.HELD
        edit = store.add_edit(
            EditJob(
                video_id=video.id,  # type: ignore[arg-type]
                key_id=video.key_id,
                team_id=team,
                channel_id=channel,
                reply_ts=event["ts"],
                user_id=event["user"],
                text=reply.text,
                reference_urls_json=json.dumps(list(reply.reference_urls)),
                ignored_urls_json=json.dumps(list(reply.ignored_urls)),
                state=state,
            ),
            delivery_key=f"event:{body.get('event_id')}" if body.get("event_id") else None,
        )
        if edit is not None:
            log.info("edit %s recorded for job %s (%s)", edit.id, video.id, state)
            services.kick()

    @app.event("reaction_added")
    def on_reaction(event: dict[str, Any], body: dict[str, Any]) -> None:
        item, user = event.get("item"), event.get("user")
        if event.get("reaction") != emoji or not isinstance(item, dict) or item.get("type") != "message":
            return
        channel, ts = item.get("channel"), item.get("ts")
        if not (isinstance(channel, str) and isinstance(ts, str) and isinstance(user, str)):
            return  # not a reaction on a message by a person: nothing to revert
        team = _team(body, event)
        message = store.thread_message(team, channel, ts)
        if message is None:
            return  # a message the bot does not know: not ours to act on
        video = store.get_video(message.video_id)
        if video is None:
            return
        delivery = f"event:{body['event_id']}" if body.get("event_id") else None

        def first_delivery() -> bool:
            """Answers (hints, refusals) go out once, however often Slack delivers the event."""
            return delivery is None or store.record_delivery(delivery)

        if message.edit_id is None:
            if first_delivery():
                _ephemeral(services, channel, user, texts.REVERT_WHERE, video.card_ts)
            return
        edit = store.get_edit(message.edit_id)
        if edit is None:
            return
        if user not in (edit.user_id, video.user_id) and not slack.is_admin(user):
            if first_delivery():
                _ephemeral(
                    services,
                    channel,
                    user,
                    texts.revert_not_allowed(edit.user_id, video.user_id),
                    video.card_ts,
                )
            return
        if edit.state == lc.REVERTED or edit.revert_state == lc.REVERT_DONE:
            if first_delivery():
                _ephemeral(services, channel, user, texts.REVERT_ALREADY, video.card_ts)
            return
        # The delivery key and the request are written in one transaction: a crash between them
        # cannot make Slack's retry look like a duplicate.
        if store.request_revert(edit.id, user, delivery):  # type: ignore[arg-type]
            log.info("revert of edit %s requested by %s", edit.id, user)
            services.kick()
        # Otherwise a revert of this edit is already on its way: one reaction is enough.


def _ephemeral(services: Services, channel: str, user: str, text: str, thread_ts: str | None) -> None:
    try:
        services.slack.ephemeral(channel, user, text, thread_ts)
    except SlackFailure as exc:
        log.warning("ephemeral to %s not sent: %s", user, exc.error)

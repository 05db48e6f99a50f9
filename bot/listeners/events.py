"""Thread replies become edits; the revert emoji becomes a revert. Slack gets its answer when these
return: they write a row (or fail, and Slack delivers the event again) and wake the worker, which
makes the Knowlify calls."""

from __future__ import annotations

import json
import logging
import time
from typing import Any

from slack_bolt import BoltContext

from bot.core import lifecycle as lc
from bot.core import texts
from bot.core.edit_reply import EditReplyError, mentions, parse_edit_reply, without_mention
from bot.core.events import is_thread_reply_by_a_person
from bot.core.limits import DAY_SECONDS, next_allowed
from bot.services import Services, services_of
from bot.slack_ops import PermissionUnknown, SlackFailure
from storage.models import EditJob, VideoJob

log = logging.getLogger(__name__)


def _team(body: dict[str, Any], event: dict[str, Any]) -> str:
    return str(body.get("team_id") or event.get("team") or "")


def on_message(event: dict[str, Any], body: dict[str, Any], context: BoltContext) -> None:
    services = services_of(context)
    store = services.store
    if event.get("subtype") == "message_deleted":
        _on_deleted(services, body, event)
        return
    if not is_thread_reply_by_a_person(event):
        return
    team, channel, user = _team(body, event), event["channel"], event["user"]
    video = store.video_for_thread(team, channel, event["thread_ts"])
    if video is None:
        return  # not a video's thread (or another channel's: the lookup is keyed by channel)
    text = event.get("text")
    raw = text if isinstance(text, str) else ""
    # Edits cost credits: only the creator's replies, or replies that mention the bot, are edits.
    if user != video.user_id and not mentions(raw, services.bot_user_id):
        if store.record_delivery(f"edit-hint:{team}:{channel}:{event['thread_ts']}:{user}"):
            _ephemeral(
                services, channel, user, texts.edit_how_to(video.user_id, services.bot_user_id), video.card_ts
            )
        return
    reply = parse_edit_reply(without_mention(raw, services.bot_user_id))
    if isinstance(reply, EditReplyError):
        event_id = body.get("event_id")  # without one, "event:None" would silence every later answer
        if not event_id or store.record_delivery(f"event:{event_id}"):
            _ephemeral(services, channel, user, reply.problem, video.card_ts)
        return
    if store.thread_message(team, channel, event["ts"]) is not None:
        return  # this reply is an edit already (Slack delivered it again): counted once
    limit = services.settings.knowlify_user_edits_per_day
    now = time.time()
    next_at = next_allowed(store.edit_times(team, user, now - DAY_SECONDS), limit, now)
    if next_at is not None:
        if store.record_delivery(f"edit-limit:{team}:{channel}:{event['ts']}"):
            _in_thread(services, video, texts.edit_limit(user, limit, next_at))
        return
    state = lc.PENDING if video.state == lc.COMPLETE else lc.HELD
    edit = store.add_edit(
        EditJob(
            video_id=video.id,  # type: ignore[arg-type]
            key_id=video.key_id,
            team_id=team,
            channel_id=channel,
            reply_ts=event["ts"],
            user_id=user,
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


def on_reaction(event: dict[str, Any], body: dict[str, Any], context: BoltContext) -> None:
    services = services_of(context)
    store, slack = services.store, services.slack
    item, user = event.get("item"), event.get("user")
    if event.get("reaction") != services.settings.knowlify_revert_emoji or not isinstance(item, dict) or item.get("type") != "message":
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
    allowed = user in (edit.user_id, video.user_id)
    if not allowed:
        try:
            allowed = slack.is_admin(user, services.team_id)
        except PermissionUnknown as exc:
            log.warning("users.info for a revert failed (%s): asking %s to try again", exc, user)
            _ephemeral(services, channel, user, texts.PERMISSION_UNKNOWN, video.card_ts)
            return  # nothing recorded: the person can simply react again
    if not allowed:
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



def _on_deleted(services: Services, body: dict[str, Any], event: dict[str, Any]) -> None:
    """A deleted reply that was kept (not yet submitted) is cancelled, and the thread says so once;
    one already submitted cannot be taken back, so its deletion changes nothing."""
    previous = event.get("previous_message")
    ts = event.get("deleted_ts") or (previous.get("ts") if isinstance(previous, dict) else None)
    channel = event.get("channel")
    if not (isinstance(ts, str) and isinstance(channel, str)):
        return
    edit = services.store.cancel_kept_edit(_team(body, event), channel, ts)
    if edit is None:
        return  # not a kept edit's reply (or already cancelled: Slack delivered the event again)
    log.info("edit %s cancelled: its reply was deleted", edit.id)
    video = services.store.get_video(edit.video_id)
    if video is not None:
        _in_thread(services, video, texts.EDIT_CANCELLED, edit_id=edit.id)


def _in_thread(services: Services, video: VideoJob, text: str, edit_id: int | None = None) -> None:
    """A short note in the video's thread, posted by the listener (fast client: never sleeps)."""
    if not video.card_ts:
        return
    try:
        ts = services.slack.post(video.channel_id, text, None, video.card_ts)
    except SlackFailure as exc:
        log.warning("thread note for job %s not posted: %s", video.id, exc.error)
        return
    except Exception as exc:  # a timeout: the note is lost, the request itself is handled
        log.warning("thread note for job %s not posted: %s", video.id, type(exc).__name__)
        return
    services.store.add_thread_message(
        video.team_id, video.channel_id, ts, video.id, "note", edit_id  # type: ignore[arg-type]
    )


def _ephemeral(services: Services, channel: str, user: str, text: str, thread_ts: str | None) -> None:
    try:
        services.slack.ephemeral(channel, user, text, thread_ts)
    except SlackFailure as exc:
        log.warning("ephemeral to %s not sent: %s", user, exc.error)
    except Exception as exc:  # a timeout of the fast client: the answer is lost, not the request
        log.warning("ephemeral to %s not sent: %s", user, type(exc).__name__)

"""The edit machine: a reply in a video's thread, from kept to submitted to its result.

Each function maps (edit, what was observed) to a Decision; posts go in the video's thread.
"""

from __future__ import annotations

import hashlib
import json
from typing import TYPE_CHECKING

from bot.core import texts
from bot.core.decision import NEVER, CardChange, Decision, Post, Schedule, later, mark, wait_until
from bot.core.retry import Call, Failure, Fault, retry
from bot.core.states import EditState, VideoState

if TYPE_CHECKING:
    from bot.knowlify.models import EditAccepted, EditStatus
    from storage.models import EditJob

SUBMITTING = mark(state=EditState.SUBMITTING)


def idempotency_key(team_id: str, channel_id: str, reply_ts: str) -> str:
    """Derived from the Slack message, so every retry of the same reply replays, never duplicates."""
    digest = hashlib.sha256(f"{team_id}:{channel_id}:{reply_ts}".encode()).hexdigest()[:32]
    return f"slack-edit-{digest}"


def kept(edit: EditJob, video_state: str, now: float, poll_seconds: float) -> Decision:
    """A reply kept during the render: submit it, end it with its video, or keep waiting."""
    if video_state == VideoState.COMPLETE:
        return Decision(store={"state": EditState.PENDING}, next_run=now)
    if video_state in (VideoState.FAILED, VideoState.UNKNOWN, VideoState.NEEDS_INVITE):
        message = texts.EDIT_UNKNOWN_VIDEO if video_state == VideoState.UNKNOWN else texts.EDIT_VIDEO_FAILED
        return Decision(
            store={"state": EditState.REFUSED, "error_message": message},
            post=Post(message, kind="edit_refused"),
            next_run=NEVER,
        )
    post = Post(texts.EDIT_KEPT, kind="edit_notice", ts_field="notice_ts") if edit.state == EditState.HELD else None
    # Waiting edits are normally released when the video completes; the re-check covers a race with it.
    return Decision(store={"state": EditState.WAITING}, post=post, next_run=now + max(poll_seconds * 4, 1.0))


def waits_for_earlier(now: float, poll_seconds: float) -> Decision:
    """Replies are submitted in the order they were written: an earlier one goes first."""
    return wait_until(now + min(poll_seconds, 1.0))


def accepted(edit: EditJob, answer: EditAccepted) -> Decision:
    text = texts.edit_accepted(answer.status, answer.queue_position)
    ignored = json.loads(edit.ignored_urls_json or "[]")
    if ignored:
        text += f"\n{texts.ignored_links(ignored)}"
    return Decision(
        store={
            "state": EditState.SUBMITTED,
            "knowlify_edit_id": answer.edit_id,
            "status": answer.status,
            "queue_position": answer.queue_position,
            "attempts": 0,
        },
        post=Post(text, kind="edit_ack", ts_field="notice_ts"),
        next_run=Schedule.EDIT_POLL,
    )


def create_failed(edit: EditJob, failure: Failure, now: float, key_changed: bool = False) -> Decision:
    """The Idempotency-Key makes a resend a replay: anything but a refusal is tried again."""
    step = retry(failure, Call.CREATE_EDIT, edit.attempts)
    if step.delay is not None:
        return Decision(store={"attempts": step.attempts}, next_run=later(now, step.delay))
    message = texts.KEY_CHANGED_EDIT if key_changed else texts.edit_refused(failure.status, failure.detail)
    return Decision(
        store={"state": EditState.REFUSED, "error_message": message},
        post=Post(f":no_entry_sign: {message}", kind="edit_refused", deferrable=False),
        next_run=NEVER,
    )


def ended_with_error(message: str, status: str | None = None) -> Decision:
    values: dict[str, object] = {"state": EditState.ERROR, "error_message": message}
    if status is not None:
        values["status"] = status
    return Decision(store=values, post=Post(f":x: {message}", kind="edit_result", ts_field="result_ts"), next_run=NEVER)


def polled(edit: EditJob, st: EditStatus) -> Decision:
    """One poll of a submitted edit (a `reverted` answer is the revert machine's: see reverts.done)."""
    if st.is_failed or st.status == "error":
        return ended_with_error(texts.edit_failed(st.error_message), st.status)
    if st.is_complete or st.status == "complete":
        result = st.result
        text = texts.edit_done(
            result.link if result else None,
            result.changed_scene_numbers if result else [],
            result.added_scene_numbers if result else [],
            result.deleted_scene_numbers if result else [],
            result.video_synced if result else None,
        )
        return Decision(
            store={
                "state": EditState.COMPLETE,
                "status": st.status,
                "result_json": result.model_dump_json() if result else "{}",
                "attempts": 0,
            },
            post=Post(text, kind="edit_result", ts_field="result_ts"),
            card=CardChange.FINAL,
            next_run=NEVER,
        )
    return Decision(store={"status": st.status, "attempts": 0}, next_run=Schedule.EDIT_POLL)


def poll_failed(edit: EditJob, failure: Failure, now: float, key_changed: bool = False) -> Decision:
    if key_changed:
        return ended_with_error(texts.KEY_CHANGED_EDIT)
    if failure.fault is Fault.GONE:
        return ended_with_error(texts.edit_gone(failure.detail))
    step = retry(failure, Call.POLL_EDIT, edit.attempts)
    assert step.delay is not None  # a read gives up only when the object is gone
    return Decision(store={"attempts": step.attempts}, next_run=later(now, step.delay))

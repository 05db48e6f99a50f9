"""The video machine: from a job and what was observed (a Slack answer, a Knowlify answer or
failure) to a Decision. No I/O: every transition is a plain function of plain values."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from bot.core import lifecycle, polling, texts
from bot.core.decision import (
    NEVER,
    CardChange,
    Decision,
    KeptReplies,
    Post,
    Schedule,
    later,
    mark,
    wait_until,
)
from bot.core.retry import Call, Failure, Fault, retry
from bot.core.states import VideoState

if TYPE_CHECKING:
    from bot.knowlify.models import CreatedItem, VideoStatus
    from storage.models import VideoJob

# A card that could not be posted (a Slack error other than "no access") is tried again this soon.
SLACK_RETRY_SECONDS = 5.0
# Slack refusals that mean "this channel is closed to the bot": tell the requester another way.
NO_ACCESS = frozenset(
    {"not_in_channel", "channel_not_found", "is_archived", "access_denied", "restricted_action"}
)
# conversations.join answers that are not a problem: a private channel the bot can post in is one
# it is a member of already.
JOIN_FINE = ("method_not_supported_for_channel_type", "already_in_channel")

SUBMITTING = mark(state=VideoState.SUBMITTING)


def adopt_key(job: VideoJob, current_key: str) -> Decision | None:
    """A job of an earlier Knowlify key that was not sent yet simply goes under the current one."""
    if job.key_id != current_key and job.state in (VideoState.NEW, VideoState.READY):
        return mark(key_id=current_key)
    return None


def join_note(join_error: str | None) -> str | None:
    """What the card says when the bot could not join: replies in the thread would not reach it."""
    if join_error is None or join_error in JOIN_FINE:
        return None
    return texts.could_not_join(join_error)


def card_posted(text: str, blocks: list[dict[str, Any]], fingerprint: str, note: str | None, now: float) -> Decision:
    """Post the card; the step goes on to the create."""
    return Decision(
        store={
            "state": VideoState.READY,
            "card_shown": fingerprint,
            "card_updated_at": now,
            "joined_note": note,
        },
        post=Post(text, kind="card", ts_field="card_ts", blocks=blocks, card=True),
    )


def card_not_posted(job: VideoJob, error: str, retry_after: float | None, now: float) -> Decision:
    """The card could not be posted: no access ends the job; a 429 waits; anything else retries."""
    if error in NO_ACCESS:
        return Decision(
            store={"state": VideoState.NEEDS_INVITE}, tell_requester=texts.NEEDS_INVITE, next_run=NEVER
        )
    if retry_after is not None:
        return wait_until(later(now, retry_after))
    return Decision(store={"attempts": job.attempts + 1}, next_run=now + SLACK_RETRY_SECONDS)


def create_queued_behind(older_due: float, now: float) -> Decision:
    """An older request waits for the budget: queue behind it rather than take the slot it waits for
    (same due time: claims go in id order, so it still leaves first)."""
    return wait_until(max(older_due, now))


def created(job: VideoJob, item: CreatedItem) -> Decision:
    """Knowlify answered the create: rendering (queued or parked), or a per-item error."""
    if item.status == "error" or not item.uuid:
        return failed(job, texts.item_failed(item.message), deferrable=False)
    status = "parked" if item.status == "parked" else item.status
    return Decision(
        store={
            "state": VideoState.RENDERING,
            "knowlify_uuid": item.uuid,
            "chat_url": item.chat_url,
            "status": status,
            "queue_position": item.queue_position,
            "attempts": 0,
        },
        card=CardChange.FINAL,
        next_run=Schedule.VIDEO_POLL,
    )


def create_failed(job: VideoJob, failure: Failure, now: float) -> Decision:
    """The create did not go through: wait and resend, say the outcome is unknown, or fail."""
    step = retry(failure, Call.CREATE_VIDEO, job.attempts)
    if step.delay is not None:
        return Decision(
            store={"state": VideoState.READY, "attempts": step.attempts}, next_run=later(now, step.delay)
        )
    if failure.fault in (Fault.GATEWAY, Fault.NO_ANSWER):
        return outcome_unknown(job)
    return failed(job, texts.create_refused(failure.status, failure.detail), deferrable=False)


def outcome_unknown(job: VideoJob) -> Decision:
    """The create may have reached Knowlify: only the user can decide to try again (one click)."""
    post = None
    if job.card_ts:
        post = Post(
            texts.UNKNOWN_OUTCOME,
            ts_field="unknown_notice_ts",
            retry_button=True,
            requester_text=texts.UNKNOWN_OUTCOME,
        )
    return Decision(
        store={"state": VideoState.UNKNOWN},
        post=post,
        card=CardChange.FINAL,
        next_run=NEVER,
        kept_replies=KeptReplies.SETTLE,
    )


def failed(job: VideoJob, message: str, *, deferrable: bool = True) -> Decision:
    """The job ends failed; the thread gets the reason once (not again after a crash that stored it).

    Not ``deferrable`` when the reason is the answer to a create: the step could not see it again.
    """
    post, tell = None, None
    if job.final_ts is None and job.card_ts:
        post = Post(
            f":x: {message}", kind="final", ts_field="final_ts", requester_text=message, deferrable=deferrable
        )
    elif job.final_ts is None:
        tell = message
    return Decision(
        store={"state": VideoState.FAILED, "error_message": message},
        post=post,
        tell_requester=tell,
        card=CardChange.FINAL,
        next_run=NEVER,
        kept_replies=KeptReplies.SETTLE,
        frees_render_slot=True,
    )


def completed(job: VideoJob, link: str, seen_at: float | None = None) -> Decision:
    """The link goes in the thread once; kept replies go to Knowlify now."""
    post, tell = None, None
    done = texts.video_done(link, job.prompt)
    if job.final_ts is None and job.card_ts:
        post = Post(done, kind="final", ts_field="final_ts", requester_text=done, link_seen_at=seen_at)
    elif job.final_ts is None:
        tell = done
    return Decision(
        store={"state": VideoState.COMPLETE},
        post=post,
        tell_requester=tell,
        card=CardChange.FINAL,
        next_run=NEVER,
        kept_replies=KeptReplies.RELEASE,
        frees_render_slot=True,
    )


def knowlify_time(iso: str | None, now: float) -> float | None:
    """Knowlify's ISO timestamp as epoch seconds, never later than ``now`` (a fast server clock)."""
    if not iso:
        return None
    try:
        at = datetime.fromisoformat(iso.replace("Z", "+00:00"))
    except ValueError:
        return None
    return min((at if at.tzinfo else at.replace(tzinfo=UTC)).timestamp(), now)


def render_of(job: VideoJob, parked_ahead: int, now: float) -> polling.Render:
    """The job as the poll policy sees it."""
    return polling.Render(
        status=job.status,
        stage_started=knowlify_time(job.knowlify_updated_at, now),
        render_started=job.render_started_at,
        parked_ahead=parked_ahead,
    )


def polled(job: VideoJob, st: VideoStatus, now: float) -> Decision:
    """One poll answer: progress for the card, or the end of the render."""
    progress = st.progress
    values: dict[str, Any] = {
        "status": st.status,
        "percent": progress.percent if progress else None,
        "current_scene": progress.current_scene if progress else None,
        "total_scenes": progress.total_scenes if progress else None,
        "knowlify_updated_at": st.updated_at,
        "attempts": 0,
    }
    if st.status not in ("pending", "parked"):
        values["queue_position"] = None
    elif job.status == "parked":
        values["status"] = "parked"  # Knowlify shows parked jobs as pending; keep the position
    values["render_started_at"] = polling.learn_render_start(
        previous_status=job.status,
        previous_stage_started=knowlify_time(job.knowlify_updated_at, now),
        render_started=job.render_started_at,
        status=values["status"],
        stage_started=knowlify_time(st.updated_at, now),
        created_at=knowlify_time(st.created_at, now),
    )
    terminal = lifecycle.is_terminal_status(st.status, st.is_complete, st.is_failed)
    if terminal == VideoState.COMPLETE:
        # The poll documents no link: the create's chat_url is the link unless one appears.
        return completed(job, st.link or job.chat_url or "", now).storing({**values, "link": st.link})
    if terminal == VideoState.FAILED:
        return failed(job, texts.render_failed(st.error_message)).storing(values)
    return Decision(store=values, card=CardChange.IF_DUE, next_run=Schedule.VIDEO_POLL)


def poll_failed(job: VideoJob, failure: Failure, now: float, key_changed: bool = False) -> Decision:
    """A poll failed: Knowlify no longer knowing the video ends it, once, saying why (the key changed,
    or it is gone); anything else waits and polls again."""
    if key_changed:
        return failed(job, texts.KEY_CHANGED_VIDEO)
    if failure.fault is Fault.GONE:
        return failed(job, texts.video_gone(failure.detail))
    step = retry(failure, Call.POLL_VIDEO, job.attempts)
    assert step.delay is not None  # a read gives up only when the object is gone
    return Decision(store={"attempts": step.attempts}, next_run=later(now, step.delay))

"""The job state machines, as plain values: no I/O, so every rule is tested with plain values.

Video: new → ready → submitting → rendering → complete | failed, with two side exits:
`unknown` (the create answer never came: the user decides whether to retry) and `needs_invite`
(the bot could not post in the channel). Edit: held → waiting → pending → submitting → submitted
→ complete | error, or `refused` when Knowlify turned it down; a completed edit can be reverted.
"""

from __future__ import annotations

from dataclasses import dataclass

from bot.core.mrkdwn import escape

# --- video states -------------------------------------------------------------------------
NEW = "new"  # row written before the ack; no card yet
READY = "ready"  # card posted; create not yet sent
SUBMITTING = "submitting"  # create in flight: seen at claim time it means we crashed mid-call
RENDERING = "rendering"
COMPLETE = "complete"
FAILED = "failed"
UNKNOWN = "unknown"  # the create may or may not have reached Knowlify
NEEDS_INVITE = "needs_invite"

VIDEO_WORK_STATES = (NEW, READY, SUBMITTING, RENDERING)
VIDEO_FINAL_STATES = (COMPLETE, FAILED, NEEDS_INVITE)

# --- edit states --------------------------------------------------------------------------
HELD = "held"  # arrived during the render; the "kept" notice is not yet posted
WAITING = "waiting"  # notice posted; waits for the render to complete
PENDING = "pending"  # ready to submit, in reply order
EDIT_SUBMITTING = "submitting"
SUBMITTED = "submitted"  # Knowlify has it; we poll
EDIT_COMPLETE = "complete"
EDIT_ERROR = "error"  # Knowlify ran it and it failed
REFUSED = "refused"  # Knowlify (or we) refused it before it ran
REVERTED = "reverted"
CANCELLED = "cancelled"  # its reply was deleted before it was submitted: final, nothing was sent

EDIT_WORK_STATES = (HELD, WAITING, PENDING, EDIT_SUBMITTING, SUBMITTED)
EDIT_UNSUBMITTED = (HELD, WAITING, PENDING, EDIT_SUBMITTING)
EDIT_CANCELLABLE = (HELD, WAITING, PENDING)  # kept, not yet on its way to Knowlify

# --- revert states (EditJob.revert_state) -------------------------------------------------
REVERT_REQUESTED = "requested"
REVERT_RUNNING = "reverting"
REVERT_DONE = "reverted"
REVERT_REFUSED = "refused"
REVERT_WORK_STATES = (REVERT_REQUESTED, REVERT_RUNNING)
REVERT_RETRYABLE = (None, REVERT_REFUSED)  # a guard that failed may pass later

# Knowlify's render stages in order, with the words the card uses.
STAGE_WORDS = {
    "pending": "waiting for a render slot",
    "queued": "queued",
    "voiceover": "recording the voiceover",
    "highlevel": "planning the scenes",
    "lowlevel": "detailing the scenes",
    "scan_assets": "gathering assets",
    "generating_frames": "generating frames",
}
RENDER_STAGES = ("voiceover", "highlevel", "lowlevel", "scan_assets", "generating_frames")


@dataclass(frozen=True)
class Progress:
    """What Knowlify last said about a render, reduced to what the card can show."""

    status: str | None
    percent: int | None = None
    current_scene: int | None = None
    total_scenes: int | None = None
    queue_position: int | None = None


def status_line(state: str, progress: Progress, error: str | None = None) -> str:
    """The state in words: the one line of the card that moves."""
    if state in (NEW, READY, SUBMITTING):
        return ":hourglass_flowing_sand: Sending to Knowlify…"
    if state == UNKNOWN:
        return ":warning: Knowlify did not answer, so it is unknown whether this video was started."
    if state == COMPLETE:
        return ":white_check_mark: Done"
    if state == FAILED:
        return f":x: Failed: {error or 'Knowlify gave no reason'}"
    if state == NEEDS_INVITE:
        return ":no_entry: Not started: invite me to this channel"
    status = progress.status or "queued"
    if status == "parked" or (status == "pending" and progress.queue_position):
        pos = progress.queue_position
        where = f"position {pos} in line" if pos else "waiting in line"
        return f":parking: Parked, {where}: Knowlify renders 3 videos at a time per account"
    if status in ("pending", "queued"):
        return ":clock3: Queued at Knowlify"
    words = STAGE_WORDS.get(status) or escape(status.replace("_", " "))  # a status Knowlify added later
    parts = [f":clapper: Rendering: {words}"]
    if status in RENDER_STAGES:
        parts.append(f"(stage {RENDER_STAGES.index(status) + 1} of {len(RENDER_STAGES)})")
    if progress.current_scene and progress.total_scenes:
        parts.append(f"scene {progress.current_scene} of {progress.total_scenes}")
    if progress.percent is not None:
        parts.append(f"{progress.percent}%")
    return " ".join(parts[:2]) + ("" if len(parts) <= 2 else ", " + ", ".join(parts[2:]))


def is_terminal_status(status: str | None, is_complete: bool, is_failed: bool) -> str | None:
    """COMPLETE, FAILED or None for a poll answer; unknown statuses are neither (keep polling)."""
    if is_failed or status == "failed":
        return FAILED
    if is_complete or status == "complete":
        return COMPLETE
    return None


def card_update_due(now: float, last_update: float, poll_seconds: float, terminal: bool) -> bool:
    """chat.update is Tier 3: at most one update every few seconds per card, except the last one."""
    return terminal or now - last_update >= min(3.0, poll_seconds)

"""What the card says about a job, and when: plain values in, plain values out.

The states themselves are in bot.core.states (one enum per machine).
"""

from __future__ import annotations

from dataclasses import dataclass

from bot.core.mrkdwn import escape
from bot.core.states import (
    EDIT_CANCELLABLE,
    EDIT_UNSUBMITTED,
    EDIT_WORK_STATES,
    REVERT_WORK_STATES,
    VIDEO_WORK_STATES,
    EditState,
    RevertState,
    VideoState,
)

# Short names for the listeners, the card and App Home (each is its machine's enum member).
NEW, READY, SUBMITTING, RENDERING = VideoState.NEW, VideoState.READY, VideoState.SUBMITTING, VideoState.RENDERING
COMPLETE, FAILED, UNKNOWN, NEEDS_INVITE = (
    VideoState.COMPLETE,
    VideoState.FAILED,
    VideoState.UNKNOWN,
    VideoState.NEEDS_INVITE,
)
HELD, WAITING, PENDING, EDIT_SUBMITTING = EditState.HELD, EditState.WAITING, EditState.PENDING, EditState.SUBMITTING
SUBMITTED, EDIT_COMPLETE, EDIT_ERROR = EditState.SUBMITTED, EditState.COMPLETE, EditState.ERROR
REFUSED, REVERTED, CANCELLED = EditState.REFUSED, EditState.REVERTED, EditState.CANCELLED
REVERT_REQUESTED, REVERT_RUNNING = RevertState.REQUESTED, RevertState.RUNNING
REVERT_DONE, REVERT_REFUSED = RevertState.DONE, RevertState.REFUSED

__all__ = [
    "EDIT_CANCELLABLE",
    "EDIT_UNSUBMITTED",
    "EDIT_WORK_STATES",
    "REVERT_WORK_STATES",
    "VIDEO_WORK_STATES",
    "EditState",
    "RevertState",
    "VideoState",
]

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

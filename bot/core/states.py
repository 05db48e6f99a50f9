"""The three state machines of a job, one enum each.

The values are the strings stored in the database, so existing rows keep working. Values repeat
across machines (a video and an edit can both be "complete"): each column belongs to one machine
(`VideoJob.state` → VideoState, `EditJob.state` → EditState, `EditJob.revert_state` → RevertState),
so a value is only ever compared with members of its own enum.

Video: new → ready → submitting → rendering → complete | failed, with two side exits: `unknown` (the
create answer never came: the user decides whether to retry) and `needs_invite` (the bot could not
post in the channel). Edit: held → waiting → pending → submitting → submitted → complete | error, or
`refused` before it ran; a completed edit can be reverted. Revert: requested → reverting → reverted |
refused (a refused revert may be asked for again).
"""

from __future__ import annotations

from enum import StrEnum


class VideoState(StrEnum):
    NEW = "new"  # row written before the ack; no card yet
    READY = "ready"  # card posted; create not yet sent
    SUBMITTING = "submitting"  # create in flight: seen at claim time it means we crashed mid-call
    RENDERING = "rendering"
    COMPLETE = "complete"
    FAILED = "failed"
    UNKNOWN = "unknown"  # the create may or may not have reached Knowlify
    NEEDS_INVITE = "needs_invite"


class EditState(StrEnum):
    HELD = "held"  # arrived during the render; the "kept" notice is not yet posted
    WAITING = "waiting"  # notice posted; waits for the render to complete
    PENDING = "pending"  # ready to submit, in reply order
    SUBMITTING = "submitting"
    SUBMITTED = "submitted"  # Knowlify has it; we poll
    COMPLETE = "complete"
    ERROR = "error"  # Knowlify ran it and it failed
    REFUSED = "refused"  # Knowlify (or we) refused it before it ran
    REVERTED = "reverted"
    CANCELLED = "cancelled"  # its reply was deleted before it was submitted: final, nothing was sent


class RevertState(StrEnum):
    REQUESTED = "requested"
    RUNNING = "reverting"
    DONE = "reverted"
    REFUSED = "refused"


VIDEO_WORK_STATES = (VideoState.NEW, VideoState.READY, VideoState.SUBMITTING, VideoState.RENDERING)
VIDEO_ENDED = (VideoState.FAILED, VideoState.UNKNOWN, VideoState.NEEDS_INVITE)  # will never complete
EDIT_UNSUBMITTED = (EditState.HELD, EditState.WAITING, EditState.PENDING, EditState.SUBMITTING)
EDIT_KEPT = (EditState.HELD, EditState.WAITING)  # replies waiting for their render
EDIT_CANCELLABLE = (*EDIT_KEPT, EditState.PENDING)  # kept, not yet on its way to Knowlify
EDIT_WORK_STATES = (*EDIT_UNSUBMITTED, EditState.SUBMITTED)
REVERT_WORK_STATES = (RevertState.REQUESTED, RevertState.RUNNING)

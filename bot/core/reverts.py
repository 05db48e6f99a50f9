"""The revert machine of an edit (EditJob.revert_state): requested → reverting → reverted | refused.

A revert is synchronous at Knowlify and observable (the edit's status becomes `reverted`), so after
a crash or a lost answer it is looked up before it is ever sent again.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from bot.core import texts
from bot.core.decision import NEVER, CardChange, Decision, Post, later, mark
from bot.core.retry import Call, Failure, Fault, retry
from bot.core.states import EDIT_UNSUBMITTED, EDIT_WORK_STATES, EditState, RevertState
from bot.core.versions import EditView, current_version

if TYPE_CHECKING:
    from bot.knowlify.models import EditStatus
    from storage.models import EditJob

RUNNING = mark(revert_state=RevertState.RUNNING)


def refused_here(edit: EditJob) -> str | None:
    """Why this edit cannot be reverted, known without asking Knowlify; None: ask it."""
    if edit.state in (EditState.ERROR, EditState.REFUSED):  # a refused edit has no edit_id: check first
        return texts.REVERT_NOTHING
    if edit.state in EDIT_UNSUBMITTED or not edit.knowlify_edit_id:
        return texts.REVERT_NOT_SUBMITTED
    if edit.state == EditState.SUBMITTED:
        # Knowlify would answer 409 (not in a revertable state): say so without spending a call.
        return texts.revert_refused(409, f"status={edit.status or 'processing'} not in a revertable state")
    return None


def refused(
    edit: EditJob, message: str, now: float, detail: str | None = None, *, deferrable: bool = True
) -> Decision:
    """The thread hears why; a still-running edit goes on with its own machine."""
    return Decision(
        store={"revert_state": RevertState.REFUSED, "revert_detail": detail if detail is not None else message},
        post=Post(f":warning: {message}", kind="revert_result", deferrable=deferrable),
        next_run=now if edit.state in EDIT_WORK_STATES else NEVER,
    )


def needs_lookup(edit: EditJob) -> bool:
    """Claimed mid-revert: a crash or a lost answer hid the outcome. Look before acting."""
    return edit.revert_state == RevertState.RUNNING


def lookup_failed(edit: EditJob, failure: Failure, now: float) -> Decision:
    step = retry(failure, Call.LOOKUP_REVERT, edit.attempts)
    if step.delay is None:  # Knowlify no longer has the edit
        return refused(edit, texts.revert_refused(failure.status, failure.detail), now, failure.detail)
    return Decision(store={"attempts": step.attempts}, next_run=later(now, step.delay))


def wants_newer_link(failure: Failure) -> bool:
    """"A newer edit exists": the answer links to the newer edit's message."""
    return failure.fault is Fault.REFUSED and "newer" in failure.detail


def revert_failed(
    edit: EditJob, failure: Failure, now: float, newer_link: str | None = None, key_changed: bool = False
) -> Decision:
    """A refusal (each 409 guard has its own words) ends the revert; anything else is tried again,
    looked up first if it may have run."""
    step = retry(failure, Call.REVERT, edit.attempts)
    if step.delay is None:
        message = (
            texts.KEY_CHANGED_EDIT
            if key_changed
            else texts.revert_refused(failure.status, failure.detail, newer_link)
        )
        return refused(edit, message, now, failure.detail, deferrable=False)
    maybe_ran = failure.fault in (Fault.NO_ANSWER, Fault.GATEWAY)
    state = RevertState.RUNNING if maybe_ran else RevertState.REQUESTED
    return Decision(store={"revert_state": state, "attempts": step.attempts}, next_run=later(now, step.delay))


def link_after(base_link: str | None, edits: Sequence[EditView], reverted_reply_ts: str) -> str | None:
    """The version's link once this edit no longer counts."""
    views = [
        EditView(e.reply_ts, EditState.REVERTED if e.reply_ts == reverted_reply_ts else e.state, e.result_json)
        for e in edits
    ]
    return current_version(base_link, views).link


def done(st: EditStatus, version_link: str | None) -> Decision:
    diff = st.result.revert_diff if st.result and st.result.revert_diff else None
    text = texts.revert_done(
        diff.changed_scene_numbers if diff else [],
        diff.added_scene_numbers if diff else [],
        diff.deleted_scene_numbers if diff else [],
        version_link,
    )
    return Decision(
        store={
            "state": EditState.REVERTED,
            "revert_state": RevertState.DONE,
            "status": st.status,
            "attempts": 0,
        },
        post=Post(text, kind="revert_result", ts_field="revert_result_ts"),
        card=CardChange.FINAL,
        next_run=NEVER,
    )

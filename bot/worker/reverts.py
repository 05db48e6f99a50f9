"""One step of a revert (an edit's revert_state): look up or call Knowlify, let bot.core.reverts decide, apply."""

from __future__ import annotations

import logging

from bot.core import reverts as rules
from bot.core.retry import under_earlier_key
from bot.core.states import EditState
from bot.core.versions import EditView
from bot.knowlify.errors import KnowlifyError, failure_of
from bot.knowlify.models import EditStatus
from bot.worker.apply import apply
from bot.worker.context import StepContext
from storage.models import EditJob, VideoJob

log = logging.getLogger(__name__)


def revert_step(ctx: StepContext, edit: EditJob, video: VideoJob) -> None:
    reason = rules.refused_here(edit)
    if reason is not None:
        apply(ctx, edit, rules.refused(edit, reason, ctx.clock()), video)
        return
    edit_id = edit.knowlify_edit_id or ""
    if rules.needs_lookup(edit):
        try:
            st = ctx.knowlify.get_edit(edit_id)
        except KnowlifyError as exc:
            apply(ctx, edit, rules.lookup_failed(edit, failure_of(exc), ctx.clock()), video)
            return
        if st.status == "reverted":
            finish_revert(ctx, edit, video, st)
            return
    if not apply(ctx, edit, rules.RUNNING, video):
        return
    try:
        st = ctx.knowlify.revert_edit(edit_id)
    except KnowlifyError as exc:
        log.info("revert of edit %s failed: %s", edit.id, type(exc).__name__)
        failure = failure_of(exc)
        newer = newer_edit_link(ctx, edit, video) if rules.wants_newer_link(failure) else None
        key_changed = under_earlier_key(failure, video.key_id, ctx.key_id)
        apply(ctx, edit, rules.revert_failed(edit, failure, ctx.clock(), newer, key_changed), video)
        return
    finish_revert(ctx, edit, video, st)


def finish_revert(ctx: StepContext, edit: EditJob, video: VideoJob, st: EditStatus) -> None:
    views = [EditView(e.reply_ts, e.state, e.result_json) for e in ctx.store.edits_of(edit.video_id)]
    link = rules.link_after(video.link or video.chat_url, views, edit.reply_ts)
    apply(ctx, edit, rules.done(st, link), video)


def newer_edit_link(ctx: StepContext, edit: EditJob, video: VideoJob) -> str | None:
    """A link to the message of the newest applied edit after this one (revert that one first)."""
    newer = [
        e
        for e in ctx.store.edits_of(edit.video_id)
        if e.reply_ts > edit.reply_ts and e.state == EditState.COMPLETE
    ]
    if not newer:
        return None
    target = newer[-1]
    return ctx.slack.permalink(video.channel_id, target.result_ts or target.reply_ts)

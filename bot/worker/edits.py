"""One step of an edit job (a reply in a video's thread): call Knowlify, let bot.core.edits decide, apply."""

from __future__ import annotations

import json
import logging

from bot.core import edits as rules
from bot.core.decision import NEVER, wait_until
from bot.core.retry import under_earlier_key
from bot.core.states import EDIT_KEPT, EDIT_UNSUBMITTED, REVERT_WORK_STATES, EditState
from bot.knowlify.errors import KnowlifyError, failure_of
from bot.worker.apply import apply
from bot.worker.context import StepContext
from bot.worker.reverts import finish_revert, revert_step
from storage.models import EditJob, VideoJob

log = logging.getLogger(__name__)


def edit_step(ctx: StepContext, edit: EditJob) -> None:
    video = ctx.store.get_video(edit.video_id)
    assert video is not None
    if edit.revert_state in REVERT_WORK_STATES:
        revert_step(ctx, edit, video)
    elif edit.state in EDIT_KEPT:
        apply(ctx, edit, rules.kept(edit, video.state, ctx.clock(), ctx.poll_seconds), video)
    elif edit.state in (EditState.PENDING, EditState.SUBMITTING):
        submit_edit(ctx, edit, video)
    elif edit.state == EditState.SUBMITTED:
        poll_edit(ctx, edit, video)
    else:
        apply(ctx, edit, wait_until(NEVER), video)


def submit_edit(ctx: StepContext, edit: EditJob, video: VideoJob) -> None:
    earlier = [
        e
        for e in ctx.store.edits_of(edit.video_id)
        if e.id != edit.id and e.reply_ts < edit.reply_ts and e.state in EDIT_UNSUBMITTED
    ]
    if earlier:
        apply(ctx, edit, rules.waits_for_earlier(ctx.clock(), ctx.poll_seconds), video)
        return
    if not apply(ctx, edit, rules.SUBMITTING, video):
        return
    refs = json.loads(edit.reference_urls_json or "[]")
    try:
        answer = ctx.knowlify.create_edit(
            video.knowlify_uuid or "",
            edit.text,
            idempotency_key=rules.idempotency_key(edit.team_id, edit.channel_id, edit.reply_ts),
            reference_image_urls=refs or None,
        )
    except KnowlifyError as exc:
        log.info("edit %s not submitted: %s", edit.id, type(exc).__name__)
        failure = failure_of(exc)
        key_changed = under_earlier_key(failure, video.key_id, ctx.key_id)
        apply(ctx, edit, rules.create_failed(edit, failure, ctx.clock(), key_changed), video)
        return
    apply(ctx, edit, rules.accepted(edit, answer), video)


def poll_edit(ctx: StepContext, edit: EditJob, video: VideoJob) -> None:
    try:
        st = ctx.knowlify.get_edit(edit.knowlify_edit_id or "")
    except KnowlifyError as exc:
        log.info("poll of edit %s failed: %s", edit.id, type(exc).__name__)
        failure = failure_of(exc)
        key_changed = under_earlier_key(failure, video.key_id, ctx.key_id)
        apply(ctx, edit, rules.poll_failed(edit, failure, ctx.clock(), key_changed), video)
        return
    if st.status == "reverted":  # reverted elsewhere (or our answer was lost): the revert machine's
        finish_revert(ctx, edit, video, st)
        return
    apply(ctx, edit, rules.polled(edit, st), video)

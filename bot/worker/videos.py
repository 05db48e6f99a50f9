"""One step of a video job: claim is done; call Slack or Knowlify, let bot.core.videos decide, apply."""

from __future__ import annotations

import logging

from bot.core import polling
from bot.core import videos as rules
from bot.core.decision import NEVER, wait_until
from bot.core.retry import Fault, under_earlier_key
from bot.core.states import VIDEO_WORK_STATES, VideoState
from bot.knowlify.errors import KnowlifyError, failure_of
from bot.knowlify.models import VideoSpec
from bot.slack_ops import SlackFailure
from bot.worker.apply import apply, refresh_card
from bot.worker.context import StepContext, card_view, options_of
from bot.worker.schedule import render_load
from storage.models import VideoJob

log = logging.getLogger(__name__)


def video_step(ctx: StepContext, job: VideoJob) -> None:
    if job.state not in VIDEO_WORK_STATES:
        # Claimed for its card only: an update Slack rate-limited (card_stale).
        refresh_card(ctx, job, leased=True, final=True)
        apply(ctx, job, wait_until(NEVER), job)
        return
    adopt = rules.adopt_key(job, ctx.key_id)
    if adopt is not None and not apply(ctx, job, adopt, job):
        return
    if job.state == VideoState.NEW and not post_video_card(ctx, job):
        return
    if job.state == VideoState.READY:
        submit_video(ctx, job)
    elif job.state == VideoState.SUBMITTING:
        # Claimed while "submitting": the process died between sending the create and storing its
        # answer. Knowlify may have the video; only the user can decide to try again.
        apply(ctx, job, rules.outcome_unknown(job), job)
    elif job.state == VideoState.RENDERING:
        poll_video(ctx, job)


def post_video_card(ctx: StepContext, job: VideoJob) -> bool:
    """Join the channel if we can, post the card; True when the step may go on to the create."""
    join_error = ctx.slack.join(job.channel_id) if job.channel_id.startswith(("C", "G")) else None
    note = rules.join_note(join_error)
    if note:
        log.info("could not join %s: %s", job.channel_id, join_error)
    job.joined_note = note
    view = card_view(ctx.store, job, [])
    decision = rules.card_posted(view.text, view.blocks, view.fingerprint(), note, ctx.clock())
    try:
        return apply(ctx, job, decision, job)
    except SlackFailure as exc:
        if exc.error not in rules.NO_ACCESS:
            log.warning("card for job %s not posted: %s", job.id, exc.error)
        apply(ctx, job, rules.card_not_posted(job, exc.error, exc.retry_after, ctx.clock()), job)
        return False


def submit_video(ctx: StepContext, job: VideoJob) -> None:
    ahead = ctx.store.older_create_waiting(job.key_id, job.id or 0, (VideoState.NEW, VideoState.READY))
    if ahead is not None:
        apply(ctx, job, rules.create_queued_behind(ahead, ctx.clock()), job)
        return
    spec = VideoSpec(task=job.prompt, **options_of(job).get("fields", {}))
    if not apply(ctx, job, rules.SUBMITTING, job):
        return
    try:
        item = ctx.knowlify.create_video(spec)
    except KnowlifyError as exc:
        log.info("create of job %s failed: %s", job.id, type(exc).__name__)
        apply(ctx, job, rules.create_failed(job, failure_of(exc), ctx.clock()), job)
        return
    apply(ctx, job, rules.created(job, item), job)


def poll_video(ctx: StepContext, job: VideoJob) -> None:
    assert job.knowlify_uuid
    if job.status == "parked":
        # Only the first few in line can move next; the rest wait without a request.
        now = ctx.clock()
        load, ahead = render_load(ctx, job, now)
        render = rules.render_of(job, ahead, now)
        if not polling.is_polled(render, ctx.poll_policy):
            apply(ctx, job, wait_until(polling.next_video_poll(now, render, load, ctx.poll_policy)), job)
            return
    try:
        st = ctx.knowlify.get_video(job.knowlify_uuid)
    except KnowlifyError as exc:
        failure = failure_of(exc)
        if failure.fault is Fault.UNAUTHORIZED:
            log.error("Knowlify rejected the API key while polling job %s; retrying in a minute", job.id)
        else:
            log.info("poll of job %s failed: %s", job.id, type(exc).__name__)
        key_changed = under_earlier_key(failure, job.key_id, ctx.key_id)
        apply(ctx, job, rules.poll_failed(job, failure, ctx.clock(), key_changed), job)
        return
    apply(ctx, job, rules.polled(job, st, ctx.clock()), job)

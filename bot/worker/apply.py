"""The one place where a decision takes effect: posts to Slack, writes the row, releases it.

Always in this order: post, then store the decision's values together with the post's ts (under the
lease), record the message for reactions, update the card, release the row with its next run, and
finally touch the video's kept replies through named store methods. A crash can repeat a post (one
call wide), never lose it; a lost lease stops the decision before anything is stored.
"""

from __future__ import annotations

import logging

from bot import metrics
from bot.core import lifecycle
from bot.core.decision import CardChange, Decision, KeptReplies, Post
from bot.slack_ops import SlackFailure
from bot.ui.card import retry_blocks
from bot.worker import schedule
from bot.worker.context import StepContext, card_view
from storage.models import EditJob, VideoJob

log = logging.getLogger(__name__)


class SlackWait(Exception):
    """Slack answered 429 to a post the decision may wait for: run the step again after this."""

    def __init__(self, seconds: float) -> None:
        super().__init__(seconds)
        self.seconds = seconds


def apply(ctx: StepContext, row: VideoJob | EditJob, decision: Decision, video: VideoJob) -> bool:
    """Carry out ``decision`` for ``row`` (``video`` is the row itself or the edit's video).

    False when the lease was lost (another worker owns the row now), or when Slack asked to wait
    (429) before a post the decision may wait for: then nothing is stored and the row runs again
    after Retry-After. A card post that fails raises SlackFailure before anything is stored.
    """
    post = decision.post
    try:
        ts = _post(ctx, video, post) if post is not None else None
    except SlackWait as wait:
        log.info("%s %s waits %.1fs: Slack rate limit", type(row).__name__, row.id, wait.seconds)
        ctx.store.release(row, ctx.owner, ctx.clock() + wait.seconds)
        return False
    if decision.tell_requester:
        tell_requester(ctx, video, decision.tell_requester)
    values = dict(decision.store)
    if ts and post is not None and post.ts_field:
        values[post.ts_field] = ts
    # With no card update in between and a fixed time, the values and the release are one write.
    one_write = decision.card is CardChange.KEEP and isinstance(decision.next_run, float | int)
    if one_write:
        assert isinstance(decision.next_run, float | int)
        held = ctx.store.release(row, ctx.owner, decision.next_run, **values)
    else:
        held = ctx.store.save(row, ctx.owner, **values) if values else True
    if not held:
        log.info("%s %s: lease lost, another worker has it", type(row).__name__, row.id)
        return False
    if ts and post is not None and post.kind and video.id is not None:
        edit_id = row.id if isinstance(row, EditJob) else None
        ctx.store.add_thread_message(video.team_id, video.channel_id, ts, video.id, post.kind, edit_id)
    if decision.card is not CardChange.KEEP:
        refresh_card(ctx, video, leased=row is video, final=decision.card is CardChange.FINAL)
    if not one_write and decision.next_run is not None:
        ctx.store.release(row, ctx.owner, schedule.next_run(ctx, row, decision.next_run))
    _kept_replies(ctx, video, decision.kept_replies)
    if decision.frees_render_slot:
        ctx.store.wake_first_parked(video.key_id, ctx.clock())  # its slot goes to the next in line
    return True


def _post(ctx: StepContext, video: VideoJob, post: Post) -> str | None:
    if post.card:
        return ctx.slack.post(video.channel_id, post.text, post.blocks)
    if not video.card_ts:
        if post.requester_text:
            tell_requester(ctx, video, post.requester_text)
        return None
    blocks = retry_blocks(post.text, video.id or 0) if post.retry_button else post.blocks
    try:
        ts = ctx.slack.post(video.channel_id, post.text, blocks, video.card_ts)
    except SlackFailure as exc:
        if exc.retry_after is not None and post.deferrable:
            raise SlackWait(exc.retry_after) from None
        log.warning("%s for job %s not posted: %s", post.kind or "notice", video.id, exc.error)
        if post.requester_text:
            tell_requester(ctx, video, post.requester_text)
        return None
    if post.link_seen_at is not None:
        metrics.link_posted(seen_at=post.link_seen_at, now=ctx.clock())
    return ts


def tell_requester(ctx: StepContext, job: VideoJob, text: str) -> None:
    """Reach the requester without channel access: the command's response_url, else a DM."""
    if job.response_url and ctx.slack.respond(job.response_url, text):
        return
    try:
        ctx.slack.post(job.user_id, text)
    except SlackFailure as exc:
        log.warning("could not tell %s about job %s: %s", job.user_id, job.id, exc.error)


def refresh_card(ctx: StepContext, job: VideoJob, *, leased: bool, final: bool) -> None:
    """chat.update only when what the card shows has changed, and not more often than allowed."""
    if not job.card_ts:
        return
    view = card_view(ctx.store, job)
    fingerprint = view.fingerprint()
    if fingerprint == job.card_shown:
        return
    now = ctx.clock()
    if job.card_updated_at > now:
        return  # Slack asked us to wait (a 429); the row comes back for its card then (card_stale)
    if not lifecycle.card_update_due(now, job.card_updated_at, ctx.poll_seconds, final):
        return
    try:
        ctx.slack.update(job.channel_id, job.card_ts, view.text, view.blocks)
    except SlackFailure as exc:
        if exc.retry_after is not None and job.id is not None:
            until = now + exc.retry_after
            ctx.store.card_rate_limited(job.id, until)
            job.card_updated_at, job.card_stale = until, True
            log.info("card of job %s waits %.1fs: Slack rate limit", job.id, exc.retry_after)
            return
        # A deleted card (message_not_found) or a closed channel must not stop the job.
        log.warning("card of job %s not updated: %s", job.id, exc.error)
        fingerprint = job.card_shown or ""  # nothing to come back for
    if leased:
        ctx.store.save(job, ctx.owner, card_shown=fingerprint, card_updated_at=now, card_stale=False)
    elif job.id is not None:
        ctx.store.note_card_shown(job.id, fingerprint, now)
        job.card_shown, job.card_updated_at, job.card_stale = fingerprint, now, False


def _kept_replies(ctx: StepContext, video: VideoJob, what: KeptReplies) -> None:
    if what is KeptReplies.KEEP or video.id is None:
        return
    if what is KeptReplies.RELEASE:
        n = ctx.store.release_kept_edits(video.id, ctx.clock())
        if n:
            log.info("job %s complete: %d kept edit(s) released", video.id, n)
    else:
        # Each one's own step (under its lease) tells the thread and ends it: post first, then store.
        ctx.store.wake_kept_edits(video.id, ctx.clock())

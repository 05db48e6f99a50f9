"""When a job is next polled: the key's load read from the database, weighed by bot.core.polling."""

from __future__ import annotations

from bot.core import polling
from bot.core.decision import Schedule
from bot.core.videos import render_of
from bot.worker.context import StepContext
from storage.models import EditJob, VideoJob

# Booked polls further ahead than this do not compete for the next slot.
EDIT_HORIZON_SECONDS = 86_400.0


def render_load(ctx: StepContext, job: VideoJob, now: float) -> tuple[polling.KeyLoad, int]:
    """The key's renders in flight, as the poll policy sees them, and this job's place in line."""
    rows = ctx.store.renders_in_flight(job.key_id)
    return polling.key_load(rows, job.id or 0, now, ctx.poll_policy)


def next_video_poll(ctx: StepContext, job: VideoJob) -> float:
    now = ctx.clock()
    load, ahead = render_load(ctx, job, now)
    return polling.next_video_poll(now, render_of(job, ahead, now), load, ctx.poll_policy)


def next_edit_poll(ctx: StepContext, edit: EditJob) -> float:
    now = ctx.clock()
    others = ctx.store.edit_polls(edit.key_id, other_than=edit.id or 0)
    booked = sorted(max(at, now) for at in others if at < now + EDIT_HORIZON_SECONDS)
    return polling.next_edit_poll(now, len(booked) + 1, booked, ctx.poll_policy)


def next_run(ctx: StepContext, row: VideoJob | EditJob, when: float | Schedule) -> float:
    """A decision's next run as a time: a Schedule is resolved against the stored values."""
    if isinstance(when, Schedule):
        if when is Schedule.VIDEO_POLL:
            assert isinstance(row, VideoJob)
            return next_video_poll(ctx, row)
        assert isinstance(row, EditJob)
        return next_edit_poll(ctx, row)
    return when

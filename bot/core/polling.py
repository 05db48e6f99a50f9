"""When to poll a render or an edit next: a pure policy that spends each key's poll budget where it
buys the most. No I/O and no clock: the worker passes what it knows and stores the answer as the
job's next run. The reasoning is in docs/architecture.md ("Polling").

- **Evenly.** A key may poll ``cap`` times per ``span``. Routine polls keep ``span / cap`` away from
  the polls already booked for the key's other jobs, so the budget is spent at a steady pace instead
  of at the per-job minimum until the window is full, then not at all.
- **Only what can move.** Knowlify renders a few videos per key at a time and promotes parked ones in
  order: the renders in flight and the first few parked are polled, the rest are only re-checked
  (a database read, no request) until they come near the front.
- **Aim at the end.** Knowlify's ``updated_at`` is the time of the last status change, so two stage
  starts (or the creation time of a render that never waited) give the render's own pace in seconds
  per stage. Its end is then the current stage's start plus the remaining stages at that pace, and
  the render is polled just after it. Until then it is polled at a relaxed pace, just after a stage
  change, so the card still moves.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from bot.knowlify.models import VIDEO_STAGES as KNOWLIFY_VIDEO_STAGES

# Knowlify's documented render statuses in order (one list, bot.knowlify.models); `complete` follows the last one.
VIDEO_STAGES = tuple(stage for stage in KNOWLIFY_VIDEO_STAGES if stage not in ("complete", "failed"))
PARKED = "parked"  # the bot's own status for a render that waits for a slot (Knowlify says pending)
# Beyond this, a time is "no poll planned" (a job that is finished), not a booked poll.
_HORIZON_SECONDS = 86_400.0


@dataclass(frozen=True)
class PollPolicy:
    """The knobs: the floor between two polls of one job, and each bucket's poll share of a span."""

    poll_seconds: float = 5.0  # KNOWLIFY_POLL_SECONDS: never poll one job more often
    span_seconds: float = 61.0  # the span the budget counts (Knowlify's window plus a margin)
    video_poll_cap: int = 24  # polls allowed per span in the videos bucket (the rest is reserve)
    edit_poll_cap: int = 6  # the same for the edits bucket
    watched_parked: int = 3  # parked renders polled (the first ones in line); others wait unpolled
    # Poll this share of poll_seconds after an estimated stage change or end (0.5 s at the default),
    # so the change has happened by then despite clock skew and the request's own latency.
    margin_share: float = 0.1
    routine_share: float = 0.4  # share of the poll budget for looks that are not aimed at an end

    @property
    def margin(self) -> float:
        return self.poll_seconds * self.margin_share

    def spacing(self, cap: int) -> float:
        """The pace at which ``cap`` polls fill a span exactly."""
        return self.span_seconds / max(cap, 1)

    def fair_interval(self, jobs: int, cap: int, share: float = 1.0) -> float:
        """Each of ``jobs`` polled this often spends ``share`` of the poll budget (never below the floor)."""
        return max(self.poll_seconds, max(jobs, 1) * self.spacing(cap) / share)


@dataclass(frozen=True)
class Render:
    """What is known of one render after its last look."""

    status: str | None  # Knowlify's status, or PARKED while the bot knows it waits for a slot
    stage_started: float | None = None  # epoch seconds the current status began (Knowlify's updated_at)
    render_started: float | None = None  # epoch seconds it got a render slot, once known
    parked_ahead: int = 0  # parked renders of the key in line before it (only while parked)


@dataclass(frozen=True)
class KeyLoad:
    """The key's other jobs, as far as polling is concerned."""

    moving: int = 0  # renders in flight (not parked), this one included if it moves
    parked: int = 0  # renders waiting for a slot
    booked: tuple[float, ...] = ()  # when the key's other polled jobs are due, sorted


def stage_index(status: str | None) -> int | None:
    """Position of a status in Knowlify's render order (``complete`` = len), None if not a stage."""
    if status == "complete":
        return len(VIDEO_STAGES)
    if status in VIDEO_STAGES:
        return VIDEO_STAGES.index(status)
    return None


def learn_render_start(
    *,
    previous_status: str | None,
    previous_stage_started: float | None,
    render_started: float | None,
    status: str | None,
    stage_started: float | None,
    created_at: float | None,
) -> float | None:
    """When the render got its slot, from what the last two looks showed (None while unknown).

    A render that never waited got its slot when Knowlify created it. One that was parked got it at
    an unseen moment (Knowlify's ``created_at`` is when it was parked): two stage starts give its pace,
    and the pace gives back its start.
    """
    if render_started is not None:
        return render_started
    index = stage_index(status)
    if index is None or index == 0 or index == len(VIDEO_STAGES) or stage_started is None:
        return None
    if previous_status == PARKED:
        return None
    before = stage_index(previous_status)
    if before is not None and before >= 1 and previous_stage_started is not None:
        # Already past the first stage when last seen but its start unknown: it was parked.
        if index > before and stage_started > previous_stage_started:
            pace = (stage_started - previous_stage_started) / (index - before)
            return stage_started - index * pace
        return None
    return created_at


def estimated_end(render: Render) -> float | None:
    """When the render should be complete, from its own pace so far; None while unknown."""
    index = stage_index(render.status)
    if index is None or index in (0, len(VIDEO_STAGES)):
        return None
    if render.render_started is None or render.stage_started is None:
        return None
    pace = (render.stage_started - render.render_started) / index
    if pace <= 0:
        return None
    return render.stage_started + (len(VIDEO_STAGES) - index) * pace


def is_polled(render: Render, policy: PollPolicy) -> bool:
    """Only renders that can move next are worth a request."""
    return render.status != PARKED or render.parked_ahead < policy.watched_parked


def polled_jobs(load: KeyLoad, policy: PollPolicy) -> int:
    return load.moving + min(load.parked, policy.watched_parked)


def free_slot(desired: float, booked: Sequence[float], spacing: float) -> float:
    """The earliest time at or after ``desired`` at least ``spacing`` from every booked poll."""
    at = desired
    start = bisect.bisect_left(booked, at - spacing)
    for b in booked[start:]:
        if b - at >= spacing:
            break
        if abs(b - at) < spacing:
            at = b + spacing
    return at


def next_video_poll(now: float, render: Render, load: KeyLoad, policy: PollPolicy) -> float:
    """When to look at this render next, having just looked at it (or decided not to) at ``now``."""
    jobs = polled_jobs(load, policy)
    cap = policy.video_poll_cap
    spacing = policy.spacing(cap)
    floor = now + policy.poll_seconds
    if not is_polled(render, policy):
        # A re-check costs no request: it only asks the database whether the render moved up.
        return now + policy.fair_interval(jobs, cap)
    # Routine looks leave headroom for the other renders' looks at their ends; alone, it needs none.
    routine = policy.fair_interval(jobs, cap, policy.routine_share if jobs > 1 else 1.0)
    end = estimated_end(render)
    if render.status == PARKED:
        # Near the front of the line: it moves when a render ends, and its first looks after that
        # teach little (a parked render's pace needs two stage starts), so a relaxed pace will do.
        return free_slot(now + routine, load.booked, spacing)
    if end is None:
        # Still learning its pace: its fair share, evenly spaced.
        return free_slot(now + policy.fair_interval(jobs, cap), load.booked, spacing)
    aim = end + policy.margin
    if aim <= now:
        # Late against its own estimate: keep looking, at the pace the budget allows.
        return free_slot(floor, load.booked, spacing)
    if aim <= now + routine + policy.poll_seconds:
        # The end comes before the next routine look would: look right after it.
        return max(floor, aim)
    # A routine look for the card, just after a stage change, well before the end.
    return free_slot(_after_stage_change(now + routine, render, end, policy.margin), load.booked, spacing)


def _after_stage_change(earliest: float, render: Render, end: float, margin: float) -> float:
    """``earliest``, unless the render would still be in the stage the card shows: then just after
    that stage's expected end, so the look shows something new."""
    index = stage_index(render.status)
    assert render.stage_started is not None and index is not None  # both known, or there is no end
    next_change = render.stage_started + (end - render.stage_started) / (len(VIDEO_STAGES) - index)
    return next_change + margin if earliest < next_change else earliest


def next_edit_poll(now: float, edits_in_flight: int, booked: Sequence[float], policy: PollPolicy) -> float:
    """Edits share a small bucket: each running edit gets its fair share of it, evenly spaced."""
    cap = policy.edit_poll_cap
    interval = max(2 * policy.poll_seconds, policy.fair_interval(edits_in_flight, cap))
    return free_slot(now + interval, booked, policy.spacing(cap))


def key_load(
    rows: Iterable[tuple[int, str | None, float]], job_id: int, now: float, policy: PollPolicy
) -> tuple[KeyLoad, int]:
    """The key's load seen from one job, and how many parked renders are in line before it.

    ``rows`` are (job id, status, next run) of the key's renders in flight, in any order. Job ids
    follow creation order, which is the order Knowlify parks and promotes them in.
    """
    ordered = sorted(rows)
    moving = sum(1 for _, status, _ in ordered if status != PARKED)
    parked_ids = [job for job, status, _ in ordered if status == PARKED]
    ahead = sum(1 for job in parked_ids if job < job_id)
    watched = set(parked_ids[: policy.watched_parked])
    booked = sorted(
        max(at, now)
        for job, status, at in ordered
        if job != job_id and (status != PARKED or job in watched) and at < now + _HORIZON_SECONDS
    )
    return KeyLoad(moving=moving, parked=len(parked_ids), booked=tuple(booked)), ahead

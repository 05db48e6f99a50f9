"""The poll policy as plain values: who is polled, when, and that a key's polls stay within budget."""

from __future__ import annotations

import heapq
import math
import random

import pytest

from bot.core.polling import (
    PARKED,
    KeyLoad,
    PollPolicy,
    Render,
    estimated_end,
    free_slot,
    is_polled,
    key_load,
    learn_render_start,
    next_edit_poll,
    next_video_poll,
    stage_index,
)

POLICY = PollPolicy(poll_seconds=5.0, span_seconds=61.0, video_poll_cap=24, edit_poll_cap=6)
STAGES = ("pending", "queued", "voiceover", "highlevel", "lowlevel", "scan_assets", "generating_frames")


def test_fair_interval_spreads_the_poll_share_over_the_span_and_never_beats_the_floor():
    assert POLICY.fair_interval(8, 24) == pytest.approx(8 * 61 / 24)
    assert POLICY.fair_interval(1, 24) == 5.0  # alone: KNOWLIFY_POLL_SECONDS
    assert POLICY.fair_interval(0, 24) == 5.0


def test_stage_index_follows_the_documented_order():
    assert [stage_index(s) for s in STAGES] == list(range(7))
    assert stage_index("complete") == 7
    assert stage_index(PARKED) is None and stage_index("failed") is None and stage_index(None) is None


@pytest.mark.parametrize(
    ("previous", "previous_started", "known", "status", "started", "created", "expected"),
    [
        # Never parked: the slot came with the creation.
        ("queued", None, None, "highlevel", 130.0, 100.0, 100.0),
        ("pending", 100.0, None, "voiceover", 120.0, 100.0, 100.0),
        # Parked: created_at is when it was parked, so one look is not enough ...
        (PARKED, None, None, "voiceover", 520.0, 100.0, None),
        # ... two stage starts are: 10 s per stage, voiceover (2) began at 520 → slot at 500.
        ("voiceover", 520.0, None, "lowlevel", 540.0, 100.0, 500.0),
        # The same stage twice teaches nothing.
        ("voiceover", 520.0, None, "voiceover", 520.0, 100.0, None),
        # Still waiting in the first stage, or already done: nothing to learn.
        ("queued", None, None, "pending", 100.0, 100.0, None),
        ("queued", None, None, "complete", 170.0, 100.0, None),
        # Once known it stays.
        ("voiceover", 520.0, 480.0, "lowlevel", 540.0, 100.0, 480.0),
    ],
)
def test_learn_render_start(previous, previous_started, known, status, started, created, expected):
    got = learn_render_start(
        previous_status=previous,
        previous_stage_started=previous_started,
        render_started=known,
        status=status,
        stage_started=started,
        created_at=created,
    )
    assert got == expected


def test_the_end_is_the_current_stage_start_plus_the_remaining_stages_at_the_renders_pace():
    # Slot at 100, highlevel (stage 3 of 7) began at 130: 10 s per stage, complete at 170.
    assert estimated_end(Render("highlevel", stage_started=130.0, render_started=100.0)) == 170.0
    assert estimated_end(Render("highlevel", stage_started=130.0)) is None
    assert estimated_end(Render("pending", stage_started=100.0, render_started=100.0)) is None
    assert estimated_end(Render(PARKED)) is None
    # Timestamps that contradict each other (a slot after the stage began) give no estimate.
    assert estimated_end(Render("highlevel", stage_started=130.0, render_started=140.0)) is None


def test_a_render_is_polled_right_after_its_estimated_end():
    render = Render("generating_frames", stage_started=160.0, render_started=100.0)  # ends at 170
    assert next_video_poll(162.0, render, KeyLoad(moving=8), POLICY) == pytest.approx(170.5)


def test_never_twice_within_poll_seconds_even_when_the_end_is_near():
    render = Render("generating_frames", stage_started=160.0, render_started=100.0)
    assert next_video_poll(169.0, render, KeyLoad(moving=1), POLICY) == 174.0


def test_far_from_its_end_a_render_is_looked_at_at_a_relaxed_pace_and_never_twice_in_one_stage():
    routine = POLICY.fair_interval(8, 24, POLICY.routine_share)  # ≈ 50.8 s: 40 % of the budget
    # 20 s per stage, in voiceover since 140: the relaxed look (181.7) falls in a later stage.
    render = Render("voiceover", stage_started=140.0, render_started=100.0)  # ends at 240
    assert next_video_poll(141.0, render, KeyLoad(moving=8), POLICY) == pytest.approx(141.0 + routine)
    # 60 s per stage: it would still be in voiceover then, so it waits for highlevel (at 200).
    slow = Render("voiceover", stage_started=140.0, render_started=20.0)  # ends at 440
    assert next_video_poll(141.0, slow, KeyLoad(moving=8), POLICY) == pytest.approx(200.5)


def test_late_against_its_estimate_it_is_polled_at_the_floor_pace_but_spaced_from_the_others():
    render = Render("generating_frames", stage_started=160.0, render_started=100.0)  # ends at 170
    assert next_video_poll(180.0, render, KeyLoad(moving=2), POLICY) == 185.0
    spacing = 61.0 / 24
    got = next_video_poll(180.0, render, KeyLoad(moving=2, booked=(184.0,)), POLICY)
    assert got == pytest.approx(184.0 + spacing)


def test_a_render_whose_pace_is_unknown_gets_its_fair_share_away_from_booked_polls():
    load = KeyLoad(moving=8, booked=(120.0, 121.0))
    at = next_video_poll(100.0, Render("queued"), load, POLICY)
    assert at == pytest.approx(121.0 + 61.0 / 24)  # fair share lands at 120.3: too close to both


def test_only_the_first_parked_renders_are_polled_the_rest_are_rechecked_without_a_request():
    assert is_polled(Render("voiceover"), POLICY)
    assert is_polled(Render(PARKED, parked_ahead=2), POLICY)
    assert not is_polled(Render(PARKED, parked_ahead=3), POLICY)
    deep = next_video_poll(100.0, Render(PARKED, parked_ahead=10), KeyLoad(moving=3, parked=27), POLICY)
    assert deep == pytest.approx(100.0 + 6 * 61 / 24)  # 3 moving + 3 watched share the budget


def test_free_slot_keeps_the_spacing_from_every_booked_poll():
    assert free_slot(10.0, (), 2.5) == 10.0
    assert free_slot(10.0, (5.0, 20.0), 2.5) == 10.0
    assert free_slot(10.0, (9.0, 11.0, 13.0, 20.0), 2.5) == 15.5
    assert free_slot(10.0, (7.5,), 2.5) == 10.0  # exactly the spacing away is fine


def test_key_load_counts_moving_and_parked_and_books_only_polled_jobs():
    rows = [
        (1, "voiceover", 50.0),
        (2, "queued", 40.0),
        (3, PARKED, 60.0),
        (4, PARKED, 70.0),
        (5, PARKED, 80.0),
        (6, PARKED, 90.0),
        (7, "highlevel", 9.0e12),
    ]
    load, ahead = key_load(rows, 6, 45.0, PollPolicy(watched_parked=2))
    assert (load.moving, load.parked, ahead) == (3, 4, 3)
    # Job 6 itself, job 5 (third in line: not polled) and job 7 (nothing planned) are not booked;
    # a job already due counts as due now.
    assert load.booked == (45.0, 50.0, 60.0, 70.0)


def test_edits_share_their_small_bucket_evenly():
    assert next_edit_poll(100.0, 1, (), POLICY) == pytest.approx(100.0 + 61 / 6)  # alone: the whole share
    assert next_edit_poll(100.0, 4, (), POLICY) == pytest.approx(100.0 + 4 * 61 / 6)
    assert next_edit_poll(100.0, 1, (110.0,), POLICY) == pytest.approx(110.0 + 61 / 6)


# --- the policy run against a simulated key -------------------------------------------------


def simulate(durations: list[float], slots: int, policy: PollPolicy) -> tuple[list[float], list[float]]:
    """A key with `slots` render slots, every render created at 0 and looked at only when the
    policy says. Promotion does not depend on looking, so the schedule is fixed up front: each
    parked render takes the slot that frees first, in line order. Returns (lags, poll times)."""
    n = len(durations)
    start = [0.0] * n
    frees = sorted(durations[:slots])
    for i in range(slots, n):
        start[i] = heapq.heappop(frees)
        heapq.heappush(frees, start[i] + durations[i])
    end = [start[i] + durations[i] for i in range(n)]

    def look(i: int, t: float) -> tuple[str, float | None]:
        if i >= slots and t < start[i]:
            return PARKED, None
        if t >= end[i]:
            return "complete", end[i]
        pace = durations[i] / 7
        k = int((t - start[i]) // pace)
        return STAGES[k], start[i] + k * pace

    status = ["queued" if i < slots else PARKED for i in range(n)]
    stage_started: list[float | None] = [None] * n
    render_started: list[float | None] = [None] * n
    next_at = [0.0] * n
    polls: list[float] = []
    last_poll: dict[int, float] = {}
    lags: list[float] = []
    live = set(range(n))
    while live:
        i = min(live, key=lambda j: (next_at[j], j))
        t = next_at[i]
        rows = [(j, status[j], next_at[j]) for j in live]
        load, ahead = key_load(rows, i, t, policy)
        render = Render(status[i], stage_started[i], render_started[i], ahead)
        if not is_polled(render, policy):
            next_at[i] = next_video_poll(t, render, load, policy)
            continue
        recent = [p for p in polls if p > t - policy.span_seconds]
        if len(recent) >= policy.video_poll_cap:
            # The budget gate refuses; the worker retries once the oldest call has left the span.
            next_at[i] = recent[-policy.video_poll_cap] + policy.span_seconds + 1e-3
            continue
        assert t - last_poll.get(i, -math.inf) >= policy.poll_seconds - 1e-9, "polled within the floor"
        last_poll[i] = t
        polls.append(t)
        seen, began = look(i, t)
        if seen == "complete":
            lags.append(t - end[i])
            live.discard(i)
            continue
        if seen == "pending" and status[i] == PARKED:
            seen = PARKED  # Knowlify shows a parked render as pending: the bot keeps it parked
        if seen != PARKED:
            render_started[i] = learn_render_start(
                previous_status=status[i],
                previous_stage_started=stage_started[i],
                render_started=render_started[i],
                status=seen,
                stage_started=began,
                created_at=0.0,
            )
            status[i], stage_started[i] = seen, began
        render = Render(status[i], stage_started[i], render_started[i], ahead)
        next_at[i] = next_video_poll(t, render, load, policy)
    return lags, polls


@pytest.mark.parametrize(("renders", "slots"), [(8, 8), (30, 3)])
def test_on_a_simulated_key_links_come_soon_after_the_end_for_fewer_polls_than_a_naive_poller(renders, slots):
    rng = random.Random(renders)
    durations = [rng.uniform(40.0, 120.0) for _ in range(renders)]
    lags, polls = simulate(durations, slots, POLICY)
    assert len(lags) == renders
    # The naive poller at the same budget looks at every render every 60 / floor(30 / N) s.
    interval = 60.0 / max(1, 30 // renders)
    ends = simulate_ends(durations, slots)
    naive_polls = sum(math.ceil(end / interval) for end in ends)
    naive_mean_lag = sum(math.ceil(end / interval) * interval - end for end in ends) / renders
    assert sum(lags) / renders < 0.25 * naive_mean_lag
    assert len(polls) <= naive_polls


def simulate_ends(durations: list[float], slots: int) -> list[float]:
    frees = sorted(durations[:slots])
    ends = list(durations[:slots])
    for d in durations[slots:]:
        start = heapq.heappop(frees)
        heapq.heappush(frees, start + d)
        ends.append(start + d)
    return ends

"""Per-key pacing: no span of the server's window ever holds more calls than the limit."""

from __future__ import annotations

import threading

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.knowlify.budget import (
    Bucket,
    Budget,
    InMemoryCallLog,
    bucket_for,
    key_fingerprint,
)
from bot.knowlify.errors import BudgetExhausted

KEY = "kn_" + "0123456789abcdef" * 4


class FakeClock:
    def __init__(self, now: float = 1_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def make_budget(clock: FakeClock, log: InMemoryCallLog | None = None, **kwargs) -> Budget:
    return Budget(log or InMemoryCallLog(), key_id=key_fingerprint(KEY), clock=clock, **kwargs)


def refused(budget: Budget, bucket: str, purpose: str) -> float:
    with pytest.raises(BudgetExhausted) as info:
        budget.acquire(bucket, purpose)
    assert info.value.status is None
    return info.value.retry_after


@pytest.mark.parametrize(
    ("method", "path", "bucket"),
    [
        ("POST", "/v1/videos", Bucket.VIDEOS),
        ("GET", "/v1/videos/550e8400-e29b-41d4-a716-446655440000", Bucket.VIDEOS),
        ("POST", "/v1/edits", Bucket.EDITS),
        ("GET", "/v1/edits/e942890a", Bucket.EDITS),
        ("POST", "/v1/edits/e942890a/revert", Bucket.EDITS),
        ("GET", "/v1/videos/abc?x=1", Bucket.VIDEOS),
    ],
)
def test_each_endpoint_maps_to_its_documented_bucket(method: str, path: str, bucket: Bucket) -> None:
    assert bucket_for(method, path) is bucket


@pytest.mark.parametrize("path", ["/v1/videosX", "/v2/videos", "/v1/other"])
def test_unknown_path_is_refused_rather_than_unpaced(path: str) -> None:
    with pytest.raises(ValueError):
        bucket_for("GET", path)


def test_key_fingerprint_is_short_stable_and_not_the_key() -> None:
    fp = key_fingerprint(KEY)
    assert fp == key_fingerprint(KEY)
    assert len(fp) == 12 and int(fp, 16) >= 0
    assert fp not in KEY and fp != key_fingerprint(KEY + "0")


def test_actions_fill_the_limit_then_wait_until_the_oldest_call_leaves_the_span() -> None:
    clock = FakeClock(0.0)
    budget = make_budget(clock)
    for i in range(30):
        clock.now = float(i)
        budget.acquire(Bucket.VIDEOS, "action")
    # Span is 60 s + 1 s margin: the call at t=0 frees its slot at t=61.
    assert refused(budget, Bucket.VIDEOS, "action") == pytest.approx(61 - 29, abs=0.01)
    clock.now = 60.9
    refused(budget, Bucket.VIDEOS, "action")
    clock.now = 61.0
    budget.acquire(Bucket.VIDEOS, "action")


def test_polls_leave_the_reserve_for_the_next_user_action() -> None:
    clock = FakeClock()
    budget = make_budget(clock)
    for _ in range(24):
        budget.acquire(Bucket.VIDEOS, "poll")
    refused(budget, Bucket.VIDEOS, "poll")
    for _ in range(6):
        budget.acquire(Bucket.VIDEOS, "action")
    refused(budget, Bucket.VIDEOS, "action")

    for _ in range(6):
        budget.acquire(Bucket.EDITS, "poll")
    refused(budget, Bucket.EDITS, "poll")
    for _ in range(4):
        budget.acquire(Bucket.EDITS, "action")
    refused(budget, Bucket.EDITS, "action")


def test_poll_wait_counts_until_enough_calls_have_left_not_just_the_oldest() -> None:
    clock = FakeClock(0.0)
    budget = make_budget(clock)
    for i in range(10):  # fill the edits bucket with actions at t=0..9
        clock.now = float(i)
        budget.acquire(Bucket.EDITS, "action")
    # Polls may use 6 of 10: five calls (t=0..4) must leave, the last of them at t=4+61.
    wait = refused(budget, Bucket.EDITS, "poll")
    assert wait == pytest.approx(4 + 61 - 9, abs=0.01)
    clock.now += wait
    budget.acquire(Bucket.EDITS, "poll")


def test_buckets_and_keys_are_independent() -> None:
    clock = FakeClock()
    log = InMemoryCallLog()
    budget = make_budget(clock, log)
    for _ in range(10):
        budget.acquire(Bucket.EDITS, "action")
    refused(budget, Bucket.EDITS, "action")
    budget.acquire(Bucket.VIDEOS, "action")
    other = Budget(log, key_id=key_fingerprint("kn_other"), clock=clock)
    other.acquire(Bucket.EDITS, "action")


def test_observe_blocks_until_the_server_window_resets_when_nothing_remains() -> None:
    clock = FakeClock(100.0)
    budget = make_budget(clock)
    budget.observe(Bucket.VIDEOS, {"X-RateLimit-Limit": "30", "X-RateLimit-Remaining": "27"})
    budget.acquire(Bucket.VIDEOS, "poll")
    budget.observe(Bucket.VIDEOS, {"x-ratelimit-remaining": "0", "x-ratelimit-reset": "42"})
    assert refused(budget, Bucket.VIDEOS, "action") == pytest.approx(43, abs=0.01)  # reset + 1 s margin
    budget.acquire(Bucket.EDITS, "action")  # the other bucket is untouched
    clock.now += 43
    budget.acquire(Bucket.VIDEOS, "action")


def test_observe_without_reset_blocks_a_whole_window_and_ignores_garbage() -> None:
    clock = FakeClock(0.0)
    budget = make_budget(clock)
    budget.observe(Bucket.EDITS, {"X-RateLimit-Remaining": "many"})
    budget.acquire(Bucket.EDITS, "poll")
    budget.observe(Bucket.EDITS, {"X-RateLimit-Remaining": "0"})
    assert refused(budget, Bucket.EDITS, "poll") == pytest.approx(61, abs=0.01)


def test_penalize_keeps_the_later_of_two_pauses() -> None:
    clock = FakeClock(0.0)
    budget = make_budget(clock)
    budget.penalize(Bucket.EDITS, 30)
    budget.penalize(Bucket.EDITS, 5)
    assert refused(budget, Bucket.EDITS, "action") == pytest.approx(31, abs=0.01)
    clock.now = 31.0
    budget.acquire(Bucket.EDITS, "action")


def test_refused_calls_are_not_recorded() -> None:
    clock = FakeClock(0.0)
    log = InMemoryCallLog()
    budget = make_budget(clock, log)
    budget.penalize(Bucket.VIDEOS, 10)
    for _ in range(5):
        refused(budget, Bucket.VIDEOS, "action")
    assert log.calls(budget.scope(Bucket.VIDEOS)) == []


def test_custom_limits_and_invalid_settings() -> None:
    clock = FakeClock()
    budget = make_budget(clock, limits={Bucket.EDITS: 3}, reserve={Bucket.EDITS: 1})
    budget.acquire(Bucket.EDITS, "poll")
    budget.acquire(Bucket.EDITS, "poll")
    refused(budget, Bucket.EDITS, "poll")
    budget.acquire(Bucket.EDITS, "action")
    refused(budget, Bucket.EDITS, "action")
    with pytest.raises(ValueError):
        make_budget(clock, reserve={Bucket.EDITS: 10})
    with pytest.raises(ValueError):
        budget.acquire(Bucket.EDITS, "burst")


def test_in_memory_log_reserves_atomically_across_threads() -> None:
    log = InMemoryCallLog()
    results: list[float] = []
    barrier = threading.Barrier(40)

    def worker() -> None:
        barrier.wait()
        results.append(log.try_reserve("k:edits", 5.0, 61.0, 10))

    threads = [threading.Thread(target=worker) for _ in range(40)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results.count(0.0) == 10
    assert all(r > 0 for r in results if r != 0.0)


calls_strategy = st.lists(
    st.tuples(
        st.floats(min_value=0.0, max_value=8.0, allow_nan=False),
        st.sampled_from([Bucket.VIDEOS, Bucket.EDITS]),
        st.sampled_from(["action", "poll"]),
    ),
    max_size=250,
)


@settings(max_examples=150, deadline=None)
@given(calls=calls_strategy)
def test_no_60_second_span_ever_exceeds_the_limit(calls: list[tuple[float, Bucket, str]]) -> None:
    clock = FakeClock(0.0)
    budget = make_budget(clock)
    accepted: dict[str, list[tuple[float, str]]] = {Bucket.VIDEOS: [], Bucket.EDITS: []}
    for gap, bucket, purpose in calls:
        clock.now += gap
        try:
            budget.acquire(bucket, purpose)
        except BudgetExhausted as exc:
            assert exc.retry_after > 0
            continue
        accepted[bucket].append((clock.now, purpose))

    for bucket, entries in accepted.items():
        times = [t for t, _ in entries]
        limit = budget.limits[bucket]
        poll_cap = limit - budget.reserve[bucket]
        for i, (start, purpose) in enumerate(entries):
            # Any closed 60 s span starting at an accepted call (the worst case) holds <= limit.
            assert sum(1 for t in times[i:] if t <= start + 60.0) <= limit
            if purpose == "poll":
                # A poll is only let through while the span behind it leaves the reserve free.
                assert sum(1 for t in times[: i + 1] if t > start - budget.span) <= poll_cap


@settings(max_examples=100, deadline=None)
@given(
    calls=st.lists(st.floats(min_value=0.0, max_value=5.0, allow_nan=False), min_size=1, max_size=60),
    purpose=st.sampled_from(["action", "poll"]),
)
def test_retry_after_is_exactly_when_a_slot_frees(calls: list[float], purpose: str) -> None:
    clock = FakeClock(1_700_000_000.0)  # wall-clock magnitude, where float rounding bites
    budget = make_budget(clock)
    for gap in calls:
        clock.now += gap
        try:
            budget.acquire(Bucket.EDITS, purpose)
        except BudgetExhausted as exc:
            wait = exc.retry_after
            assert wait > 0
            if wait > 0.01:  # not a moment sooner (beyond the 1 ms rounding-up) ...
                clock.now += wait - 0.01
                refused(budget, Bucket.EDITS, purpose)
                clock.now += 0.01
            else:
                clock.now += wait
            budget.acquire(Bucket.EDITS, purpose)  # ... and room exactly then

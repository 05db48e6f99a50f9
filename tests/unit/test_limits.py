"""Per-person limits and who may edit: the pure rules, and which stored rows count."""

from __future__ import annotations

import pytest

from bot.core.edit_reply import mentions, without_mention
from bot.core.limits import DAY_SECONDS, next_allowed
from storage.admission import DailyLimit
from storage.db import init_schema, make_engine
from storage.models import EditJob, VideoJob
from storage.repo import Store
from tests.unit.test_store import Clock, job


def test_under_the_limit_or_no_limit_is_allowed():
    assert next_allowed([], 1, now=1000.0) is None
    assert next_allowed([10.0, 20.0], 3, now=1000.0) is None
    assert next_allowed([10.0] * 100, 0, now=1000.0) is None  # 0 = no limit


def test_at_the_limit_the_next_one_is_when_the_oldest_counted_leaves_the_24_hours():
    now = 100_000.0
    times = [now - 3000.0, now - 60.0, now - 7200.0]
    assert next_allowed(times, 3, now) == pytest.approx((now - 7200.0 + DAY_SECONDS + 59) // 60 * 60)
    # Two over the limit (the limit was lowered): two must leave the window first.
    assert next_allowed(times, 1, now) == pytest.approx((now - 60.0 + DAY_SECONDS + 59) // 60 * 60)
    # Requests older than 24 hours do not count.
    assert next_allowed([now - DAY_SECONDS - 1] * 5, 1, now) is None


def test_the_next_time_is_rounded_up_to_a_whole_minute_never_earlier():
    t = next_allowed([1_000_030.5], 1, 1_000_040.0)
    assert t is not None and t % 60 == 0 and t >= 1_000_030.5 + DAY_SECONDS


def test_the_bot_mention_is_found_and_removed_wherever_it_stands():
    assert mentions("<@U0BOT> make it blue", "U0BOT")
    assert mentions("make it blue, <@U0BOT|knowlify>", "U0BOT")
    assert not mentions("ask <@U0BOB> about it", "U0BOT")
    assert not mentions("<@U0BOT> hi", None)
    assert without_mention("<@U0BOT> make scene 2 slower", "U0BOT") == "make scene 2 slower"
    assert without_mention("<@U0BOT>: make it <@U0BOB>'s way", "U0BOT") == "make it <@U0BOB>'s way"
    assert without_mention("make it blue <@U0BOT|knowlify>", "U0BOT") == "make it blue"


@pytest.fixture
def store(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'bot.db'}")
    init_schema(engine)
    yield Store(engine, Clock(50_000.0))
    engine.dispose()


def counted_by(store: Store, team: str, user: str, n: int) -> list[float]:
    """The times the daily limit is given for one more request of `user`, which it then refuses."""
    seen: list[list[float]] = []

    def refuse(times, now):
        seen.append(sorted(times))
        return now + 60.0

    values = dict(request_key=f"probe:{n}", team_id=team, channel_id="C", user_id=user, key_id="k", prompt="p")
    assert store.take_video(values, DailyLimit(1_000.0, refuse)).refused_until == store.clock.now + 60.0
    return seen[0]


def test_only_videos_knowlify_took_or_may_take_count(store):
    for n, (state, uuid) in enumerate(
        [
            ("new", None),  # queued to Knowlify: counts
            ("rendering", "u1"),
            ("complete", "u2"),
            ("unknown", None),  # may have reached Knowlify: counts
            ("failed", "u3"),  # rendered and failed: Knowlify spent on it
            ("failed", None),  # refused before it started: does not count
            ("needs_invite", None),  # never sent: does not count
        ]
    ):
        store.add_video(job(n, state=state, knowlify_uuid=uuid))
    store.add_video(VideoJob(request_key="other", team_id="T", channel_id="C", user_id="V", key_id="k", prompt="p"))
    assert len(counted_by(store, "T", "U", 1)) == 5
    assert counted_by(store, "T2", "U", 2) == []  # per workspace user
    store.clock.now += 1_000.0
    assert counted_by(store, "T", "U", 3) == []  # none inside the window any more
    assert store.video_by_request_key("probe:1") is None  # a refused request stores nothing


def test_a_person_at_the_limit_is_refused_and_a_request_already_stored_is_not(store):
    limit = DailyLimit(DAY_SECONDS, lambda times, now: next_allowed(times, 2, now))
    values = dict(team_id="T", channel_id="C", user_id="U", key_id="k", prompt="p")
    first = store.take_video({**values, "request_key": "a"}, limit)
    assert first.job_id is not None
    assert store.take_video({**values, "request_key": "b"}, limit).job_id is not None
    third = store.take_video({**values, "request_key": "c"}, limit)
    assert third.job_id is None and third.refused_until is not None and third.refused_until >= 50_000 + DAY_SECONDS
    again = store.take_video({**values, "request_key": "a"}, limit)  # the same trigger sent again
    assert again.duplicate and again.refused_until is None


def _edit(video_id: int, ts: str, state: str) -> EditJob:
    return EditJob(
        video_id=video_id, key_id="k", team_id="T", channel_id="C", reply_ts=ts, user_id="U", text="x", state=state
    )


def test_refused_and_cancelled_edits_do_not_count_and_a_cancelled_edit_stays_cancelled(store):
    video = store.add_video(job(1, state="rendering"))
    assert video is not None and video.id is not None
    for ts, state in [("1.1", "held"), ("1.2", "submitted"), ("1.3", "refused"), ("1.4", "error")]:
        store.add_edit(_edit(video.id, ts, state), None)
    assert len(store.edit_times("T", "U", 0.0)) == 3

    # The worker holds the kept edit when its reply is deleted: the cancel still wins.
    (held,) = store.claim(EditJob, "w1", 60, 5, EditJob.state == "held")
    cancelled = store.cancel_kept_edit("T", "C", "1.1")
    assert cancelled is not None and cancelled.state == "cancelled"
    assert not store.save(held, "w1", state="submitting")
    assert not store.release(held, "w1", 0.0, state="pending")
    assert store.get_edit(held.id).state == "cancelled"  # type: ignore[arg-type, union-attr]
    assert store.cancel_kept_edit("T", "C", "1.1") is None  # a second deletion event: nothing to do
    assert store.cancel_kept_edit("T", "C", "1.2") is None  # submitted: deleting changes nothing
    assert len(store.edit_times("T", "U", 0.0)) == 2

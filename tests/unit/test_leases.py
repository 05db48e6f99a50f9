"""Leases that hold: renewed while a row is worked, no write after they expire, and a wake-up set
by a listener meanwhile is never moved later by the worker's release."""

from __future__ import annotations

import pytest

from storage.db import init_schema, make_engine
from storage.models import EditJob, VideoJob
from storage.repo import Store
from tests.unit.test_store import Clock, job

NEW = VideoJob.state == "new"


@pytest.fixture
def store(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'bot.db'}")
    init_schema(engine)
    clock = Clock()
    yield Store(engine, clock=clock)
    engine.dispose()


def clock_of(store: Store) -> Clock:
    assert isinstance(store.clock, Clock)
    return store.clock


def test_a_renewed_lease_outlives_its_first_term(store):
    clock = clock_of(store)
    store.add_video(job(1))
    (row,) = store.claim(VideoJob, "a", 30, 5, NEW)
    clock.now += 25
    assert store.renew(VideoJob, [row.id], "a", 30) == 1
    clock.now += 25  # 50 s after the claim: the first term is over, the renewed one is not
    assert store.claim(VideoJob, "b", 30, 5, NEW) == []
    assert store.save(row, "a", state="ready")


def test_an_expired_lease_writes_nothing_and_cannot_be_renewed(store):
    clock = clock_of(store)
    store.add_video(job(1))
    (row,) = store.claim(VideoJob, "a", 30, 5, NEW)
    clock.now += 31  # expired, and nobody has taken the row over yet
    assert not store.save(row, "a", state="ready")
    assert not store.release(row, "a", clock.now)
    assert store.renew(VideoJob, [row.id], "a", 30) == 0
    (theirs,) = store.claim(VideoJob, "b", 30, 5, NEW)  # due although its next_run_at says HELD
    assert theirs.id == row.id and store.save(theirs, "b", state="ready")
    assert store.get_video(row.id).state == "ready"


def test_a_claimed_row_falls_due_when_its_lease_ends_and_release_schedules_it(store):
    clock = clock_of(store)
    store.add_video(job(1))
    (row,) = store.claim(VideoJob, "a", 30, 5, NEW)
    held = store.get_video(row.id)
    assert held.next_run_at == held.lease_until == clock.now + 30
    assert store.release(row, "a", clock.now + 10, state="new")
    stored = store.get_video(row.id)
    assert (stored.next_run_at, stored.lease_owner, stored.lease_until) == (clock.now + 10, None, None)


def test_a_wake_up_set_during_the_step_survives_the_release(store):
    clock = clock_of(store)
    video = store.add_video(job(1, state="complete"))
    edit = store.add_edit(
        EditJob(video_id=video.id, key_id="k", team_id="T", channel_id="C", reply_ts="5.5", user_id="U",
                text="x", state="submitted", knowlify_edit_id="e1"),
        None,
    )
    (row,) = store.claim(EditJob, "a", 30, 5, EditJob.state == "submitted")
    clock.now += 1
    assert store.request_revert(edit.id, "U", None)  # a reaction arrives while the poll runs
    clock.now += 1
    assert store.release(row, "a", 9.0e12, state="complete")  # the poll's own choice: nothing to do
    stored = store.get_edit(edit.id)
    assert stored.next_run_at == 1001.0 and stored.revert_state == "requested"
    assert store.claim(EditJob, "b", 30, 5, EditJob.revert_state == "requested")


@pytest.mark.parametrize(("wake", "mine", "expected"), [(2, 5, 2), (2, 1, 1), (None, 5, 5), (None, 100, 100)])
def test_release_keeps_the_earlier_of_a_wake_up_and_its_own_choice(store, wake, mine, expected):
    clock = clock_of(store)
    store.add_video(job(1))
    (row,) = store.claim(VideoJob, "a", 30, 5, NEW)
    if wake is not None:
        assert store.update_where(VideoJob, {"next_run_at": clock.now + wake}, VideoJob.id == row.id)
    clock.now += 0.5
    assert store.release(row, "a", 1000.0 + mine)
    assert store.get_video(row.id).next_run_at == 1000.0 + expected


def test_renewal_keeps_a_wake_up_and_a_restart_takes_its_rows_back_at_once(store):
    clock = clock_of(store)
    store.add_video(job(1))
    store.add_video(job(2))
    (woken,) = store.claim(VideoJob, "a", 30, 1, NEW)
    (plain,) = store.claim(VideoJob, "a", 30, 1, NEW)
    store.update_where(VideoJob, {"next_run_at": clock.now + 1}, VideoJob.id == woken.id)
    clock.now += 10
    assert store.renew(VideoJob, [woken.id, plain.id], "a", 30) == 2
    assert store.get_video(woken.id).next_run_at == 1001.0
    assert store.get_video(plain.id).next_run_at == clock.now + 30
    # The process dies; it comes back under the same worker id: its rows are due at once.
    assert store.take_back(VideoJob, "a") == 2
    assert {r.id for r in store.claim(VideoJob, "a", 30, 5, NEW)} == {woken.id, plain.id}
    assert store.claim(VideoJob, "b", 30, 5, NEW) == []


def test_an_older_create_held_by_a_worker_counts_as_due_now(store):
    clock = clock_of(store)
    store.add_video(job(1, state="ready"))
    store.add_video(job(2, state="ready"))
    store.claim(VideoJob, "a", 30, 1, VideoJob.state == "ready")  # job 1, its next_run_at HELD
    assert store.older_create_waiting("k", 2, ("new", "ready")) == clock.now


def test_renewing_only_touches_the_owners_rows(store):
    store.add_video(job(1))
    store.add_video(job(2))
    (mine,) = store.claim(VideoJob, "a", 30, 1, NEW)
    (theirs,) = store.claim(VideoJob, "b", 30, 1, NEW)
    assert store.renew(VideoJob, [mine.id, theirs.id], "a", 60) == 1
    assert store.renew(VideoJob, [], "a", 60) == 0


def test_a_row_whose_release_failed_is_handed_back_on_the_next_tick_not_when_its_lease_ends(store):
    """A step fails and so does its release (the disk is full): the row stays leased, and the next
    tick, once the database takes writes again, frees it for its retry instead of waiting 120 s."""
    from unittest.mock import MagicMock

    from bot.worker import Worker

    clock = clock_of(store)
    store.add_video(job(1))
    worker = Worker(store, MagicMock(), MagicMock(), key_id="k", poll_seconds=1, owner="w", clock=clock)

    def failing_step(row):
        raise RuntimeError("the step failed")

    worker._video_step = failing_step  # type: ignore[method-assign]
    release = store.release
    store.release = MagicMock(side_effect=OSError("database or disk is full"))  # type: ignore[method-assign]
    worker.tick()
    held = store.get_video(1)
    assert held.lease_owner == "w" and held.lease_until == clock.now + 120
    store.release = release  # type: ignore[method-assign]
    clock.now += 1
    worker.tick()
    freed = store.get_video(1)
    assert freed.lease_owner is None and freed.attempts == 1
    assert clock.now < freed.next_run_at < clock.now + 30  # its retry backoff, not the lease's end
    worker.close()

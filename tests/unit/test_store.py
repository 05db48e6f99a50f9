"""The storage layer: leases that hold across replicas, de-duplication keys, the shared budget log."""

from __future__ import annotations

import threading

import pytest

from bot.core.limits import DAY_SECONDS, next_allowed
from bot.knowlify.budget import Budget
from bot.knowlify.errors import BudgetExhausted
from storage.admission import Admission, DailyLimit
from storage.db import init_schema, make_engine
from storage.models import EditJob, VideoJob
from storage.repo import Store


class Clock:
    def __init__(self, now: float = 1_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def db(db_url):
    engine = make_engine(db_url)
    init_schema(engine)
    yield engine
    engine.dispose()


def job(n: int, **kw) -> VideoJob:
    return VideoJob(
        request_key=f"cmd:T:{n}", team_id="T", channel_id="C", user_id="U", key_id="k", prompt=f"p{n}", **kw
    )


def test_a_repeated_request_key_inserts_nothing(db):
    store = Store(db)
    assert store.add_video(job(1)) is not None
    assert store.add_video(job(1)) is None
    assert len(store.recent_videos("T", "C")) == 1


def test_two_replicas_never_claim_the_same_row(db):
    clock = Clock()
    a, b = Store(db, clock), Store(db, clock)
    for n in range(20):
        a.add_video(job(n))
    claimed: list[set[int]] = [set(), set()]

    def run(i: int, store: Store) -> None:
        for _ in range(10):  # rows are kept, not released: each worker holds what it took
            rows = store.claim(
                VideoJob, f"w{i}", 60, 3, VideoJob.state == "new", VideoJob.lease_owner.is_(None)
            )
            claimed[i] |= {r.id for r in rows}

    threads = [threading.Thread(target=run, args=(i, s)) for i, s in enumerate((a, b))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert claimed[0] | claimed[1] == set(range(1, 21))
    assert not claimed[0] & claimed[1]


def test_a_worker_restarted_under_its_name_takes_its_rows_back_at_once(db):
    clock = Clock()
    store = Store(db, clock)
    store.add_video(job(1))
    assert len(store.claim(VideoJob, "replica-1", 120, 5, VideoJob.state == "new")) == 1
    # The process dies holding the lease; another name must wait, the same name need not: at
    # start it takes back what its predecessor held.
    assert store.take_back(VideoJob, "replica-2") == 0
    assert store.claim(VideoJob, "replica-2", 120, 5, VideoJob.state == "new") == []
    assert store.take_back(VideoJob, "replica-1") == 1
    assert store.claim(VideoJob, "replica-2", 120, 5, VideoJob.state == "new") == []
    assert len(store.claim(VideoJob, "replica-1", 120, 5, VideoJob.state == "new")) == 1


def test_an_expired_lease_is_taken_over_and_the_old_owner_can_no_longer_write(db):
    clock = Clock()
    store = Store(db, clock)
    store.add_video(job(1))
    (mine,) = store.claim(VideoJob, "crashed", 30, 5, VideoJob.state == "new")
    assert store.claim(VideoJob, "other", 30, 5, VideoJob.state == "new") == []
    clock.now += 31
    (theirs,) = store.claim(VideoJob, "other", 30, 5, VideoJob.state == "new")
    assert theirs.id == mine.id
    assert store.save(mine, "crashed", state="ready") is False, "a stale owner's write is refused"
    assert store.save(theirs, "other", state="ready") is True


def test_rows_are_due_only_at_their_time(db):
    clock = Clock()
    store = Store(db, clock)
    store.add_video(job(1))
    (row,) = store.claim(VideoJob, "w", 30, 5, VideoJob.state == "new")
    store.release(row, "w", clock.now + 10)
    assert store.claim(VideoJob, "w", 30, 5, VideoJob.state == "new") == []
    clock.now += 10
    assert len(store.claim(VideoJob, "w", 30, 5, VideoJob.state == "new")) == 1


def test_an_edit_and_its_delivery_key_are_written_together(db):
    store = Store(db)
    video = store.add_video(job(1, card_ts="1.000100"))
    assert video is not None

    def edit(ts: str) -> EditJob:
        return EditJob(
            video_id=video.id, key_id="k", team_id="T", channel_id="C", reply_ts=ts, user_id="U", text="x"
        )

    assert store.add_edit(edit("2.0"), "event:Ev1") is not None
    assert store.add_edit(edit("2.0"), "event:Ev2") is None, "same reply, another delivery: one edit"
    assert store.add_edit(edit("3.0"), "event:Ev1") is None, "same delivery: nothing new"
    assert [e.reply_ts for e in store.edits_of(video.id)] == ["2.0"]
    assert store.thread_message("T", "C", "2.0").edit_id is not None


def test_compare_and_set_lets_exactly_one_double_action_win(db):
    store = Store(db)
    video = store.add_video(job(1, state="unknown"))
    assert store.transition(VideoJob, video.id, ("unknown",), state="ready") is True
    assert store.transition(VideoJob, video.id, ("unknown",), state="ready") is False


def test_the_budget_log_is_shared_by_every_process_using_the_database(db):
    """Two replicas (two Stores) with one key never exceed the limit in any window together."""
    clock = Clock()
    budgets = [
        Budget(Store(db, clock), key_id="k", window_seconds=60, margin_seconds=1, clock=clock)
        for _ in range(2)
    ]
    granted = 0
    for i in range(40):
        try:
            budgets[i % 2].acquire("videos", "action")
            granted += 1
        except BudgetExhausted as exc:
            assert 0 < exc.retry_after <= 61.01
    assert granted == 30
    clock.now += 61.01
    budgets[0].acquire("videos", "action")


def test_polls_leave_room_for_a_users_action(db):
    clock = Clock()
    budget = Budget(Store(db, clock), key_id="k", window_seconds=60, clock=clock)
    polls = 0
    while True:
        try:
            budget.acquire("edits", "poll")
            polls += 1
        except BudgetExhausted:
            break
    assert polls == 6
    for _ in range(4):
        budget.acquire("edits", "action")
    with pytest.raises(BudgetExhausted):
        budget.acquire("edits", "action")


def test_a_server_pause_blocks_the_bucket_for_every_replica(db):
    clock = Clock()
    a = Budget(Store(db, clock), key_id="k", window_seconds=60, margin_seconds=1, clock=clock)
    b = Budget(Store(db, clock), key_id="k", window_seconds=60, margin_seconds=1, clock=clock)
    a.penalize("videos", 45)
    with pytest.raises(BudgetExhausted) as err:
        b.acquire("videos", "action")
    assert err.value.retry_after == pytest.approx(46, abs=0.01)


RACERS = 16


def _race(work) -> list[BaseException]:
    """Run `work(i)` in RACERS threads released together; the exceptions they raised."""
    start, errors = threading.Barrier(RACERS), []

    def run(i: int) -> None:
        start.wait()
        try:
            work(i)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(RACERS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return errors


def test_racing_reservations_on_a_new_scope_grant_exactly_the_cap(db):
    """Replicas' first calls with a new key arrive together: no reservation fails with an error
    (each error would cost the job an attempt and a backoff), and exactly `cap` are granted."""
    cap, granted = 5, []
    stores = [Store(db) for _ in range(RACERS)]  # one per replica

    def reserve(i: int) -> None:
        if stores[i].try_reserve("k:videos", 1_000.0, 60.0, cap) == 0.0:
            granted.append(i)

    assert _race(reserve) == []
    assert len(granted) == cap
    assert Store(db).try_reserve("k:videos", 1_000.0, 60.0, cap) > 0


def test_racing_pauses_on_a_new_scope_keep_the_longest(db):
    stores = [Store(db) for _ in range(RACERS)]
    assert _race(lambda i: stores[i].block("k:edits", 2_000.0 + i)) == []
    assert Store(db).blocked_until("k:edits") == 2_000.0 + RACERS - 1


def test_claim_takes_the_most_overdue_rows_first_and_leaves_rows_not_yet_due(db):
    """With many jobs between two polls, a batch goes to the rows waiting longest (the batch is
    then worked in arrival order); rows due later are neither claimed nor leased."""
    clock = Clock(1_000.0)
    store = Store(db, clock)
    for n, due in enumerate([990.0, 500.0, 2_000.0, 500.0, 999.0, 5_000.0]):
        added = store.add_video(job(n))
        assert added is not None
        store.update_where(VideoJob, {"next_run_at": due}, VideoJob.id == added.id)
    rows = store.claim(VideoJob, "w", 120, 3, VideoJob.state == "new")
    assert [r.id for r in rows] == [1, 2, 4]  # 500, 500 and 990 overdue; 999 waits for the next batch
    assert [r.id for r in store.claim(VideoJob, "v", 120, 3, VideoJob.state == "new")] == [5]
    not_due = [store.get_video(i) for i in (3, 6)]
    assert all(v is not None and v.lease_owner is None for v in not_due)


def values(n: int, user: str = "U") -> dict[str, object]:
    return dict(request_key=f"cmd:T:{n}", team_id="T", channel_id="C", user_id=user, key_id="k", prompt=f"p{n}")


def test_simultaneous_commands_are_each_stored_once_through_the_group_commit(db):
    """50 requests at once, every one sent twice: each is stored exactly once, every caller learns
    whether it was the one stored, and the stored rows are committed when the call returns."""
    store = Store(db, group_commit=True)
    results: list[Admission | None] = [None] * 100
    start = threading.Barrier(100)

    def add(i: int) -> None:
        start.wait()
        results[i] = store.take_video(values(i % 50, user=f"U{i % 50}"))

    threads = [threading.Thread(target=add, args=(i,)) for i in range(100)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    stored = [r.job_id for r in results if r is not None and r.job_id is not None]
    assert sum(1 for r in results if r is not None and r.duplicate) == 50
    assert len(set(stored)) == 50
    rows = [Store(db).get_video(i) for i in stored]
    assert sorted(r.request_key for r in rows if r is not None) == sorted(f"cmd:T:{n}" for n in range(50))


@pytest.mark.parametrize("replicas", [1, 3])
def test_one_persons_racing_commands_are_granted_exactly_their_daily_limit(db, replicas):
    """24 commands of one person at once, through 1 or 3 stores (replicas, each its own group
    commit), with 5 a day: exactly 5 are stored, the others refused, whatever the interleaving."""
    stores = [Store(db, group_commit=True) for _ in range(replicas)]
    limit = DailyLimit(DAY_SECONDS, lambda times, now: next_allowed(times, 5, now))
    results: list[Admission | None] = [None] * 24
    start = threading.Barrier(24)

    def take(i: int) -> None:
        start.wait()
        results[i] = stores[i % replicas].take_video(values(i), limit)

    threads = [threading.Thread(target=take, args=(i,)) for i in range(24)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(1 for r in results if r is not None and r.job_id is not None) == 5
    assert sum(1 for r in results if r is not None and r.refused_until is not None) == 19
    assert len(Store(db).recent_videos("T", "C", 50)) == 5

"""Data at rest: the SQLite files are the owner's alone, commits are durable, and Slack delivery
keys do not pile up."""

from __future__ import annotations

import os
import sqlite3
import stat
from collections.abc import Iterator

import pytest
from sqlmodel import Session, select

from bot.runtime import DELIVERY_KEY_TTL_SECONDS
from sandbox.stack import LocalStack, StackConfig
from storage.db import init_schema, make_engine
from storage.models import SlackDelivery
from storage.repo import Store
from tests.helpers import posted, wait_until


def _mode(path: str) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.fixture
def loose_umask() -> Iterator[None]:
    """The usual umask (022): without the bot's care, new files would be world-readable."""
    old = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(old)


def test_the_database_and_its_wal_and_shm_are_created_0600_now_and_later(tmp_path, loose_umask):
    path = str(tmp_path / "bot.db")
    engine = make_engine(f"sqlite:///{path}")
    init_schema(engine)
    with engine.connect() as conn:  # an open connection keeps -wal and -shm in place
        conn.exec_driver_sql("SELECT 1 FROM video_job").all()
        assert os.path.exists(f"{path}-wal") and os.path.exists(f"{path}-shm")
        modes = {suffix: _mode(path + suffix) for suffix in ("", "-wal", "-shm")}
    engine.dispose()  # the last connection checkpoints and removes -wal and -shm
    assert modes == {"": 0o600, "-wal": 0o600, "-shm": 0o600}, {k: oct(v) for k, v in modes.items()}
    assert not os.path.exists(f"{path}-wal")

    # A later start re-creates -wal and -shm: they are the owner's alone too.
    engine = make_engine(f"sqlite:///{path}")
    store = Store(engine)
    with engine.connect() as conn:
        assert store.record_delivery("event:Ev1")
        later = {suffix: _mode(path + suffix) for suffix in ("", "-wal", "-shm")}
        conn.close()
    engine.dispose()
    assert later == {"": 0o600, "-wal": 0o600, "-shm": 0o600}, {k: oct(v) for k, v in later.items()}


def test_an_existing_world_readable_database_is_brought_down_to_0600(tmp_path, loose_umask):
    path = str(tmp_path / "old.db")
    sqlite3.connect(path).execute("CREATE TABLE t (x)").connection.close()
    os.chmod(path, 0o644)
    engine = make_engine(f"sqlite:///{path}")
    init_schema(engine)
    engine.dispose()
    assert _mode(path) == 0o600


def test_commits_are_durable_synchronous_full(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'bot.db'}")
    with engine.connect() as conn:
        # 2 = FULL: the WAL is synced at every commit, not only at checkpoints (1 = NORMAL).
        assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 2
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
    engine.dispose()


def test_the_served_stack_keeps_its_database_0600(loose_umask):
    stack = LocalStack(StackConfig(stage_seconds=0.1, poll_seconds=0.05, tick_seconds=0.02, window_seconds=1.0))
    stack.start()
    try:
        assert stack.driver is not None
        stack.driver.command("Explain why files have modes")
        stack.slack.wait_for(posted("Your video is ready", thread=True), timeout=20)
        path = stack.config.database_path
        assert path is not None
        files = [p for p in (path, f"{path}-wal", f"{path}-shm") if os.path.exists(p)]
        assert len(files) == 3 and {_mode(p) for p in files} == {0o600}
    finally:
        stack.stop()


def _keys(engine) -> set[str]:  # type: ignore[no-untyped-def]
    with Session(engine) as s:
        return {row.key for row in s.exec(select(SlackDelivery))}


def test_delivery_keys_older_than_a_day_are_purged_by_the_worker_and_fresh_ones_stay():
    stack = LocalStack(StackConfig(stage_seconds=0.1, poll_seconds=0.05, tick_seconds=0.02, window_seconds=1.0))
    stack.start(worker=False)
    try:
        runtime = stack.runtime
        assert runtime is not None
        now = runtime.store.clock()
        with Session(runtime.engine) as s:
            s.add(SlackDelivery(key="event:EvOLD", received_at=now - DELIVERY_KEY_TTL_SECONDS - 60))
            s.add(SlackDelivery(key="event:EvDAYOLD", received_at=now - DELIVERY_KEY_TTL_SECONDS + 60))
            s.add(SlackDelivery(key="event:EvNEW", received_at=now - 5))
            # Told once per thread how to ask for an edit: a mark for the thread's life, not a delivery.
            s.add(SlackDelivery(key="edit-hint:T:C:1.0:U0BOB", received_at=now - 30 * 24 * 3600))
            s.commit()
        runtime.start_worker()  # the purge runs at start, then hourly
        wait_until(lambda: "event:EvOLD" not in _keys(runtime.engine), timeout=10, what="old key purged")
        assert _keys(runtime.engine) == {"event:EvDAYOLD", "event:EvNEW", "edit-hint:T:C:1.0:U0BOB"}
        # A redelivery of a fresh event is still recognised: its key stayed.
        assert not runtime.store.record_delivery("event:EvNEW")
    finally:
        stack.stop()


def test_purge_deliveries_removes_exactly_the_keys_before_the_cutoff(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'bot.db'}")
    init_schema(engine)
    clock = iter([100.0, 200.0, 300.0])
    store = Store(engine, clock=lambda: next(clock))
    for key in ("a", "b", "c"):
        assert store.record_delivery(key)
    assert store.purge_deliveries(older_than=200.0) == 1
    assert _keys(engine) == {"b", "c"}
    assert store.purge_deliveries(older_than=200.0) == 0
    engine.dispose()

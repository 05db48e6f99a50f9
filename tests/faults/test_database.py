"""The database is locked by another writer, or the disk is full. The bot says so in its log, loses
no request (a command is either kept or the user is told to run it again; an event it could not
store is answered so that Slack retries it), and recovers once the database is writable again."""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any

import pytest
from sqlalchemy import event

from bot.listeners.commands import DB_DOWN
from sandbox.stack import LocalStack
from tests.faults import report
from tests.faults.conversation import ACK_LIMIT, create
from tests.faults.invariants import Ledger, check, edit_rows, job_for, settle, wait_for

# SQLite's own faults: its single write lock and its "disk is full" error. (A PostgreSQL server
# fails differently; its lock waits are bounded by the session settings in storage.db.)
pytestmark = pytest.mark.databases("sqlite")


@contextmanager
def another_writer(stack: LocalStack) -> Iterator[None]:
    """A second process-like writer holds SQLite's write lock (BEGIN IMMEDIATE) until the block ends."""
    con = sqlite3.connect(stack.config.database_path, timeout=10, isolation_level=None)
    try:
        con.execute("BEGIN IMMEDIATE")
        yield
        con.execute("ROLLBACK")
    finally:
        con.close()


@contextmanager
def disk_full(stack: LocalStack) -> Iterator[None]:
    """Every write of the bot fails the way SQLite reports a full disk, until the block ends."""
    full = threading.Event()
    full.set()

    def refuse(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if full.is_set() and statement.lstrip()[:6].upper() in ("INSERT", "UPDATE", "DELETE"):
            raise sqlite3.OperationalError("database or disk is full")

    assert stack.runtime is not None
    engine = stack.runtime.engine
    event.listen(engine, "before_cursor_execute", refuse)
    try:
        yield
    finally:
        full.clear()
        event.remove(engine, "before_cursor_execute", refuse)


def _logged(caplog: Any, fragment: str, *, by_listener: bool = False) -> bool:
    """Some log record mentions `fragment` (in its message or its exception); with `by_listener`,
    one written while handling a Slack request rather than by the worker."""
    for r in caplog.records:
        if by_listener and r.name in ("bot.worker", "bot.runtime"):
            continue
        exc = r.exc_info[1] if r.exc_info else None
        if fragment in r.getMessage() or (exc is not None and fragment in str(exc)):
            return True
    return False


def _requests_during_fault(
    stack: LocalStack,
    ledger: Ledger,
    fault: Callable[[], Any],
    until: Callable[[Callable[[], bool]], None],
    name: str,
) -> dict[str, Any]:
    """With a video rendering, the fault starts and a command and a thread reply arrive; the fault
    lasts until `until(answered)` returns. Then the user and Slack do what they would do with the
    answers: a user told to run the command again does so, Slack retries an event that got no 2xx."""
    driver = stack.driver
    assert driver is not None
    video = f"{name} how windmills turn"
    thread = create(stack, driver, ledger, video)
    wait_for(lambda: job_for(stack, video)["state"] == "rendering", 10, "the render to start")
    command = f"{name} how locks lift boats"
    reply_ts = driver.next_ts(after=thread)
    reply_event = driver.message_event(f"{name} edit: make scene 2 breezier", thread_ts=thread, ts=reply_ts)
    reply_id = driver.new_event_id()
    ledger.command(command)
    ledger.edit(reply_event["text"], video, reply_ts, kept=True)
    timings: dict[str, Any] = {}

    def timed(what: str, send: Callable[[], Any]) -> Any:
        t0 = time.monotonic()
        response = send()
        timings[what] = time.monotonic() - t0
        return response

    with ThreadPoolExecutor(2) as pool:
        with fault():
            started = time.monotonic()
            cmd = pool.submit(timed, "command", lambda: driver.command(command, trigger_id=f"{name}-1.1"))
            rep = pool.submit(timed, "reply", lambda: driver.event(reply_event, event_id=reply_id))
            until(lambda: cmd.done() and rep.done())
            timings["fault"] = time.monotonic() - started
        cmd_response, rep_response = cmd.result(), rep.result()
    timings["answers"] = [(r.status_code, r.text[:120]) for r in (cmd_response, rep_response)]
    if DB_DOWN in cmd_response.text:  # told to run it again: the user does
        ledger.videos[command].sent_at = time.time()
        assert driver.command(command).status_code == 200
    if not 200 <= rep_response.status_code < 300:  # Slack retries a delivery that failed
        assert driver.event(reply_event, event_id=reply_id, retry_num=1).status_code == 200
    wait_for(
        lambda: job_for(stack, command), 10, f"the command to be kept (answered {timings['answers'][0]})"
    )
    wait_for(
        lambda: any(r["reply_ts"] == reply_ts for r in edit_rows(stack)),
        10,
        f"the reply to be kept (answered {timings['answers'][1]}, so Slack will not send it again)",
    )
    return timings


def test_database_locked_for_a_moment_delays_but_loses_nothing(fstack, baseline):
    stack, ledger = fstack, Ledger()
    moment = 1.5  # under the busy timeout: writers wait instead of failing

    def hold(answered: Callable[[], bool]) -> None:
        time.sleep(moment)  # the fault's length, not a synchronisation

    timings = _requests_during_fault(stack, ledger, lambda: another_writer(stack), hold, "dblock")
    assert timings["command"] < ACK_LIMIT and timings["reply"] < ACK_LIMIT, timings
    settle(stack, ledger)
    outcome = check(stack, ledger)
    report.record(f"database locked {moment}s by another writer", outcome, baseline)


def test_database_locked_past_the_busy_timeout_is_logged_and_survived(fstack, baseline, caplog):
    stack, ledger = fstack, Ledger()
    caplog.set_level(logging.INFO)

    def until_noticed(answered: Callable[[], bool]) -> None:
        wait_for(lambda: _logged(caplog, "database is locked"), 15, "the worker to log the lock")
        wait_for(answered, 15, "the command and the reply to be answered")

    timings = _requests_during_fault(stack, ledger, lambda: another_writer(stack), until_noticed, "dblong")
    assert timings["command"] < ACK_LIMIT, timings
    settle(stack, ledger, timeout=30)
    outcome = check(stack, ledger)
    report.record(f"database locked {timings['fault']:.0f}s (past the busy timeout)", outcome, baseline)


def test_disk_full_is_logged_loses_no_request_and_recovers(fstack, baseline, caplog):
    stack, ledger = fstack, Ledger()
    caplog.set_level(logging.INFO)

    def until_noticed(answered: Callable[[], bool]) -> None:
        wait_for(answered, 10, "the command and the reply to be answered")
        wait_for(lambda: _logged(caplog, "disk is full"), 10, "the worker to log the full disk")
        wait_for(lambda: _logged(caplog, "disk is full", by_listener=True), 10, "the reply's failure")

    timings = _requests_during_fault(stack, ledger, lambda: disk_full(stack), until_noticed, "dbfull")
    assert timings["command"] < ACK_LIMIT and timings["reply"] < ACK_LIMIT, timings
    # A step whose release itself hit the full disk is handed back on the first tick after the
    # disk has room again, not when its 2-minute lease ends.
    settle(stack, ledger, timeout=30)
    outcome = check(stack, ledger)
    report.record("disk full", outcome, baseline)

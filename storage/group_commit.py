"""Group commit for the rows written before an ack: one writer thread, many jobs per transaction.

A `/knowlify` command is acknowledged only once its job row is committed. Committed one by one, 50
simultaneous commands queue for the database's write lock (SQLite has one writer at a time) and
each waits for its own flush to disk (`synchronous=FULL`, or PostgreSQL's fsync at commit): the last
in line waits for all the others, and under load some wait past the busy timeout and are refused.

Here each listener hands its job to one writer thread and waits. The writer takes every job queued
meanwhile and admits them together (storage.admission: the daily limits read once, one INSERT), so
one lock and one flush serve the whole batch; a job is acknowledged only after the commit that
contains it returned, so it is as durable as before.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from concurrent.futures import Future

from sqlalchemy.engine import Engine
from sqlalchemy.exc import OperationalError

from storage.admission import Admission, NewJob, admit

log = logging.getLogger(__name__)

MAX_BATCH = 200
# After the first job of a batch, the writer takes in more until none arrived for QUIET_SECONDS (a
# burst of commands reaches it a millisecond or two apart: each is parsed and dispatched in turn),
# for at most MAX_LINGER_SECONDS. Without it the writer keeps up with a burst one job at a time,
# and each commit costs about a millisecond of the interpreter the acks are waiting for; with it a
# burst of 50 is committed in one or two transactions. A lone command waits QUIET_SECONDS more.
QUIET_SECONDS = 0.005
MAX_LINGER_SECONDS = 0.05
# A batch refused by a busy database is retried until its oldest job has waited this long; past it
# the listeners answer "try again" well inside Slack's 3 seconds.
RETRY_SECONDS = 2.0

Entry = tuple[NewJob, "Future[Admission]", float]


class GroupCommit:
    def __init__(self, engine: Engine, clock: object = time.time) -> None:
        self.engine = engine
        self.clock = clock
        self._queue: queue.Queue[Entry] = queue.Queue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def take(self, job: NewJob, timeout: float = 10.0) -> Admission:
        """What became of `job` once its batch is committed. Raises what the database raised if
        the batch could not be committed."""
        future: Future[Admission] = Future()
        self._start()
        self._queue.put((job, future, time.monotonic()))
        return future.result(timeout)

    def _start(self) -> None:
        if self._thread is not None:
            return
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="group-commit", daemon=True)
                self._thread.start()

    def _run(self) -> None:
        while True:
            batch = [self._queue.get()]
            until = time.monotonic() + MAX_LINGER_SECONDS
            while len(batch) < MAX_BATCH:
                wait = min(QUIET_SECONDS, until - time.monotonic())
                try:
                    batch.append(self._queue.get(timeout=wait) if wait > 0 else self._queue.get_nowait())
                except queue.Empty:
                    break
            self._commit(batch)

    def _commit(self, batch: list[Entry]) -> None:
        oldest = min(enqueued for _, _, enqueued in batch)
        jobs = [job for job, _, _ in batch]
        while True:
            try:
                with self.engine.begin() as conn:
                    outcomes = admit(conn, jobs, self.clock())  # type: ignore[operator]
                break
            except OperationalError as exc:  # busy or locked: try again while the acks can wait
                if time.monotonic() - oldest < RETRY_SECONDS:
                    continue
                self._fail(batch, exc)
                return
            except Exception as exc:
                self._fail(batch, exc)
                return
        for (_, future, _), outcome in zip(batch, outcomes, strict=True):
            future.set_result(outcome)

    @staticmethod
    def _fail(batch: list[Entry], exc: Exception) -> None:
        log.warning("%d job row(s) not stored: %s", len(batch), type(exc).__name__)
        for _, future, _ in batch:
            future.set_exception(exc)

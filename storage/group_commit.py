"""Group commit for the rows written before an ack: one writer thread, many rows per transaction.

A `/knowlify` command is acknowledged only once its job row is committed. Committed one by one, 50
simultaneous commands queue for the database's write lock (SQLite has one writer at a time) and
each waits for its own flush to disk (`synchronous=FULL`, or PostgreSQL's fsync at commit): the last
in line waits for all the others, and under load some wait past the busy timeout and are refused.

Here each listener hands its row to one writer thread and waits. The writer takes every row queued
meanwhile and inserts them in one statement (`INSERT … ON CONFLICT (request_key) DO NOTHING
RETURNING`), so one lock and one flush serve the whole batch; a row is acknowledged only after the
commit that contains it returned, so it is as durable as before.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from concurrent.futures import Future
from typing import Any

from sqlalchemy.engine import Engine
from sqlalchemy.exc import OperationalError

from storage.models import VideoJob

log = logging.getLogger(__name__)

MAX_BATCH = 200
# A batch refused by a busy database is retried until its oldest row has waited this long; past it
# the listeners answer "try again" well inside Slack's 3 seconds.
RETRY_SECONDS = 2.0


def supported(engine: Engine) -> bool:
    """Dialects with INSERT … ON CONFLICT DO NOTHING … RETURNING."""
    return engine.dialect.name in ("sqlite", "postgresql")


def _insert_ignoring_duplicates(engine: Engine) -> Any:
    table = VideoJob.__table__  # type: ignore[attr-defined]
    if engine.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as dialect_insert
    else:
        from sqlalchemy.dialects.sqlite import insert as dialect_insert  # type: ignore[assignment]
    stmt = dialect_insert(table).on_conflict_do_nothing(index_elements=["request_key"])
    return stmt.returning(table.c.id, table.c.request_key)


class GroupCommit:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._queue: queue.Queue[tuple[VideoJob, Future[VideoJob | None], float]] = queue.Queue()
        self._stmt = _insert_ignoring_duplicates(engine)
        self._columns = [c.name for c in VideoJob.__table__.columns if c.name != "id"]  # type: ignore[attr-defined]
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def add_video(self, job: VideoJob, timeout: float = 10.0) -> VideoJob | None:
        """Insert `job` (its id set) once committed; None if its request_key exists already.
        Raises what the database raised if the batch could not be committed."""
        future: Future[VideoJob | None] = Future()
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
            while len(batch) < MAX_BATCH:
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            self._commit(batch)

    def _commit(self, batch: list[tuple[VideoJob, Future[VideoJob | None], float]]) -> None:
        rows = [{name: getattr(job, name) for name in self._columns} for job, _, _ in batch]
        oldest = min(enqueued for _, _, enqueued in batch)
        while True:
            try:
                with self.engine.begin() as conn:
                    ids = {key: row_id for row_id, key in conn.execute(self._stmt, rows)}
                break
            except OperationalError as exc:  # busy or locked: try again while the acks can wait
                if time.monotonic() - oldest < RETRY_SECONDS:
                    continue
                self._fail(batch, exc)
                return
            except Exception as exc:
                self._fail(batch, exc)
                return
        for job, future, _ in batch:
            # A key twice in one batch (the same request sent twice at once): the first one wins.
            row_id = ids.pop(job.request_key, None)
            if row_id is None:
                future.set_result(None)
            else:
                job.id = row_id
                future.set_result(job)

    @staticmethod
    def _fail(batch: list[tuple[VideoJob, Future[VideoJob | None], float]], exc: Exception) -> None:
        log.warning("%d job row(s) not stored: %s", len(batch), type(exc).__name__)
        for _, future, _ in batch:
            future.set_exception(exc)


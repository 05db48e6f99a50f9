"""What an orchestrator and Prometheus ask the bot: `/healthz`, `/readyz` and `/metrics`.

Liveness (`/healthz`) only says the process answers. Readiness (`/readyz`) says the bot can take
work: its database answers (and, in Socket Mode, the socket is connected). The database check is
cached for a few seconds and bounded in time, so a flood of probes or a hung database never ties up
the server, and a change shows within MAX_AGE + TIMEOUT seconds.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable
from urllib.parse import quote

from sqlalchemy.engine import Engine, make_url

from bot import metrics

MAX_AGE = 5.0  # seconds a database check is reused
TIMEOUT = 2.0  # seconds a probe waits for a check before it answers "not ready"


def sqlite_path(database_url: str) -> str | None:
    """The file of a file-backed SQLite URL, else None."""
    url = make_url(database_url)
    if not url.drivername.startswith("sqlite") or url.database in (None, "", ":memory:"):
        return None
    return str(url.database)


class Probes:
    def __init__(
        self,
        database_url: str,
        engine: Engine,
        *,
        socket_connected: Callable[[], bool] | None = None,
        max_age: float = MAX_AGE,
        timeout: float = TIMEOUT,
    ) -> None:
        self.engine = engine
        self.socket_connected = socket_connected
        self.max_age = max_age
        self.timeout = timeout
        self._sqlite = sqlite_path(database_url)
        self._lock = threading.Lock()
        self._result: tuple[float, tuple[bool, str]] | None = None
        self._running: threading.Event | None = None

    def ready(self) -> tuple[bool, str]:
        """(ready, reason); may wait up to `timeout` seconds for a fresh database check."""
        if self.socket_connected is not None and not self.socket_connected():
            return False, "socket not connected"
        return self.database()

    def metrics(self) -> bytes:
        return metrics.exposition(self.engine)

    def database(self) -> tuple[bool, str]:
        with self._lock:
            if self._result and time.monotonic() - self._result[0] <= self.max_age:
                return self._result[1]
            done = self._running
            if done is None:  # one check at a time: a hung one is never joined by another
                done = self._running = threading.Event()
                threading.Thread(target=self._check, args=(done,), name="readyz", daemon=True).start()
        if not done.wait(self.timeout):
            return False, "database check timed out"
        with self._lock:
            assert self._result is not None
            return self._result[1]

    def _check(self, done: threading.Event) -> None:
        try:
            self._ping()
            result = (True, "ok")
        except Exception as exc:
            result = (False, f"database unreachable ({type(exc).__name__})")
        with self._lock:
            self._result = (time.monotonic(), result)
            self._running = None
        done.set()

    def _ping(self) -> None:
        if self._sqlite is not None:
            # A fresh connection that may not create the file: a pooled one would keep reading a
            # deleted or moved file, and a plain connect would make a new, empty database.
            uri = f"file:{quote(self._sqlite)}?mode=rw"
            conn = sqlite3.connect(uri, uri=True, timeout=self.timeout)
            try:
                conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
            finally:
                conn.close()
            return
        with self.engine.connect() as db:
            db.exec_driver_sql("SELECT 1")
            db.rollback()

"""Engine creation and schema set-up.

SQLite is the embedded default: WAL so readers never wait for the writer, and a busy timeout so
a moment of contention (another writer, a backup) waits instead of failing. Any other SQLAlchemy
URL works too; nothing here is SQLite-only except those pragmas.
"""

from __future__ import annotations

import logging

from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlmodel import create_engine

log = logging.getLogger(__name__)

# Long enough to ride out another writer's moment, short enough that a command waiting on it can
# still answer within Slack's 3 seconds (with "try again") instead of timing out silently.
BUSY_TIMEOUT_MS = 2000

def normalize_url(url: str) -> str:
    """Map the PostgreSQL URL spellings people paste (`postgres://` from Heroku-style platforms,
    plain `postgresql://`) onto the psycopg 3 driver this package ships with; SQLAlchemy would
    otherwise reject `postgres://` and look for psycopg2 on `postgresql://`."""
    scheme, sep, rest = url.partition("://")
    if sep and scheme in ("postgres", "postgresql"):
        return f"postgresql+psycopg://{rest}"
    return url


def make_engine(url: str) -> Engine:
    url = normalize_url(url)
    is_sqlite = url.startswith("sqlite")
    kwargs: dict[str, object] = {}
    if is_sqlite:
        # The worker thread, the listener threads and the HTTP threads share the engine.
        kwargs["connect_args"] = {"check_same_thread": False, "timeout": BUSY_TIMEOUT_MS / 1000}
    else:
        if url.startswith("postgresql+psycopg"):
            # As SQLite's busy timeout: a lock held by someone else is waited for this long, then
            # the statement fails (and the command says "try again") instead of hanging past 3 s.
            kwargs["connect_args"] = {"options": f"-c lock_timeout={BUSY_TIMEOUT_MS}"}
    engine = create_engine(url, **kwargs)
    if is_sqlite:

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn, _record):  # type: ignore[no-untyped-def]
            # Let SQLAlchemy, not pysqlite, decide when transactions begin, so BEGIN IMMEDIATE works.
            dbapi_conn.isolation_level = None
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.close()

        @event.listens_for(engine, "begin")
        def _begin(conn):  # type: ignore[no-untyped-def]
            # Take the write lock at the start: a read-then-write transaction can then never be
            # refused half-way (SQLITE_BUSY on upgrade), it waits for busy_timeout instead.
            conn.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


def init_schema(engine: Engine) -> None:
    """Create the tables of a new database, or migrate an older one to this release's schema.

    Safe to call from several replicas at once: see storage.migrate."""
    from storage.migrate import upgrade_to_head

    upgrade_to_head(engine)

"""Engine creation and schema set-up.

SQLite is the embedded default: WAL so readers never wait for the writer, and a busy timeout so
a moment of contention (another writer, a backup) waits instead of failing. `synchronous=FULL`
makes every commit durable: with NORMAL a power cut could lose the last commits, among them a
job's `submitting` mark, and the create would be sent again after the reboot (a second paid video).
The file holds prompts, replies and `response_url`s, so it is created mode 0600, and SQLite gives
its `-wal` and `-shm` files the database file's mode. Any other SQLAlchemy URL works too; nothing
here is SQLite-only except those pragmas and the file mode.
"""

from __future__ import annotations

import logging
import os

from sqlalchemy import event
from sqlalchemy.engine import Engine, make_url
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


# Owner read/write only: the database holds what people wrote and links that act on their behalf.
FILE_MODE = 0o600


def sqlite_path(url: str) -> str | None:
    """The file behind an SQLite URL; None for memory databases, `file:` URIs and other databases."""
    if not url.startswith("sqlite"):
        return None
    database = make_url(url).database
    if not database or database == ":memory:" or database.startswith("file:"):
        return None
    return database


def restrict_sqlite_files(path: str) -> None:
    """Create the database file 0600 before SQLite does (SQLite would use 0644 less the umask), and
    bring an existing one and its -wal/-shm down to 0600. SQLite creates -wal and -shm later with
    the database file's mode, so they follow."""
    try:
        os.close(os.open(path, os.O_RDWR | os.O_CREAT, FILE_MODE))
    except OSError:
        return  # no such directory, or not writable: SQLite's own error on connect says which
    for name in (path, f"{path}-wal", f"{path}-shm", f"{path}-journal"):
        try:
            if os.stat(name).st_mode & 0o777 != FILE_MODE:
                os.chmod(name, FILE_MODE)
                log.info("database file %s made readable by its owner only (mode 0600)", name)
        except FileNotFoundError:
            continue
        except OSError as exc:  # another user's file: say so, the bot can still run
            log.warning("could not make %s mode 0600: %s", name, exc.strerror)


def make_engine(url: str) -> Engine:
    url = normalize_url(url)
    is_sqlite = url.startswith("sqlite")
    path = sqlite_path(url)
    if path is not None:
        restrict_sqlite_files(path)
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
            cur.execute("PRAGMA synchronous=FULL")
            cur.close()

        @event.listens_for(engine, "begin")
        def _begin(conn):  # type: ignore[no-untyped-def]
            # Take the write lock at the start: a read-then-write transaction can then never be
            # refused half-way (SQLITE_BUSY on upgrade), it waits for busy_timeout instead.
            # Sessions that only read (Store.reading) say so and wait for no writer (WAL).
            read_only = conn.get_execution_options().get("read_only", False)
            conn.exec_driver_sql("BEGIN" if read_only else "BEGIN IMMEDIATE")

    return engine


def init_schema(engine: Engine) -> None:
    """Create the tables of a new database, or migrate an older one to this release's schema.

    Safe to call from several replicas at once: see storage.migrate."""
    from storage.migrate import upgrade_to_head

    upgrade_to_head(engine)

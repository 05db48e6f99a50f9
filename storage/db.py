"""Engine creation and schema set-up.

SQLite is the embedded default: WAL so readers never wait for the writer, and a busy timeout so
a moment of contention (another writer, a backup) waits instead of failing. Any other SQLAlchemy
URL works too; nothing here is SQLite-only except those pragmas.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlmodel import Session, SQLModel, create_engine, select

from storage.models import SchemaVersion

log = logging.getLogger(__name__)

# Long enough to ride out another writer's moment, short enough that a command waiting on it can
# still answer within Slack's 3 seconds (with "try again") instead of timing out silently.
BUSY_TIMEOUT_MS = 2000

# Migrations, in order: MIGRATIONS[n] takes the schema from version n to n + 1. Version 1 is the
# first schema, created by create_all; later changes append a function here (ALTER TABLE …), so an
# installed database is brought forward on start-up instead of being recreated.
Migration = Callable[[Engine], None]
MIGRATIONS: list[Migration] = []
SCHEMA_VERSION = 1 + len(MIGRATIONS)


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
        # A server database can restart or drop idle connections; test each before use.
        kwargs["pool_pre_ping"] = True
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
    """Create the tables of a new database, or migrate an older one to SCHEMA_VERSION."""
    SQLModel.metadata.create_all(engine)
    with Session(engine) as session:
        row = session.exec(select(SchemaVersion)).first()
        if row is None:
            session.add(SchemaVersion(id=1, version=SCHEMA_VERSION))
            session.commit()
            return
        current = row.version
    if current > SCHEMA_VERSION:
        raise RuntimeError(
            f"database schema is version {current}, newer than this release ({SCHEMA_VERSION}); upgrade"
        )
    for version in range(current, SCHEMA_VERSION):
        log.info("migrating database schema %d -> %d", version, version + 1)
        MIGRATIONS[version - 1](engine)
        with Session(engine) as session:
            row = session.exec(select(SchemaVersion)).one()
            row.version = version + 1
            session.add(row)
            session.commit()

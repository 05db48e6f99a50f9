"""Schema migrations (Alembic, scripts in storage/migrations/), applied on start under a lock.

Replicas that start together must not each run the same migration. Every replica takes one lock
around "read the revision, migrate if behind, commit": on PostgreSQL a transaction-scoped advisory
lock (pg_advisory_xact_lock), on SQLite the database's write lock itself (the transaction begins
with BEGIN IMMEDIATE, see storage.db.make_engine). The first replica migrates; the others wait,
then find the database at head and do nothing. Migrations run in that same transaction, so a
failure leaves the database as it was (both databases have transactional DDL).

A database created before migrations existed (table `schema_version`, no `alembic_version`) has
exactly the baseline schema: it is stamped at the baseline, then upgraded like any other.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import inspect, text
from sqlalchemy.engine import Connection, Engine

from storage.db import BUSY_TIMEOUT_MS

if TYPE_CHECKING:
    from alembic.config import Config

log = logging.getLogger(__name__)
# Alembic narrates every start at INFO (on import, "setup plugin …"; then "Context impl …"): set
# before the first alembic import, which is therefore inside the functions below. The line saying
# what is migrated (log.info below) is the one an operator needs.
logging.getLogger("alembic").setLevel(logging.WARNING)

MIGRATIONS_DIR = Path(__file__).with_name("migrations")
BASELINE = "0001"
# Any fixed 64-bit key works; this one spells "knowlify". Other applications on the same server
# would have to pick the same number by chance to contend with it.
ADVISORY_LOCK_KEY = 7741247368207099513
# How long a starting replica waits for another one's migration (or, on PostgreSQL, for a table
# lock a DDL statement needs) before giving up and failing its start.
MIGRATION_LOCK_SECONDS = 60


def alembic_config(connection: Connection | None = None) -> Config:
    """Alembic's configuration without an alembic.ini: the scripts ship inside the package."""
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.attributes["connection"] = connection
    return cfg


def head_revision() -> str:
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None
    return head


@contextmanager
def _migration_lock(engine: Engine) -> Iterator[Connection]:
    """A connection inside a transaction that no other replica's migration runs beside."""
    sqlite = engine.dialect.name == "sqlite"
    with engine.connect() as conn:
        if sqlite:  # set before BEGIN IMMEDIATE, which is what waits for the lock
            conn.connection.driver_connection.execute(  # type: ignore[union-attr]
                f"PRAGMA busy_timeout={MIGRATION_LOCK_SECONDS * 1000}"
            )
        try:
            with conn.begin():
                if engine.dialect.name == "postgresql":
                    conn.exec_driver_sql(f"SET LOCAL lock_timeout = '{MIGRATION_LOCK_SECONDS}s'")
                    conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": ADVISORY_LOCK_KEY})
                yield conn
        finally:
            if sqlite:
                conn.connection.driver_connection.execute(  # type: ignore[union-attr]
                    f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}"
                )


def upgrade_to_head(engine: Engine) -> None:
    """Bring the database to the newest schema this release knows (creating it if empty)."""
    from alembic import command
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory
    from alembic.util.exc import CommandError

    script = ScriptDirectory.from_config(alembic_config())
    head = script.get_current_head()
    with _migration_lock(engine) as conn:
        cfg = alembic_config(conn)
        current = MigrationContext.configure(conn).get_current_revision()
        if current is None and {"schema_version", "video_job"} & set(inspect(conn).get_table_names()):
            log.info("database created before migrations: stamping it at the baseline %s", BASELINE)
            command.stamp(cfg, BASELINE)
            current = BASELINE
        if current == head:
            return
        if current is not None:
            try:
                script.get_revision(current)
            except CommandError as exc:
                raise RuntimeError(
                    f"the database schema is at revision {current}, which this release does not know "
                    f"(its newest is {head}): it was migrated by a newer release; run that one"
                ) from exc
        log.info("migrating database schema %s -> %s", current or "(empty)", head)
        command.upgrade(cfg, "head")

"""Schema migrations: the models and the migration scripts describe the same schema, a database
made before migrations is brought forward with its rows, and replicas starting together migrate
once. On SQLite and on PostgreSQL."""

from __future__ import annotations

import logging
import threading

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, text
from sqlmodel import SQLModel

import storage.models  # noqa: F401  (every table on SQLModel.metadata)
from storage.db import init_schema, make_engine
from storage.migrate import BASELINE, alembic_config, head_revision


@pytest.fixture
def engine(empty_db_url):
    e = make_engine(empty_db_url)
    yield e
    e.dispose()


def _revision(engine) -> str | None:
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def test_the_models_and_the_migrations_agree(engine):
    """A model change without a migration (or the reverse) fails here: write the migration with
    `alembic -c storage/migrations/alembic.ini -x url=sqlite:///scratch.db revision --autogenerate`."""
    init_schema(engine)
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), SQLModel.metadata)
    assert diff == [], f"models and migrations differ: {diff}"
    assert _revision(engine) == head_revision()


def test_a_database_made_before_migrations_is_stamped_upgraded_and_keeps_its_rows(engine):
    # What the old code left: the baseline tables, a `schema_version` row, no `alembic_version`.
    with engine.begin() as conn:
        command.upgrade(alembic_config(conn), BASELINE)
        conn.execute(text("DROP TABLE alembic_version"))
        conn.execute(text("INSERT INTO schema_version (id, version) VALUES (1, 1)"))
        conn.execute(
            text(
                "INSERT INTO slack_delivery (key, received_at) VALUES ('event:Ev1', 1.0)"
            )
        )
    init_schema(engine)
    assert _revision(engine) == head_revision()
    tables = set(inspect(engine).get_table_names())
    assert "schema_version" not in tables and "video_job" in tables
    with engine.connect() as conn:
        assert conn.execute(text("SELECT key FROM slack_delivery")).scalars().all() == ["event:Ev1"]


def test_replicas_starting_together_migrate_once(empty_db_url, caplog):
    caplog.set_level(logging.INFO, logger="storage.migrate")
    replicas = 4
    engines = [make_engine(empty_db_url) for _ in range(replicas)]
    start, errors = threading.Barrier(replicas), []

    def boot(i: int) -> None:
        start.wait()
        try:
            init_schema(engines[i])
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=boot, args=(i,)) for i in range(replicas)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for e in engines:
        e.dispose()
    assert errors == []
    migrated = [r for r in caplog.records if r.getMessage().startswith("migrating database schema")]
    assert len(migrated) == 1, [r.getMessage() for r in migrated]


def test_a_database_migrated_by_a_newer_release_is_refused_with_a_reason(engine):
    init_schema(engine)
    with engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = '9999'"))
    with pytest.raises(RuntimeError, match="newer release"):
        init_schema(engine)

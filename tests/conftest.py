"""Shared fixtures. Tests never read the developer's environment or `.env`: Bolt and
pydantic-settings both fall back to SLACK_*/KNOWLIFY_* variables, which would leak in.

Databases: every test that uses `db_url` (directly, or through `stack`/`fstack`) runs twice, on
SQLite and on PostgreSQL (`test_x[sqlite]`, `test_x[postgresql]`), unless it is marked
`@pytest.mark.databases("sqlite")`. The PostgreSQL half uses one throwaway server per session
(sandbox/postgres.py) and a fresh database per test. Without the server binaries that half is
skipped, except under CI=true, where it fails.
"""

from __future__ import annotations

import itertools
import os
import shutil
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from sandbox.postgres import PostgresServer, binaries_available, start_postgres
from sandbox.stack import LocalStack, StackConfig
from storage.db import init_schema, make_engine

warnings.filterwarnings("ignore", message=".*httpx2.*")


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory) -> None:
    for name in list(os.environ):
        if name.startswith(("SLACK_", "KNOWLIFY_")) or name in ("DATABASE_URL", "WORKER_TICK_SECONDS"):
            monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path_factory.mktemp("cwd"))  # no stray .env, no stray database file


DATABASES = ("sqlite", "postgresql")
PG_MISSING = "PostgreSQL server binaries (initdb, postgres) not on PATH: the PostgreSQL half is skipped"


def _pg_required() -> bool:
    return os.environ.get("CI") == "true"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "databases(*kinds): run only on these databases (sqlite, postgresql)")


def pytest_report_header(config: pytest.Config) -> str:
    if binaries_available():
        return "databases: sqlite, postgresql (throwaway server from PATH)"
    if _pg_required():
        return "databases: CI=true but no PostgreSQL binaries on PATH: every PostgreSQL test fails"
    return f"databases: sqlite only. {PG_MISSING}"


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "db_kind" in metafunc.fixturenames:
        marker = metafunc.definition.get_closest_marker("databases")
        metafunc.parametrize("db_kind", marker.args if marker else DATABASES, indirect=True)


MIGRATED = "knowlify_migrated"  # the session's template database, at the newest schema


@pytest.fixture(scope="session")
def pg_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PostgresServer]:
    """One PostgreSQL server for the session, with a template database already migrated."""
    if not binaries_available():
        if _pg_required():
            pytest.fail("CI=true and no PostgreSQL binaries (initdb, postgres) on PATH", pytrace=False)
        pytest.skip(PG_MISSING)
    with start_postgres(tmp_path_factory.mktemp("postgres")) as server:
        with server._connect() as conn:
            conn.execute(f'CREATE DATABASE "{MIGRATED}"')
        _migrate(server.url_for(MIGRATED))
        yield server


@pytest.fixture(scope="session")
def sqlite_migrated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("sqlite") / "migrated.db"
    _migrate(f"sqlite:///{path}")
    return path


def _migrate(url: str) -> None:
    engine = make_engine(url)
    try:
        init_schema(engine)
    finally:
        engine.dispose()


@pytest.fixture
def db_kind(request: pytest.FixtureRequest) -> str:
    return str(getattr(request, "param", "sqlite"))


@pytest.fixture
def new_db_url(request: pytest.FixtureRequest, db_kind: str, tmp_path: Path) -> Callable[..., str]:
    """Makes the DATABASE_URL of a new database of this test's kind: a SQLite file in the test's
    tmp dir, or a database on the session's PostgreSQL server. It starts at the newest schema (a
    copy of a migrated template: the bot's start then finds nothing to migrate), or with
    `empty=True` without any table (for the migration tests)."""
    server: PostgresServer | None = request.getfixturevalue("pg_server") if db_kind == "postgresql" else None
    made = itertools.count(1)

    def make(*, empty: bool = False) -> str:
        n = next(made)
        if server is None:
            path = tmp_path / f"bot-{n}.db"
            if not empty:
                shutil.copyfile(request.getfixturevalue("sqlite_migrated"), path)
            return f"sqlite:///{path}"
        return server.new_database(f"{request.node.originalname}_{n}", "template0" if empty else MIGRATED)

    return make


@pytest.fixture
def db_url(new_db_url: Callable[..., str]) -> str:
    """The DATABASE_URL of this test's own database (SQLite or PostgreSQL, see above), migrated."""
    return new_db_url()


@pytest.fixture
def empty_db_url(new_db_url: Callable[..., str]) -> str:
    """The DATABASE_URL of this test's own database without any table."""
    return new_db_url(empty=True)


@pytest.fixture
def stack(db_url: str) -> Iterator[LocalStack]:
    s = LocalStack(
        StackConfig(
            stage_seconds=0.15, poll_seconds=0.05, tick_seconds=0.02, window_seconds=1.0, database_url=db_url
        )
    ).start()
    try:
        yield s
    finally:
        s.stop()

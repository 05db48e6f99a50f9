"""The throwaway PostgreSQL server: starts unprivileged, hands out isolated databases, cleans up."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import sqlalchemy as sa

from sandbox.postgres import binaries_available, start_postgres

pytestmark = pytest.mark.skipif(
    not binaries_available() and os.environ.get("CI") != "true", reason="PostgreSQL binaries not on PATH"
)


def _owner_uid(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("Uid:"):
            return int(line.split()[1])
    raise AssertionError("no Uid line")


def test_server_runs_unprivileged_and_databases_are_isolated(tmp_path: Path) -> None:
    with start_postgres(tmp_path) as server:
        assert server.url.startswith("postgresql+psycopg://") and "@127.0.0.1:" in server.url
        assert _owner_uid(server.process.pid) != 0  # PostgreSQL refuses root; CI runs as root
        first, second = server.new_database("t"), server.new_database("t")
        assert first != second
        a, b = sa.create_engine(first), sa.create_engine(second)
        with a.begin() as conn:
            conn.execute(sa.text("CREATE TABLE seen (x int)"))
        with b.connect() as conn:
            assert conn.execute(sa.text("SELECT to_regclass('seen')")).scalar() is None
        a.dispose()
        b.dispose()
        data_dir, proc = server.data_dir, server.process
    assert proc.poll() is not None  # stopped on leaving the block
    assert not data_dir.exists()

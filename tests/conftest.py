"""Shared fixtures. Tests never read the developer's environment or `.env`: Bolt and
pydantic-settings both fall back to SLACK_*/KNOWLIFY_* variables, which would leak in."""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterator

import pytest

from sandbox.stack import LocalStack, StackConfig

warnings.filterwarnings("ignore", message=".*httpx2.*")


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory) -> None:
    for name in list(os.environ):
        if name.startswith(("SLACK_", "KNOWLIFY_")) or name in ("DATABASE_URL", "WORKER_TICK_SECONDS"):
            monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path_factory.mktemp("cwd"))  # no stray .env, no stray database file


@pytest.fixture
def stack() -> Iterator[LocalStack]:
    s = LocalStack(
        StackConfig(stage_seconds=0.15, poll_seconds=0.05, tick_seconds=0.02, window_seconds=1.0)
    ).start()
    try:
        yield s
    finally:
        s.stop()

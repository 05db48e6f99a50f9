"""Waiting on conditions (never on the clock) and reading what the bot did."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any, TypeVar

from sqlmodel import Session, select

from sandbox.slack_driver import ack_text  # noqa: F401 (re-exported for tests)
from sandbox.slack_standin import Call
from storage.models import EditJob, VideoJob

T = TypeVar("T")


def wait_until(condition: Callable[[], T], timeout: float = 15.0, what: str = "condition") -> T:
    """Re-check a database-side condition until it holds. Slack-side waits use the stand-in's
    condition variable (SlackStandIn.wait_for) instead."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.01)


def jobs(stack: Any) -> list[VideoJob]:
    with Session(stack.runtime.engine if stack.runtime else _engine(stack)) as s:
        return list(s.exec(select(VideoJob).order_by(VideoJob.id)))


def edits(stack: Any) -> list[EditJob]:
    with Session(stack.runtime.engine if stack.runtime else _engine(stack)) as s:
        return list(s.exec(select(EditJob).order_by(EditJob.id)))


def _engine(stack: Any) -> Any:
    from storage.db import make_engine

    return make_engine(stack.database_url)


def card_ts(stack: Any, index: int = 0, timeout: float = 15.0) -> str:
    """The thread of the index-th video, once the bot has stored it (replies before that are ignored)."""

    def stored() -> str | None:
        rows = jobs(stack)
        return rows[index].card_ts if len(rows) > index else None

    return wait_until(stored, timeout, f"card of job {index}")


def posted(fragment: str, *, thread: bool | None = None) -> Callable[[Call], bool]:
    def match(c: Call) -> bool:
        if c.method != "chat.postMessage" or not c.response.get("ok"):
            return False
        if thread is not None and bool(c.args.get("thread_ts")) != thread:
            return False
        return fragment in (c.args.get("text") or "")

    match.__name__ = f"posted({fragment!r})"
    return match


def updated(fragment: str) -> Callable[[Call], bool]:
    def match(c: Call) -> bool:
        return c.method == "chat.update" and fragment in (c.args.get("text") or "")

    match.__name__ = f"updated({fragment!r})"
    return match


def sim_posts(stack: Any, path: str) -> list[Any]:
    return [c for c in stack.sim.calls if c.method == "POST" and c.path == path]


def run_cli_start(tmp_path: Any, settings: dict[str, str], *args: str) -> tuple[int, list[str], str]:
    """`knowlify-slack serve` (or `args`) run as an operator would, with only `settings` from the
    environment: its exit status, its stderr lines, and the whole stderr."""
    environment = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "KNOWLIFY_"))}
    environment.update(settings)
    result = subprocess.run(
        [sys.executable, "-m", "bot.cli", *(args or ("serve",))],
        env=environment,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    return result.returncode, result.stderr.strip().splitlines(), result.stderr

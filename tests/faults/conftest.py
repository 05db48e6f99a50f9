"""Fixtures of the fault suite: the no-fault baseline waits, and the delay table at the end."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from sandbox.stack import LocalStack, StackConfig
from tests.faults import report
from tests.faults.conversation import create, full_conversation, reply
from tests.faults.invariants import Ledger, check, settle

# The scaled-down world every in-process fault test runs in (as tests/conftest.py's `stack`).
CONFIG = dict(stage_seconds=0.15, poll_seconds=0.05, tick_seconds=0.02, window_seconds=1.0)


def make_stack(**overrides: object) -> LocalStack:
    return LocalStack(StackConfig(**{**CONFIG, **overrides}))  # type: ignore[arg-type]


@pytest.fixture(scope="session")
def baseline() -> dict[str, float]:
    """How long a user waits for each kind of result when nothing goes wrong (on SQLite: the
    reference both databases' fault rows are compared with)."""
    stack = make_stack().start()
    try:
        ledger = Ledger()
        assert stack.driver is not None
        full_conversation(stack, stack.driver, ledger, "baseline")
        # A reply written while the video still renders waits for the render, then for the edit.
        prompt = "baseline-kept how sails work"
        thread = create(stack, stack.driver, ledger, prompt)
        reply(stack.driver, ledger, prompt, "baseline-kept: make scene 2 windier", thread, kept=True)
        settle(stack, ledger)
        outcome = check(stack, ledger)
    finally:
        stack.stop()
    return {kind: outcome.longest(kind) for kind in ("create", "edit", "kept edit", "revert")}


@pytest.fixture(autouse=True)
def _name_the_database(request: pytest.FixtureRequest) -> Iterator[None]:
    callspec = getattr(request.node, "callspec", None)
    report.DATABASE = callspec.params.get("db_kind") if callspec else None
    yield
    report.DATABASE = None


@pytest.fixture
def fstack(db_url: str) -> Iterator[LocalStack]:
    s = make_stack(database_url=db_url).start()
    try:
        yield s
    finally:
        s.stop()


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if report.ROWS:
        terminalreporter.write_sep("=", "fault suite: longest delay each fault added to a user's result")
        terminalreporter.write_line(report.table())

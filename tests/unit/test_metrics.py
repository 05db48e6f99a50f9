"""bot.metrics: what the helpers count, read back from the process registry."""

from __future__ import annotations

import pytest

from bot import metrics
from bot.knowlify.budget import Budget, InMemoryCallLog
from bot.knowlify.errors import BudgetExhausted


def sample(name: str, **labels: str) -> float:
    return metrics.REGISTRY.get_sample_value(name, labels) or 0.0


def test_a_postponed_call_counts_as_a_budget_wait_with_its_reason():
    now = [1_000.0]
    budget = Budget(
        InMemoryCallLog(), key_id="k", limits={"videos": 2}, reserve={"videos": 1}, clock=lambda: now[0]
    )
    name = "knowlify_slack_budget_waits_total"
    before = sample(name, bucket="videos", purpose="poll", reason="budget")
    budget.acquire("videos", "poll")
    with pytest.raises(BudgetExhausted):
        budget.acquire("videos", "poll")
    assert sample(name, bucket="videos", purpose="poll", reason="budget") == before + 1

    paused = sample(name, bucket="videos", purpose="action", reason="paused")
    budget.penalize("videos", 30)
    with pytest.raises(BudgetExhausted):
        budget.acquire("videos", "action")
    assert sample(name, bucket="videos", purpose="action", reason="paused") == paused + 1


@pytest.mark.parametrize(
    ("text", "kind"),
    [("", "form"), ("help", "help"), ("LIST", "list"), ("help me", "create"), ("Explain tides", "create")],
)
def test_commands_are_counted_by_the_parsers_rule(text, kind):
    assert metrics.command_kind(text) == kind

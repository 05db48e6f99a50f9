"""The revert permission check over real HTTP: users.info rate-limited, failing or slow never holds
the ack past Slack's 3 seconds and is never worded as "you may not"; an admin of another workspace
(Slack Connect) is not this workspace's admin."""

from __future__ import annotations

import time

import pytest

from tests.e2e.test_revert import ADMIN, BOB, applied_edit, ephemeral, ready_video, reverts
from tests.helpers import edits, posted

FOREIGN_ADMIN = "U0EXT0009"
ACK_LIMIT = 3.0


def bobs_edit(stack) -> str:
    """Ada's video, Bob's edit (he mentions the bot): a revert by the admin needs users.info."""
    thread = ready_video(stack)
    return applied_edit(stack, thread, "<@U0KN0WBOT> make scene 2 slower", user=BOB)


def react(stack, reply_ts: str, user: str) -> float:
    started = time.monotonic()
    response = stack.driver.reaction(reply_ts, user=user)
    elapsed = time.monotonic() - started
    assert response.status_code == 200
    return elapsed


@pytest.mark.parametrize(
    "fault",
    [
        {"status": 429, "retry_after": 5, "times": 1},
        {"error": "internal_error", "times": 1},
        {"error": "fatal_error", "status": 500, "times": 1},
    ],
    ids=["rate-limited", "slack-error", "http-500"],
)
def test_a_failed_lookup_is_answered_try_again_within_the_ack(stack, fault):
    reply_ts = bobs_edit(stack)
    stack.slack.inject("users.info", **fault)
    elapsed = react(stack, reply_ts, ADMIN)
    assert elapsed < ACK_LIMIT, f"the reaction was answered after {elapsed:.2f}s"
    (note,) = stack.slack.wait_for(ephemeral("couldn't check your permissions", ADMIN), timeout=5)
    assert "try again" in note.args["text"] and "Only" not in note.args["text"]
    assert len(stack.slack.calls_of("users.info")) == 1, "the listener never retries (it would sleep)"
    assert reverts(stack) == [] and edits(stack)[0].revert_state is None

    # Once Slack answers again, the same admin's reaction reverts.
    react(stack, reply_ts, ADMIN)
    stack.slack.wait_for(posted("Edit reverted", thread=True), timeout=10)
    assert len(reverts(stack)) == 1


def test_a_slow_lookup_does_not_hold_the_ack(stack):
    reply_ts = bobs_edit(stack)
    stack.slack.set_latency("users.info", 5.0)
    elapsed = react(stack, reply_ts, ADMIN)
    assert elapsed < ACK_LIMIT, f"the reaction was answered after {elapsed:.2f}s"
    stack.slack.wait_for(ephemeral("couldn't check your permissions", ADMIN), timeout=5)
    assert reverts(stack) == []


@pytest.mark.parametrize(
    "foreign",
    [{"team_id": "T0OTHER01"}, {"is_stranger": True}],
    ids=["other-team", "stranger"],
)
def test_an_admin_of_another_workspace_may_not_revert(stack, foreign):
    stack.slack.add_user(FOREIGN_ADMIN, name="ext-admin", is_admin=True, is_owner=True, **foreign)
    reply_ts = bobs_edit(stack)
    react(stack, reply_ts, FOREIGN_ADMIN)
    (note,) = stack.slack.wait_for(ephemeral("Only", FOREIGN_ADMIN), timeout=5)
    assert "workspace admin" in note.args["text"]
    assert reverts(stack) == [] and edits(stack)[0].revert_state is None

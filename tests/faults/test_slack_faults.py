"""Slack's Web API misbehaves: 429 with Retry-After, not_in_channel, channel_not_found, a deleted
card (message_not_found). The job still finishes, the user is told where possible, and the poller
keeps going."""

from __future__ import annotations

import itertools
import logging

from tests.faults import report
from tests.faults.conversation import create
from tests.faults.invariants import Ledger, check, job_for, settle, wait_for


def _no_errors(caplog) -> None:  # type: ignore[no-untyped-def]
    bad = [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]
    assert not bad, "\n".join(f"{r.levelname} {r.name}: {r.getMessage()}" for r in bad)


def test_slack_429_on_post_and_update_is_waited_out(fstack, baseline, caplog):
    stack, driver, ledger = fstack, fstack.driver, Ledger()
    caplog.set_level(logging.INFO)
    prompt = "s429 how satellites orbit"
    stack.slack.inject("chat.postMessage", status=429, retry_after=1, times=1)  # the card
    stack.slack.inject("chat.update", status=429, retry_after=1, times=1)
    create(stack, driver, ledger, prompt)
    stack.slack.inject("chat.postMessage", status=429, retry_after=1, times=1)  # the "ready" post
    settle(stack, ledger)
    outcome = check(stack, ledger)

    for method in ("chat.postMessage", "chat.update"):
        calls = stack.slack.calls_of(method)
        for hit, nxt in itertools.pairwise(calls):
            if hit.status == 429:
                assert nxt.at - hit.at >= 1.0 - 0.05, f"{method} resent {nxt.at - hit.at:.2f}s after a 429"
    assert sum(1 for c in stack.slack.calls if c.status == 429) == 3
    assert job_for(stack, prompt)["state"] == "complete"
    _no_errors(caplog)
    report.record("Slack 429 Retry-After 1 on card, update, result", outcome, baseline)


def test_failing_slack_calls_do_not_stop_jobs_and_users_are_told(fstack, baseline, caplog):
    stack, driver, ledger = fstack, fstack.driver, Ledger()
    caplog.set_level(logging.INFO)

    # A user deletes the card mid-render: every chat.update answers message_not_found.
    deleted = "sdel how rainbows form"
    card = create(stack, driver, ledger, deleted)
    wait_for(lambda: stack.slack.calls_of("chat.update"), 10, "a first card update")
    stack.slack.delete_message("C0DESIGN1", card)
    settle(stack, ledger)
    assert any(c.response.get("error") == "message_not_found" for c in stack.slack.calls_of("chat.update"))

    # The bot is removed from the channel before the result: the requester hears via response_url.
    removed = "sout how tunnels are dug"
    create(stack, driver, ledger, removed)
    stack.slack.inject("chat.postMessage", error="not_in_channel", times=1)
    settle(stack, ledger)

    # The channel is gone before the card could be posted: told via response_url, nothing created.
    gone = "sgone how dams hold water"
    stack.slack.inject("chat.postMessage", error="channel_not_found", times=1)
    ledger.command(gone, expect="needs_invite")
    assert driver.command(gone).status_code == 200
    settle(stack, ledger)

    outcome = check(stack, ledger)
    told = [h for h in stack.slack.hooks() if "Your video is ready" in h["body"].get("text", "")]
    assert len(told) == 1 and "tunnels" in told[0]["body"]["text"]
    assert any("/invite @knowlify" in h["body"].get("text", "") for h in stack.slack.hooks())
    assert not [c for c in stack.sim.calls if c.method == "POST" and c.body["videos"][0]["task"] == gone]
    _no_errors(caplog)
    report.record("Slack card deleted / not_in_channel / channel_not_found", outcome, baseline)

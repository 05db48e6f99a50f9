"""Slack delivers each event up to 4 times (the first try and three retries, possibly while the first
is still being handled) and out of order; two replies land in the same second; a reaction arrives
before the reply it points to. Every reply still becomes exactly one edit, in the order written."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

from sandbox.slack_driver import SlackDriver
from tests.faults import report
from tests.faults.conversation import create
from tests.faults.invariants import (
    EDIT_RESULT,
    Ledger,
    check,
    edit_rows,
    job_for,
    settle,
    sim_edits,
    wait_for,
)


def _four_times(driver: SlackDriver, pool: ThreadPoolExecutor, event: dict[str, Any]) -> list[Any]:
    """One event as Slack may deliver it: first try plus retries 1–3, concurrently, same event_id."""
    event_id = driver.new_event_id()
    return [
        pool.submit(driver.event, event, event_id=event_id, retry_num=n or None, retry_reason="http_timeout")
        for n in range(4)
    ]


def _same_second_pair(driver: SlackDriver, after: str) -> tuple[str, str]:
    while True:
        first = driver.next_ts(after=after)
        sec, frac = first.split(".")
        if int(frac) < 999_000:
            second = f"{sec}.{int(frac) + 1:06d}"
            driver.next_ts(after=second)  # keep the driver's clock ahead of both
            return first, second


def test_retried_out_of_order_replies_in_one_second_become_one_edit_each_in_order(fstack, baseline):
    stack, driver, ledger = fstack, fstack.driver, Ledger()
    prompt = "dup how kites fly"
    thread = create(stack, driver, ledger, prompt)
    first_ts, second_ts = _same_second_pair(driver, thread)
    first = driver.message_event("dup-1 make scene 1 windier", thread_ts=thread, ts=first_ts)
    second = driver.message_event("dup-2 make scene 2 sunnier", thread_ts=thread, ts=second_ts)
    ledger.edit(first["text"], prompt, first_ts, kept=True)
    ledger.edit(second["text"], prompt, second_ts, kept=True)
    with ThreadPoolExecutor(8) as pool:
        # Written first, delivered last; each one four times.
        deliveries = _four_times(driver, pool, second) + _four_times(driver, pool, first)
        assert [f.result().status_code for f in deliveries] == [200] * 8
    assert job_for(stack, prompt)["state"] != "complete", "the replies arrive during the render"
    settle(stack, ledger)

    # Kept replies are submitted in the order they were written, not the order they arrived.
    sent = [c for c in stack.sim.calls if c.method == "POST" and c.path == "/v1/edits" and c.status == 202]
    assert [c.body["edit_request"] for c in sent] == [first["text"], second["text"]]
    kept = [
        c
        for c in stack.slack.calls_of("chat.postMessage")
        if c.args.get("thread_ts") == thread and "still rendering" in c.args.get("text", "")
    ]
    assert len(kept) == 2, "one 'kept' notice per reply, not per delivery"

    # Revert the newer edit, then the older one; each reaction delivered four times.
    for reply_ts in (second_ts, first_ts):
        ledger.revert(reply_ts)
        with ThreadPoolExecutor(4) as pool:
            results = _four_times(driver, pool, driver.reaction_event(reply_ts))
            assert [f.result().status_code for f in results] == [200] * 4
        settle(stack, ledger)
    outcome = check(stack, ledger)
    assert len(sim_edits(stack)) == 2
    report.record("Slack events ×4, out of order, same second", outcome, baseline)


def test_reaction_before_its_reply_is_known_is_harmless(fstack, baseline):
    stack, driver, ledger = fstack, fstack.driver, Ledger()
    prompt = "early how bees dance"
    thread = create(stack, driver, ledger, prompt)
    settle(stack, ledger)
    reply_ts = driver.next_ts(after=thread)
    text = "early make scene 5 golden"
    ledger.edit(text, prompt, reply_ts)
    # The reaction overtakes the reply it points to.
    assert driver.reaction(reply_ts).status_code == 200
    response, _ = driver.reply(text, thread_ts=thread, ts=reply_ts)
    assert response.status_code == 200
    wait_for(lambda: [r for r in edit_rows(stack) if r["result_ts"]], 15, "the edit's result")
    stack.slack.wait_for(
        lambda c: c.method == "chat.postMessage" and any(f in c.args.get("text", "") for f in EDIT_RESULT),
        timeout=10,
    )
    # Later the user reacts again (or the first reaction was kept): either way, one revert.
    ledger.revert(reply_ts)
    assert driver.reaction(reply_ts).status_code == 200
    settle(stack, ledger)
    outcome = check(stack, ledger)
    report.record("reaction before its reply is known", outcome, baseline)

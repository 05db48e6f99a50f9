"""The whole conversation (create, edit, revert) as a user plays it, recorded in a Ledger."""

from __future__ import annotations

import time

from sandbox.slack_driver import SlackDriver
from sandbox.stack import LocalStack
from tests.faults.invariants import Ledger, card_ts_of, settle

ACK_LIMIT = 3.0


def create(stack: LocalStack, driver: SlackDriver, ledger: Ledger, prompt: str, **kw: object) -> str:
    """Send `/knowlify <prompt>`; check the ack; returns the card's ts once the bot has stored it."""
    ledger.command(prompt, **kw)  # type: ignore[arg-type]
    t0 = time.monotonic()
    response = driver.command(prompt, channel=ledger.videos[prompt].channel)
    assert response.status_code == 200 and time.monotonic() - t0 < ACK_LIMIT
    return card_ts_of(stack, prompt)


def reply(driver: SlackDriver, ledger: Ledger, prompt: str, text: str, thread_ts: str, **kw: object) -> str:
    ts = driver.next_ts(after=thread_ts)
    ledger.edit(text, prompt, ts, **kw)  # type: ignore[arg-type]
    response, _ = driver.reply(text, thread_ts=thread_ts, ts=ts, channel=ledger.videos[prompt].channel)
    assert response.status_code == 200
    return ts


def revert(driver: SlackDriver, ledger: Ledger, reply_ts: str) -> None:
    ledger.revert(reply_ts)
    response = driver.reaction(reply_ts, channel=ledger.edits[reply_ts].channel)
    assert response.status_code == 200


def full_conversation(stack: LocalStack, driver: SlackDriver, ledger: Ledger, name: str) -> None:
    """create → wait for the video → edit → wait for the result → revert → wait for the revert."""
    prompt = f"{name} explain how tides work"
    thread = create(stack, driver, ledger, prompt)
    settle(stack, ledger)
    ts = reply(driver, ledger, prompt, f"{name}: make scene 2 brighter", thread)
    settle(stack, ledger)
    revert(driver, ledger, ts)
    settle(stack, ledger)

"""Bad input over real HTTP: arbitrary JSON in signed event envelopes is always answered 200 and never
ends as an unhandled traceback; unsigned, wrongly signed or stale requests get 401 and do nothing;
a valid request replayed within the 5 minutes does nothing a second time."""

from __future__ import annotations

import json
import logging
import time
import traceback
from collections import Counter
from typing import Any
from urllib.parse import urlencode

import httpx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from slack_sdk.signature import SignatureVerifier

from sandbox.stack import SIGNING_SECRET, LocalStack
from tests.faults.conversation import create
from tests.faults.invariants import Ledger, check, edit_rows, posts, settle, video_rows

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=8,
)


def _events(channel: str, thread: str, reply: str) -> st.SearchStrategy[Any]:
    """Event payloads that mostly look like Slack's, with any field missing, mistyped or odd.

    Slack's envelope is always well formed (an event object with a string type); what is inside the
    event is not up to the bot.
    """

    def one_of(*values: Any) -> st.SearchStrategy[Any]:
        return st.sampled_from(values) | JSON

    channels = one_of(channel, channel, "C0OTHER01", "D0ADA0001", "")
    users = one_of("U0ADA0001", "U0BOB0002", "U0KN0WBOT", "")
    stamps = one_of(reply, thread, "1.000001", "not-a-ts")
    extra = st.dictionaries(st.text(max_size=8), JSON, max_size=2)
    message = st.fixed_dictionaries(
        {"type": st.just("message")},
        optional={
            "channel": channels,
            "user": users,
            "text": st.text(max_size=60) | JSON,
            "ts": stamps,
            "thread_ts": stamps,
            "subtype": one_of(
                "bot_message", "message_changed", "message_deleted", "file_share", "thread_broadcast"
            ),
            "bot_id": one_of("B0KN0WBOT"),
            "hidden": st.booleans(),
        },
    )
    item = st.fixed_dictionaries(
        {}, optional={"type": one_of("message", "message", "file"), "channel": channels, "ts": stamps}
    )
    reaction = st.fixed_dictionaries(
        {"type": st.sampled_from(["reaction_added", "reaction_removed"])},
        optional={"user": users, "reaction": one_of("rewind", "rewind", "thumbsup"), "item": item | JSON},
    )
    home = st.fixed_dictionaries(
        {"type": st.just("app_home_opened")}, optional={"user": users, "tab": one_of("home", "messages")}
    )
    other = st.fixed_dictionaries({"type": st.text(max_size=12)})
    return st.builds(lambda e, x: {**x, **e}, message | reaction | home | other, extra)


def _signed(body: bytes, timestamp: int | None = None, secret: str = SIGNING_SECRET) -> dict[str, str]:
    ts = str(int(time.time()) if timestamp is None else timestamp)
    signature = SignatureVerifier(secret).generate_signature(timestamp=ts, body=body)
    return {"X-Slack-Request-Timestamp": ts, "X-Slack-Signature": signature or ""}


def _where(record: logging.LogRecord) -> str:
    """The bot's own frame nearest to where a logged exception was raised."""
    if not record.exc_info or record.exc_info[2] is None:
        return f"{record.name}: {record.getMessage()[:80]}"
    frames = [f for f in traceback.extract_tb(record.exc_info[2]) if "/bot/" in f.filename]
    place = f"{frames[-1].filename.split('/bot/')[-1]}:{frames[-1].lineno}" if frames else record.name
    return f"bot/{place} {type(record.exc_info[1]).__name__}: {record.exc_info[1]}"[:120]


def _drain_listeners(stack: LocalStack) -> None:
    """Events are handled after the 200; wait until every handler has run before reading the log."""
    assert stack.runtime is not None
    stack.runtime.app._listener_runner.listener_executor.shutdown(wait=True)


def test_arbitrary_event_json_is_answered_200_without_unhandled_errors(fstack, caplog):
    stack, driver, ledger = fstack, fstack.driver, Ledger()
    caplog.set_level(logging.INFO)
    prompt = "fuzz how soap bubbles form"
    thread = create(stack, driver, ledger, prompt)
    settle(stack, ledger)
    reply = driver.next_ts(after=thread)
    answers: list[tuple[int, str]] = []

    @settings(max_examples=200, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    @given(
        event=_events("C0DESIGN1", thread, reply),
        event_id=st.sampled_from(["EvFUZZ0001", "EvFUZZ0002"]) | st.text(min_size=1, max_size=12),
        retry=st.none() | st.integers(1, 3),
    )
    def deliver(event: dict[str, Any], event_id: str, retry: int | None) -> None:
        body = json.dumps(driver.envelope(event, event_id)).encode()
        # A fresh connection each time: one request's failure must not spill into the next.
        headers = {"Content-Type": "application/json", "Connection": "close", **_signed(body)}
        if retry:
            headers.update({"X-Slack-Retry-Num": str(retry), "X-Slack-Retry-Reason": "http_timeout"})
        response = driver.client.post(driver.events_url, content=body, headers=headers)
        answers.append((response.status_code, json.dumps(event)))

    deliver()
    _drain_listeners(stack)
    refused = sorted({(len(e), code, e) for code, e in answers if code != 200})
    assert not refused, (
        f"{len(refused)} events not answered 200; the smallest: {[r[1:] for r in refused[:4]]}"
    )
    bad = [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]
    assert not bad, f"{len(bad)} unhandled errors, by place: {sorted(Counter(map(_where, bad)).items())}"
    assert len(answers) >= 100


def test_unsigned_wrongly_signed_and_stale_requests_get_401_and_change_nothing(fstack):
    stack, driver, ledger = fstack, fstack.driver, Ledger()
    prompt = "sig how keys open locks"
    thread = create(stack, driver, ledger, prompt)
    settle(stack, ledger)
    before = (len(stack.sim.calls), len(stack.slack.calls), len(video_rows(stack)), len(edit_rows(stack)))

    reply = driver.message_event("sig edit: make scene 1 red", thread_ts=thread)
    event_body = json.dumps(driver.envelope(reply)).encode()
    command_body = urlencode(driver.command_payload("sig how clocks tick")).encode()
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    as_json = {"Content-Type": "application/json"}
    stale = int(time.time()) - 5 * 60 - 5
    for body, kind in ((event_body, as_json), (command_body, form)):
        attempts = {
            "unsigned": kind,
            "wrong secret": {**kind, **_signed(body, secret="not-the-signing-secret")},
            "older than 5 minutes": {**kind, **_signed(body, timestamp=stale)},
            "signature of another body": {**kind, **_signed(body + b" ")},
        }
        for what, headers in attempts.items():
            response = httpx.post(driver.events_url, content=body, headers=headers)
            assert response.status_code == 401, (what, response.status_code)
    after = (len(stack.sim.calls), len(stack.slack.calls), len(video_rows(stack)), len(edit_rows(stack)))
    assert after == before, "a refused request had a side effect"


def test_valid_request_replayed_within_5_minutes_acts_once(fstack):
    stack, driver, ledger = fstack, fstack.driver, Ledger()
    prompt = "replay how magnets attract"
    thread = create(stack, driver, ledger, prompt)
    settle(stack, ledger)

    # The very same signed bytes, sent again a moment later (an attacker or a proxy replaying).
    command = driver.command_payload("replay how tides turn")
    command_body = urlencode(command).encode()
    command_headers = {"Content-Type": "application/x-www-form-urlencoded", **_signed(command_body)}
    ts = driver.next_ts(after=thread)
    reply = driver.message_event("replay edit: make scene 3 bolder", thread_ts=thread, ts=ts)
    reply_body = json.dumps(driver.envelope(reply)).encode()
    reply_headers = {"Content-Type": "application/json", **_signed(reply_body)}
    ledger.command("replay how tides turn")
    ledger.edit(reply["text"], prompt, ts)
    for _ in range(2):
        assert httpx.post(driver.events_url, content=command_body, headers=command_headers).status_code == 200
        assert httpx.post(driver.events_url, content=reply_body, headers=reply_headers).status_code == 200
    settle(stack, ledger)
    ledger.revert(ts)
    reaction_body = json.dumps(driver.envelope(driver.reaction_event(ts))).encode()
    reaction_headers = {"Content-Type": "application/json", **_signed(reaction_body)}
    for _ in range(2):
        assert (
            httpx.post(driver.events_url, content=reaction_body, headers=reaction_headers).status_code == 200
        )
    settle(stack, ledger)
    check(stack, ledger)
    assert len(video_rows(stack)) == 2 and len(edit_rows(stack)) == 1
    assert not [c for c in posts(stack) if "already" in c.args.get("text", "").lower()], (
        "a replay is not answered in the channel"
    )

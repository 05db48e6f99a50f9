"""The HTTP edge over real HTTP: what a request costs before the bot knows Slack sent it.

A body over 1 MiB is refused with 413 before it is read whole (announced or chunked); a request
that cannot be verified gets 401 whatever its headers hold; a signed body that is not UTF-8, JSON
or a form gets 200, never a 5xx or a traceback; no request body reaches the served bot's log, even
at DEBUG; and no input, wherever it hides a CR or LF, can start a log line of its own.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import re
import time
from urllib.parse import urlencode

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sandbox import raw_http
from sandbox.bot_process import BotProcess
from sandbox.stack import SIGNING_SECRET, LocalStack
from tests.faults.conftest import make_stack
from tests.helpers import posted

MIB = 1024 * 1024
FORM = {"Content-Type": "application/x-www-form-urlencoded"}
AS_JSON = {"Content-Type": "application/json"}


def _signed(body: bytes, timestamp: int | None = None) -> dict[str, str]:
    """Slack's v0 signature over the raw bytes (slack_sdk's helper only signs UTF-8 text)."""
    ts = str(int(time.time()) if timestamp is None else timestamp)
    mac = hmac.new(SIGNING_SECRET.encode(), f"v0:{ts}:".encode() + body, hashlib.sha256).hexdigest()
    return {"X-Slack-Request-Timestamp": ts, "X-Slack-Signature": f"v0={mac}"}


def _bad_records(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        f"{r.name}: {r.getMessage()[:100]}" for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info
    ]


def _events_url(stack: LocalStack) -> str:
    assert stack.driver is not None
    return stack.driver.events_url


# --- 413 ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("framing", ["Content-Length", "chunked"])
def test_a_body_over_1_mib_gets_413_before_it_is_read_whole_and_the_bot_answers_after(fstack, framing):
    stack = fstack
    total = 64 * MIB
    answer = raw_http.post(
        _events_url(stack),
        raw_http.blocks(total),
        content_length=total if framing == "Content-Length" else None,
        headers={**FORM, "X-Slack-Request-Timestamp": str(int(time.time()))},
    )
    assert answer.status == 413, (answer.status, answer.body)
    assert b"too large" in answer.body
    # The answer came while most of the upload was still unsent: the server did not wait for it.
    assert answer.body_bytes_sent < total // 2, f"{answer.body_bytes_sent / MIB:.1f} MiB taken before the 413"
    assert stack.driver is not None
    assert stack.driver.command("help").status_code == 200, "the bot answers normally afterwards"


def test_a_signed_body_over_1_mib_is_refused_too_and_one_at_the_limit_is_not(fstack):
    stack = fstack
    url = _events_url(stack)
    over = b"payload=" + b"x" * MIB
    response = httpx.post(url, content=over, headers={**FORM, **_signed(over)})
    assert response.status_code == 413
    # Exactly 1 MiB of (signed, meaningless) form is within the limit: verified, then ignored with 200.
    at_limit = b"payload=" + b"x" * (MIB - len(b"payload="))
    response = httpx.post(url, content=at_limit, headers={**FORM, **_signed(at_limit)})
    assert response.status_code == 200


# --- 401 ------------------------------------------------------------------------------------------


def _unverifiable(body: bytes) -> dict[str, dict[str, str]]:
    good = _signed(body)
    now = int(time.time())
    return {
        "no headers": {},
        "no timestamp": {"X-Slack-Signature": good["X-Slack-Signature"]},
        "empty timestamp": {**good, "X-Slack-Request-Timestamp": ""},
        "non-numeric timestamp": {**good, "X-Slack-Request-Timestamp": "yesterday"},
        "timestamp with a fraction": {**good, "X-Slack-Request-Timestamp": f"{now}.5"},
        "timestamp with underscores": {**good, "X-Slack-Request-Timestamp": f"{now:_}"},
        "negative timestamp": {**good, "X-Slack-Request-Timestamp": f"-{now}"},
        "huge timestamp": {**good, "X-Slack-Request-Timestamp": "9" * 5000},
        "stale timestamp": _signed(body, timestamp=now - 5 * 60 - 30),
        "timestamp from the future": _signed(body, timestamp=now + 5 * 60 + 30),
        "no signature": {"X-Slack-Request-Timestamp": good["X-Slack-Request-Timestamp"]},
        "empty signature": {**good, "X-Slack-Signature": ""},
        "garbage signature": {**good, "X-Slack-Signature": "v0=not-hex"},
        "signature of another body": _signed(body + b" "),
    }


def test_every_unverifiable_request_gets_401_without_a_traceback_or_an_effect(fstack, caplog):
    stack = fstack
    caplog.set_level(logging.DEBUG)
    assert stack.driver is not None
    command = urlencode(stack.driver.command_payload("edge how locks work")).encode()
    event = json.dumps(stack.driver.envelope(stack.driver.message_event("hi", thread_ts="1.000001"))).encode()
    before = (len(stack.sim.calls), len(stack.slack.calls))
    refused = {}
    for body, kind in ((command, FORM), (event, AS_JSON), (b"\xff\xfe\x00not utf-8", FORM)):
        for what, headers in _unverifiable(body).items():
            response = httpx.post(_events_url(stack), content=body, headers={**kind, **headers})
            refused[(kind["Content-Type"], what)] = response.status_code
    assert set(refused.values()) == {401}, {k: v for k, v in refused.items() if v != 401}
    assert not _bad_records(caplog)
    assert (len(stack.sim.calls), len(stack.slack.calls)) == before, "a refused request had an effect"


# --- signed but malformed: 200, never 5xx -----------------------------------------------------------

MALFORMED = [
    (b"\xff\xfe\xfd", FORM),
    (b"\xc3\x28 half a character", AS_JSON),
    (b"{not json", AS_JSON),
    (b'{"type": "event_callback", "event": ', AS_JSON),
    (b"[1, 2, 3]", AS_JSON),
    (b"null", AS_JSON),
    (b"payload=%7Bbroken", FORM),
    (b"payload=%FF%FE", FORM),
    (b"payload=" + urlencode({"x": "[]"}).encode(), FORM),
    (b"&&&===", FORM),
    (b"", FORM),
    (b"\x00" * 100, {"Content-Type": "application/octet-stream"}),
    (b"<xml/>", {"Content-Type": "text/xml"}),
]


def test_signed_bodies_that_are_not_utf8_json_or_a_form_get_200_without_a_traceback(fstack, caplog):
    stack = fstack
    caplog.set_level(logging.DEBUG)
    answers = {}
    for body, kind in MALFORMED:
        response = httpx.post(_events_url(stack), content=body, headers={**kind, **_signed(body)})
        answers[body[:30]] = response.status_code
    assert set(answers.values()) == {200}, answers

    @settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    @given(
        body=st.binary(max_size=200),
        kind=st.sampled_from([FORM, AS_JSON, {"Content-Type": "text/plain"}, {}]),
    )
    def any_bytes(body: bytes, kind: dict[str, str]) -> None:
        response = httpx.post(_events_url(stack), content=body, headers={**kind, **_signed(body)})
        assert response.status_code == 200, (body, kind, response.status_code)

    any_bytes()
    assert stack.runtime is not None
    stack.runtime.app._listener_runner.listener_executor.shutdown(wait=True)
    assert not _bad_records(caplog)


# --- the served bot's log ----------------------------------------------------------------------------

# The shape of a record line written by `knowlify-slack serve`, for a forger to imitate.
FORGED = "2026-01-01 00:00:00,000 CRITICAL bot.worker: FORGED-{n} all jobs deleted"


def test_no_request_body_reaches_the_served_bots_debug_log(tmp_path):
    stack = make_stack().start(bot=False)
    bot = BotProcess(stack, tmp_path / "bot.log", log_level="DEBUG")
    marks = {n: f"BODYMARK{n}x{int(time.time() * 1000)}" for n in range(7)}
    try:
        bot.start()
        url, driver = f"{bot.url}/slack/events", bot.driver
        assert driver is not None
        unsigned = f"token=t&text={marks[0]}".encode()
        assert httpx.post(url, content=unsigned, headers=FORM).status_code == 401
        stale = f"text={marks[1]}".encode()
        assert httpx.post(url, content=stale, headers={**FORM, **_signed(stale, 1)}).status_code == 401
        for body, kind in (
            (b"\xff" + marks[2].encode(), FORM),
            (("{" + marks[3]).encode(), AS_JSON),
            (f"payload={marks[4]}".encode(), FORM),
        ):
            assert httpx.post(url, content=body, headers={**kind, **_signed(body)}).status_code == 200
        big = (marks[5] * (2 * MIB // len(marks[5]) + 1)).encode()
        assert httpx.post(url, content=big, headers={**FORM, **_signed(big)}).status_code == 413
        # A real command: its prompt goes to Slack in the card, and must not come back via debug lines.
        assert driver.command(f"Explain {marks[6]} --duration 60").status_code == 200
        stack.slack.wait_for(posted(marks[6], thread=False), timeout=20)
    finally:
        bot.stop()
        stack.stop()
    log = bot.log_text()
    assert " DEBUG " in log and log.count("refused with 401") >= 2, "the bot logged at DEBUG and saw them"
    leaked = [n for n, mark in marks.items() if mark in log]
    assert not leaked, f"request bodies {leaked} in the log: {[line for line in log.splitlines() if 'BODYMARK' in line][:3]}"


def test_no_input_can_forge_a_line_in_the_served_bots_log(tmp_path):
    stack = make_stack().start(bot=False)
    bot = BotProcess(stack, tmp_path / "bot.log", log_level="DEBUG")
    try:
        bot.start()
        url, driver = f"{bot.url}/slack/events", bot.driver
        assert driver is not None
        # An unsigned body (stock Bolt logs it whole at INFO).
        body = f"token=t\n{FORGED.format(n=1)}\ntext=x".encode()
        assert httpx.post(url, content=body, headers=FORM).status_code == 401
        # Signed requests whose workspace id the bot logs when it refuses them: CR/LF inside.
        event = driver.envelope(driver.message_event("hello", thread_ts="1.000001"))
        event["team_id"] = f"T0EVIL\r\n{FORGED.format(n=2)}\r\n"
        body = json.dumps(event).encode()
        assert httpx.post(url, content=body, headers={**AS_JSON, **_signed(body)}).status_code == 200
        command = driver.command_payload(f"Explain tides\r\n{FORGED.format(n=3)}")
        command["team_id"] = f"T0EVIL\n{FORGED.format(n=4)}\u2028{FORGED.format(n=5)}"
        body = urlencode(command).encode()
        assert httpx.post(url, content=body, headers={**FORM, **_signed(body)}).status_code == 200
        # A command of this workspace whose text carries the line.
        assert driver.command(f"Explain tides\r\n{FORGED.format(n=6)}").status_code == 200
        stack.slack.wait_for(posted("Explain tides", thread=False), timeout=20)
        # A header with a bare CR: the server refuses the request itself.
        answer = raw_http.post(
            url, [b"x"], content_length=1, headers={"X-Slack-Signature": f"v0=1\r{FORGED.format(n=7)}"}
        )
        assert answer.status in (0, 400)
        assert bot.driver is not None and bot.driver.command("help").status_code == 200
    finally:
        bot.stop()
        stack.stop()
    log = bot.log_text()
    forged = [line for line in log.splitlines() if re.match(r"\s*2026-01-01 00:00:00,000 CRITICAL", line)]
    assert not forged, f"forged log lines: {forged}"
    assert not [line for line in log.splitlines() if line.lstrip().startswith("FORGED")]
    # The input did reach a log line, escaped on it (so the check above could have failed).
    assert "T0EVIL\\r\\n2026-01-01 00:00:00,000 CRITICAL bot.worker: FORGED-2" in log
    assert "FORGED-4 all jobs deleted\\u20282026-01-01" in log


def test_the_served_bot_still_answers_after_a_refused_upload(tmp_path):
    """The served process (not only the in-process app) refuses both framings and goes on serving."""
    stack = make_stack().start(bot=False)
    bot = BotProcess(stack, tmp_path / "bot.log")
    try:
        bot.start()
        url = f"{bot.url}/slack/events"
        for content_length in (8 * MIB, None):
            answer = raw_http.post(url, raw_http.blocks(8 * MIB), content_length=content_length, headers=FORM)
            assert answer.status == 413
        assert bot.driver is not None
        assert bot.driver.command("help").status_code == 200
    finally:
        bot.stop()
        stack.stop()

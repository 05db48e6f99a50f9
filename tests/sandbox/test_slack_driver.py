"""The Slack driver: requests are signed the way Slack signs them, and a real Bolt app accepts them."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qsl

import pytest
from slack_bolt import App
from slack_bolt.adapter.socket_mode import SocketModeHandler
from slack_bolt.adapter.starlette import SlackRequestHandler
from slack_sdk import WebClient
from slack_sdk.signature import SignatureVerifier
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from sandbox.servers import ServerThread
from sandbox.slack_driver import SlackDriver
from sandbox.slack_standin import SlackStandIn

SECRET = "s3cr3t-signing"


class _Recorder:
    """An endpoint that keeps the raw bytes and headers of every request it gets."""

    def __init__(self) -> None:
        self.requests: list[tuple[bytes, dict[str, str]]] = []
        self.app = Starlette(routes=[Route("/slack/events", self._endpoint, methods=["POST"])])

    async def _endpoint(self, request: Request) -> Response:
        self.requests.append((await request.body(), dict(request.headers)))
        return JSONResponse({"ok": True})


@pytest.fixture(scope="module")
def recorder() -> Iterator[tuple[_Recorder, ServerThread]]:
    rec = _Recorder()
    with ServerThread(rec.app) as srv:
        yield rec, srv


@pytest.fixture
def driver(recorder: tuple[_Recorder, ServerThread]) -> Iterator[SlackDriver]:
    recorder[0].requests.clear()
    with SlackDriver(f"{recorder[1].url}/slack/events", SECRET) as d:
        yield d


def _last(recorder: tuple[_Recorder, ServerThread]) -> tuple[bytes, dict[str, str]]:
    return recorder[0].requests[-1]


def _valid(secret: str, body: bytes, headers: dict[str, str]) -> bool:
    return SignatureVerifier(secret).is_valid(
        body=body, timestamp=headers["x-slack-request-timestamp"], signature=headers["x-slack-signature"]
    )


def test_command_is_form_encoded_and_signed(driver: SlackDriver, recorder) -> None:
    assert driver.command("How tides work --duration 60").status_code == 200
    body, headers = _last(recorder)
    assert headers["content-type"] == "application/x-www-form-urlencoded"
    assert _valid(SECRET, body, headers)
    assert not _valid("another-secret", body, headers)
    form = dict(parse_qsl(body.decode()))
    assert form["command"] == "/knowlify" and form["text"] == "How tides work --duration 60"
    assert (form["team_id"], form["channel_id"], form["user_id"]) == ("T0KN0W001", "C0DESIGN1", "U0ADA0001")
    assert form["response_url"].startswith("https://hooks.slack.com/commands/T0KN0W001/")
    driver.command("again")
    assert dict(parse_qsl(_last(recorder)[0].decode()))["trigger_id"] != form["trigger_id"]


def test_wrong_secret_and_stale_timestamp_do_not_verify(driver: SlackDriver, recorder) -> None:
    driver.command("x", sign_with="not-the-secret")
    assert not _valid(SECRET, *_last(recorder))
    driver.command("x", timestamp=int(time.time()) - 600)
    body, headers = _last(recorder)
    assert not _valid(SECRET, body, headers)
    assert (
        SignatureVerifier(SECRET).generate_signature(
            timestamp=headers["x-slack-request-timestamp"], body=body
        )
        == headers["x-slack-signature"]
    )  # correctly signed, only too old


def test_events_are_json_in_the_callback_envelope(driver: SlackDriver, recorder) -> None:
    resp, ts = driver.reply("Slow down scene 2", thread_ts="1767225600.000100", retry_num=1)
    body, headers = _last(recorder)
    assert resp.status_code == 200 and headers["content-type"] == "application/json"
    assert _valid(SECRET, body, headers)
    assert (headers["x-slack-retry-num"], headers["x-slack-retry-reason"]) == ("1", "http_timeout")
    env = json.loads(body)
    assert env["type"] == "event_callback" and env["event_id"].startswith("Ev")
    assert env["authorizations"][0]["user_id"] == "U0KN0WBOT"
    ev = env["event"]
    assert ev["ts"] == ts and float(ts) > 1767225600.0001 and ev["thread_ts"] == "1767225600.000100"
    assert (ev["type"], ev["channel"], ev["user"], ev["text"]) == (
        "message",
        "C0DESIGN1",
        "U0ADA0001",
        "Slow down scene 2",
    )
    assert "x-slack-retry-num" not in driver.reaction(ts, event_id="Ev0REVERT01").request.headers
    env = json.loads(_last(recorder)[0])
    assert env["event_id"] == "Ev0REVERT01"
    assert env["event"]["item"] == {"type": "message", "channel": "C0DESIGN1", "ts": ts}
    _, later = driver.reply("next", thread_ts="1767225600.000100")
    assert float(later) > float(ts)


def test_interactions_and_url_verification(driver: SlackDriver, recorder) -> None:
    driver.block_action("retry_create", "job-1", message_ts="1767225600.000100")
    body, headers = _last(recorder)
    assert _valid(SECRET, body, headers)
    payload = json.loads(dict(parse_qsl(body.decode()))["payload"])
    assert payload["type"] == "block_actions" and payload["actions"][0]["value"] == "job-1"
    driver.view_submission({"callback_id": "knowlify_create", "state": {"values": {"p": {}}}})
    payload = json.loads(dict(parse_qsl(_last(recorder)[0].decode()))["payload"])
    assert payload["view"]["callback_id"] == "knowlify_create" and payload["user"]["id"] == "U0ADA0001"
    driver.url_verification("c3VwZXI")
    assert json.loads(_last(recorder)[0])["challenge"] == "c3VwZXI"


# ---------------------------------------------------------------- against a real Bolt app


@pytest.fixture
def slack(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[SlackStandIn, ServerThread]]:
    for name in list(os.environ):
        if name.startswith("SLACK_"):
            monkeypatch.delenv(name)
    standin = SlackStandIn()
    with ServerThread(standin.app) as srv:
        yield standin, srv


def _bolt_app(standin_url: str) -> App:
    app = App(
        client=WebClient(token="xoxb-test-token", base_url=f"{standin_url}/api/"), signing_secret=SECRET
    )

    @app.command("/knowlify")
    def on_command(ack: Any, command: dict[str, Any], respond: Any) -> None:
        ack(f"Working on: {command['text']}")
        respond("Only you can see this")

    @app.event("message")
    def on_message(event: dict[str, Any], client: WebClient) -> None:
        client.chat_postMessage(channel=event["channel"], thread_ts=event["thread_ts"], text="Edit accepted")

    return app


def test_bolt_over_http_accepts_driver_requests(slack: tuple[SlackStandIn, ServerThread]) -> None:
    standin, slack_srv = slack
    handler = SlackRequestHandler(_bolt_app(slack_srv.url))

    async def endpoint(request: Request) -> Response:
        return await handler.handle(request)

    bot = Starlette(routes=[Route("/slack/events", endpoint, methods=["POST"])])
    with (
        ServerThread(bot) as bot_srv,
        SlackDriver(f"{bot_srv.url}/slack/events", SECRET, hooks_base=slack_srv.url) as driver,
    ):
        resp = driver.command("How tides work")
        assert (resp.status_code, resp.text) == (200, "Working on: How tides work")
        assert driver.command("x", sign_with="wrong").status_code == 401
        assert driver.command("x", timestamp=int(time.time()) - 400).status_code == 401
        assert driver.url_verification("abc").json() == {"challenge": "abc"}

        card = WebClient(token="xoxb-test-token", base_url=f"{slack_srv.url}/api/").chat_postMessage(
            channel="C0DESIGN1", text="Video: How tides work"
        )
        resp, _ = driver.reply("Slow down scene 2", thread_ts=card["ts"])
        assert resp.status_code == 200
        standin.wait_for(lambda c: c.method == "chat.postMessage" and "thread_ts" in c.args, timeout=5)
        standin.wait_for_hook(lambda h: h["body"].get("text") == "Only you can see this", timeout=5)
    assert standin.transcript() == (
        "#design (C0DESIGN1)\n"
        "  (only visible to @ada) @knowlify: Only you can see this\n"
        "  @knowlify: Video: How tides work\n"
        "      ↳ @ada: Slow down scene 2\n"
        "      ↳ @knowlify: Edit accepted\n"
    )


def test_bolt_socket_mode_handler_round_trip(slack: tuple[SlackStandIn, ServerThread]) -> None:
    standin, slack_srv = slack
    app = _bolt_app(slack_srv.url)
    handler = SocketModeHandler(app, app_token="xapp-test-token")
    driver = SlackDriver("http://unused.invalid/", SECRET, hooks_base=slack_srv.url)
    handler.connect()
    try:
        standin.wait_connected(timeout=5)
        ack = standin.send_envelope("slash_commands", driver.command_payload("tides"))
        assert ack["payload"] == {"text": "Working on: tides"}
        ev = driver.message_event("hi", thread_ts="1767225600.000100")
        standin.send_envelope("events_api", driver.envelope(ev))
        standin.wait_for(lambda c: c.method == "chat.postMessage", timeout=5)
        # Closing server-side first spares handler.close() its blocking 3 s socket read.
        standin.disconnect_socket(refuse_reconnect=True)
    finally:
        handler.close()
        driver.close()

"""The Slack stand-in, driven by a real slack_sdk WebClient / SocketModeClient over HTTP and websockets."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator

import httpx
import pytest
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_handlers import RateLimitErrorRetryHandler
from slack_sdk.socket_mode.builtin import SocketModeClient
from slack_sdk.socket_mode.request import SocketModeRequest
from slack_sdk.socket_mode.response import SocketModeResponse

from sandbox.servers import ServerThread
from sandbox.slack_standin import SlackStandIn

BOT_TOKEN = "xoxb-test-token"
APP_TOKEN = "xapp-test-token"


@pytest.fixture(scope="module")
def _served() -> Iterator[tuple[SlackStandIn, ServerThread]]:
    """One served stand-in per module; `reset()` between tests is much cheaper than a restart."""
    standin = SlackStandIn()
    with ServerThread(standin.app) as srv:
        yield standin, srv


@pytest.fixture
def standin(_served: tuple[SlackStandIn, ServerThread]) -> SlackStandIn:
    _served[0].reset()
    return _served[0]


@pytest.fixture
def server(_served: tuple[SlackStandIn, ServerThread], standin: SlackStandIn) -> ServerThread:
    return _served[1]


@pytest.fixture
def client(server: ServerThread) -> WebClient:
    return WebClient(token=BOT_TOKEN, base_url=f"{server.url}/api/")


def _error_of(call) -> str:
    with pytest.raises(SlackApiError) as info:
        call()
    return info.value.response["error"]


# ---------------------------------------------------------------- ServerThread


def test_server_thread_serves_on_a_free_port_and_stops() -> None:
    srv = ServerThread(SlackStandIn().app).start()
    assert srv.port > 0
    assert srv.url == f"http://127.0.0.1:{srv.port}"
    assert httpx.post(f"{srv.url}/hooks/x", json={"text": "hi"}).text == "ok"
    srv.stop()
    with pytest.raises(httpx.ConnectError):
        httpx.post(f"{srv.url}/hooks/x", json={})


# ---------------------------------------------------------------- Web API basics


def test_auth_test_returns_what_bolt_needs(client: WebClient) -> None:
    r = client.auth_test()
    assert r["ok"] is True
    assert r["user_id"] == "U0KN0WBOT"
    assert r["bot_id"] == "B0KN0WBOT"
    assert r["team_id"] == "T0KN0W001"
    assert r["team"] == "acme"
    assert r["url"] == "https://acme.slack.com/"
    assert r["is_enterprise_install"] is False


def test_bad_token_and_unknown_method(server: ServerThread, client: WebClient, standin: SlackStandIn) -> None:
    wrong = WebClient(token="xoxb-wrong", base_url=f"{server.url}/api/")
    assert _error_of(lambda: wrong.chat_postMessage(channel="C0DESIGN1", text="x")) == "invalid_auth"
    assert _error_of(lambda: client.api_call("chat.meMessage")) == "unknown_method"
    assert httpx.post(f"{server.url}/api/auth.test").json() == {"ok": False, "error": "invalid_auth"}
    # A token form field works as well as the Authorization header.
    assert httpx.post(f"{server.url}/api/auth.test", data={"token": BOT_TOKEN}).json()["ok"] is True
    assert [c.method for c in standin.calls] == [
        "chat.postMessage",
        "chat.meMessage",
        "auth.test",
        "auth.test",
    ]


def test_form_and_json_bodies_are_both_understood(client: WebClient, standin: SlackStandIn) -> None:
    blocks = [{"type": "section", "text": {"type": "mrkdwn", "text": "*hi*"}}]
    client.chat_postMessage(channel="C0DESIGN1", text="json", blocks=blocks, team_id="T0KN0W001")
    # api_call(params=...) goes form-encoded; blocks then arrive as a JSON string.
    client.api_call(
        "chat.postMessage", params={"channel": "C0DESIGN1", "text": "form", "blocks": json.dumps(blocks)}
    )
    first, second = standin.calls_of("chat.postMessage")
    assert first.args["team_id"] == "T0KN0W001"
    assert first.args["blocks"] == blocks == second.args["blocks"]
    assert "token" not in second.args
    assert [m["text"] for m in standin.messages()] == ["json", "form"]


@pytest.mark.filterwarnings("ignore:The top-level `text` argument")
def test_post_message_threads_and_transcript(client: WebClient, standin: SlackStandIn) -> None:
    card = client.chat_postMessage(channel="C0DESIGN1", text="Rendering *tides* for <@U0ADA0001>")
    r1 = client.chat_postMessage(channel="C0DESIGN1", thread_ts=card["ts"], text="Edit accepted")
    r2 = client.chat_postMessage(
        channel="C0DESIGN1",
        thread_ts=card["ts"],
        text="",
        blocks=[
            {"type": "section", "text": {"type": "mrkdwn", "text": "Done: <https://v.example/1|watch>"}},
            {"type": "context", "elements": [{"type": "mrkdwn", "text": "scene 2 changed"}]},
        ],
    )
    other = client.chat_postMessage(channel="C0DESIGN1", text="Second video")
    stamps = [card["ts"], r1["ts"], r2["ts"], other["ts"]]
    assert stamps == sorted(stamps, key=float) and len(set(stamps)) == 4
    assert all(len(ts.split(".")[1]) == 6 for ts in stamps)
    assert card["channel"] == "C0DESIGN1"
    assert card["message"]["user"] == "U0KN0WBOT" and card["message"]["bot_id"] == "B0KN0WBOT"
    assert r1["message"]["thread_ts"] == card["ts"]

    assert [m["text"] for m in standin.thread("C0DESIGN1", card["ts"])] == ["Edit accepted", ""]
    assert [m["ts"] for m in standin.messages("C0DESIGN1") if not m["thread_ts"]] == [card["ts"], other["ts"]]

    standin.observe_event(
        {"type": "message", "user": "U0BOB0002", "text": "Slow down", "channel": "C0DESIGN1",
         "ts": f"{float(other['ts']) + 1:.6f}", "thread_ts": card["ts"]}
    )  # fmt: skip
    assert standin.transcript() == (
        "#design (C0DESIGN1)\n"
        "  @knowlify: Rendering *tides* for @ada\n"
        "      ↳ @knowlify: Edit accepted\n"
        "      ↳ @knowlify: Done: watch (https://v.example/1)\n"
        "                   scene 2 changed\n"
        "      ↳ @bob: Slow down\n"
        "  @knowlify: Second video\n"
    )


def test_update_keeps_history_and_fails_after_delete(client: WebClient, standin: SlackStandIn) -> None:
    card = client.chat_postMessage(channel="C0DESIGN1", text="queued")
    client.chat_update(channel="C0DESIGN1", ts=card["ts"], text="rendering 40%")
    r = client.chat_update(channel="C0DESIGN1", ts=card["ts"], text="done", blocks=[{"type": "divider"}])
    assert r["ts"] == card["ts"] and r["message"]["text"] == "done"
    (msg,) = standin.messages("C0DESIGN1")
    assert msg["text"] == "done" and msg["blocks"] == [{"type": "divider"}]
    assert [u["text"] for u in msg["updates"]] == ["rendering 40%", "done"]

    standin.delete_message("C0DESIGN1", card["ts"])
    assert _error_of(lambda: client.chat_update(channel="C0DESIGN1", ts=card["ts"], text="x")) == (
        "message_not_found"
    )
    assert _error_of(lambda: client.chat_update(channel="C0DESIGN1", ts="1.000001", text="x")) == (
        "message_not_found"
    )


def test_conversations_join_semantics(client: WebClient, standin: SlackStandIn) -> None:
    standin.add_channel("C0RANDOM2", name="random", member=False)
    standin.add_channel("G0SECRET3", name="secret", private=True, member=False)

    member = client.conversations_join(channel="C0DESIGN1")
    assert member["warning"] == "already_in_channel"
    assert member["channel"]["id"] == "C0DESIGN1"

    assert _error_of(lambda: client.chat_postMessage(channel="C0RANDOM2", text="x")) == "not_in_channel"
    joined = client.conversations_join(channel="C0RANDOM2")
    assert "warning" not in joined and joined["channel"]["is_member"] is True
    assert client.chat_postMessage(channel="C0RANDOM2", text="now I can")["ok"]

    assert _error_of(lambda: client.conversations_join(channel="G0SECRET3")) == (
        "method_not_supported_for_channel_type"
    )
    assert _error_of(lambda: client.conversations_join(channel="C0NOPE000")) == "channel_not_found"


@pytest.mark.filterwarnings("ignore:The top-level `text` argument")
def test_membership_errors_for_posts_and_updates(client: WebClient, standin: SlackStandIn) -> None:
    standin.add_channel("C0PUBLIC4", member=False)
    standin.add_channel("G0PRIVATE5", private=True, member=False)
    assert _error_of(lambda: client.chat_postMessage(channel="C0PUBLIC4", text="x")) == "not_in_channel"
    assert _error_of(lambda: client.chat_postMessage(channel="G0PRIVATE5", text="x")) == "channel_not_found"
    assert _error_of(lambda: client.chat_update(channel="C0PUBLIC4", ts="1.1", text="x")) == "not_in_channel"
    assert _error_of(lambda: client.chat_postMessage(channel="C0UNKNOWN", text="x")) == "channel_not_found"
    assert _error_of(lambda: client.chat_postMessage(channel="C0DESIGN1")) == "no_text"


def test_users_info_admin_flags(client: WebClient, standin: SlackStandIn) -> None:
    standin.add_user("U0OWN0004", name="olive", is_owner=True)
    ada = client.users_info(user="U0ADA0001")["user"]
    assert (ada["name"], ada["is_admin"], ada["is_owner"], ada["is_bot"]) == ("ada", False, False, False)
    assert client.users_info(user="U0ADM0003")["user"]["is_admin"] is True
    assert client.users_info(user="U0OWN0004")["user"]["is_owner"] is True
    assert client.users_info(user="U0KN0WBOT")["user"]["is_bot"] is True
    assert _error_of(lambda: client.users_info(user="U0GHOST00")) == "user_not_found"


def test_ephemerals_reactions_and_views(client: WebClient, standin: SlackStandIn) -> None:
    card = client.chat_postMessage(channel="C0DESIGN1", text="card")
    r = client.chat_postEphemeral(channel="C0DESIGN1", user="U0BOB0002", text="Only ada may revert")
    assert r["message_ts"]
    (eph,) = standin.ephemerals("U0BOB0002")
    assert eph["text"] == "Only ada may revert" and standin.ephemerals("U0ADA0001") == []

    assert client.reactions_add(channel="C0DESIGN1", timestamp=card["ts"], name="eyes")["ok"]
    assert _error_of(
        lambda: client.reactions_add(channel="C0DESIGN1", timestamp=card["ts"], name="eyes")
    ) == ("already_reacted")

    view = {"type": "modal", "callback_id": "knowlify_create", "title": {"type": "plain_text", "text": "New"}}
    opened = client.views_open(trigger_id="5550001.1.abc", view=view)["view"]
    assert opened["callback_id"] == "knowlify_create" and opened["id"].startswith("V")
    updated = client.views_update(view_id=opened["id"], view={**view, "callback_id": "v2"})["view"]
    assert updated["id"] == opened["id"] and standin.views()[opened["id"]]["callback_id"] == "v2"
    assert _error_of(lambda: client.views_update(view_id="VNOPE", view=view)) == "not_found"
    assert _error_of(lambda: client.views_open(trigger_id="", view=view)) == "invalid_arguments"
    home = {"type": "home", "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": "hi"}}]}
    client.views_publish(user_id="U0ADA0001", view=home)
    assert standin.home_view("U0ADA0001")["blocks"] == home["blocks"]

    assert "(only visible to @bob) @knowlify: Only ada may revert" in standin.transcript()


# ---------------------------------------------------------------- fault injection


def test_injected_error_is_answered_and_recorded(client: WebClient, standin: SlackStandIn) -> None:
    standin.inject("chat.postMessage", error="not_in_channel", times=2)
    for _ in range(2):
        assert _error_of(lambda: client.chat_postMessage(channel="C0DESIGN1", text="x")) == "not_in_channel"
    assert client.chat_postMessage(channel="C0DESIGN1", text="x")["ok"]
    assert [c.response["ok"] for c in standin.calls_of("chat.postMessage")] == [False, False, True]
    assert len(standin.messages()) == 1


def test_injected_429_is_retried_by_slack_sdk(client: WebClient, standin: SlackStandIn) -> None:
    standin.inject("chat.update", status=429, retry_after=1)
    card = client.chat_postMessage(channel="C0DESIGN1", text="queued")
    client.retry_handlers.append(RateLimitErrorRetryHandler(max_retry_count=1))
    started = time.monotonic()
    assert client.chat_update(channel="C0DESIGN1", ts=card["ts"], text="rendering")["ok"]
    assert time.monotonic() - started >= 1.0
    limited, passed = standin.calls_of("chat.update")
    assert (limited.status, limited.response) == (429, {"ok": False, "error": "ratelimited"})
    assert passed.status == 200 and passed.response["ok"] is True


def test_injected_429_without_retry_handler_surfaces(client: WebClient, standin: SlackStandIn) -> None:
    standin.inject("users.info", status=429, retry_after=7)
    with pytest.raises(SlackApiError) as info:
        client.users_info(user="U0ADA0001")
    assert info.value.response.status_code == 429
    assert info.value.response.headers["Retry-After"] == "7"


# ---------------------------------------------------------------- recorder


def test_wait_for_sees_calls_made_from_another_thread(client: WebClient, standin: SlackStandIn) -> None:
    worker = threading.Thread(
        target=lambda: [client.chat_postMessage(channel="C0DESIGN1", text=f"m{i}") for i in range(3)]
    )
    worker.start()
    got = standin.wait_for(lambda c: c.method == "chat.postMessage", count=3, timeout=5)
    worker.join()
    assert [c.args["text"] for c in got] == ["m0", "m1", "m2"]
    # Predicates may read the stand-in's state while waiting (the lock is re-entrant).
    assert standin.wait_for(lambda c: len(standin.messages()) == 3, timeout=1)


def test_wait_for_times_out_with_a_useful_message(client: WebClient, standin: SlackStandIn) -> None:
    client.auth_test()

    def card_posted(call) -> bool:
        return call.method == "chat.postMessage"

    with pytest.raises(TimeoutError, match=r"card_posted.*auth\.test×1"):
        standin.wait_for(card_posted, timeout=0.05)
    with pytest.raises(TimeoutError, match="response_url"):
        standin.wait_for_hook(lambda h: True, timeout=0.05)


def test_response_url_hooks(server: ServerThread, standin: SlackStandIn) -> None:
    url = f"{server.url}/hooks/commands/T0KN0W001/5550001/q1w2e3"
    standin.observe_command({"response_url": url, "channel_id": "C0DESIGN1", "user_id": "U0ADA0001"})
    r = httpx.post(url, json={"text": "Usage: /knowlify <prompt>", "response_type": "ephemeral"})
    assert (r.status_code, r.text) == (200, "ok")
    (hook,) = standin.wait_for_hook(lambda h: "Usage" in h["body"]["text"], timeout=5)
    assert hook["path"] == "/hooks/commands/T0KN0W001/5550001/q1w2e3"
    assert (hook["channel"], hook["user"]) == ("C0DESIGN1", "U0ADA0001")
    httpx.post(f"{server.url}/hooks/commands/T0KN0W001/9/zz", json={"text": "stray"})
    assert [h["body"]["text"] for h in standin.hooks()] == ["Usage: /knowlify <prompt>", "stray"]
    assert standin.transcript() == (
        "#design (C0DESIGN1)\n"
        "  (only visible to @ada) @knowlify: Usage: /knowlify <prompt>\n"
        "\n"
        "response_url posts (channel unknown)\n"
        "  (only visible to @someone) @knowlify: stray\n"
    )


# ---------------------------------------------------------------- Socket Mode


def test_apps_connections_open_needs_the_app_token(server: ServerThread, client: WebClient) -> None:
    assert client.apps_connections_open(app_token=APP_TOKEN)["url"] == f"ws://127.0.0.1:{server.port}/link"
    assert _error_of(lambda: client.apps_connections_open(app_token=BOT_TOKEN)) == "not_allowed_token_type"
    app_client = WebClient(token=APP_TOKEN, base_url=f"{server.url}/api/")
    assert _error_of(app_client.auth_test) == "not_allowed_token_type"


def test_socket_mode_hello_envelope_and_ack(client: WebClient, standin: SlackStandIn) -> None:
    raw_messages: list[str] = []
    requests: list[SocketModeRequest] = []

    def listener(sm: SocketModeClient, req: SocketModeRequest) -> None:
        if req.payload.get("ignore_me"):  # lets the test see what an unacknowledged delivery does
            return
        requests.append(req)
        payload = {"text": "Got it"} if req.type == "slash_commands" else None
        sm.send_socket_mode_response(SocketModeResponse(envelope_id=req.envelope_id, payload=payload))

    sm = SocketModeClient(app_token=APP_TOKEN, web_client=client, on_message_listeners=[raw_messages.append])
    sm.socket_mode_request_listeners.append(listener)
    try:
        sm.connect()
        standin.wait_connected(timeout=5)
        assert standin.socket_connected()

        ack = standin.send_envelope("slash_commands", {"command": "/knowlify", "text": "tides"})
        assert ack["payload"] == {"text": "Got it"}
        ack2 = standin.send_envelope(
            "events_api", {"type": "event_callback", "event": {"type": "reaction_added"}},
            retry_attempt=1, retry_reason="timeout",
        )  # fmt: skip
        assert "payload" not in ack2

        hello = json.loads(raw_messages[0])
        assert hello["type"] == "hello" and hello["connection_info"] == {"app_id": "A0KN0WAPP"}
        assert hello["num_connections"] == 1 and "debug_info" in hello
        assert [r.type for r in requests] == ["slash_commands", "events_api"]
        assert requests[0].accepts_response_payload is True
        assert (requests[1].retry_attempt, requests[1].retry_reason) == (1, "timeout")
        assert [c.args["envelope_id"] for c in standin.calls_of("socket.ack")] == [
            ack["envelope_id"],
            ack2["envelope_id"],
        ]

        with pytest.raises(TimeoutError, match="no ack for events_api"):
            standin.send_envelope("events_api", {"ignore_me": True}, timeout=0.2)

        # Closing from the server side first also spares sm.close() its 3 s blocking recv.
        standin.disconnect_socket(refuse_reconnect=True)
        assert not standin.socket_connected()
        with pytest.raises(RuntimeError, match="no Socket Mode client"):
            standin.send_envelope("events_api", {})
    finally:
        sm.close()


def test_set_latency_slows_only_that_method(standin: SlackStandIn, client: WebClient) -> None:
    standin.set_latency("views.open", 0.3)
    t0 = time.monotonic()
    client.auth_test()
    fast = time.monotonic() - t0
    t0 = time.monotonic()
    client.views_open(
        trigger_id="t", view={"type": "modal", "title": {"type": "plain_text", "text": "x"}, "blocks": []}
    )
    slow = time.monotonic() - t0
    assert slow >= 0.3 > fast

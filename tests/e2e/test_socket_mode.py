"""`knowlify-slack socket`: the same listeners over Socket Mode, and a health check that follows the socket."""

from __future__ import annotations

import socket

import httpx
import pytest

from bot.runtime import Runtime
from bot.socket_mode import health_server, make_handler
from sandbox.stack import LocalStack, StackConfig
from tests.helpers import posted, wait_until


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def socket_stack():
    stack = LocalStack(
        StackConfig(stage_seconds=0.15, poll_seconds=0.05, tick_seconds=0.02, window_seconds=1.0)
    )
    stack.start(bot=False)
    runtime = Runtime(stack.settings(slack_signing_secret=None), socket_mode=True)
    handler = make_handler(runtime)
    handler.connect()
    stack.slack.wait_connected(timeout=10)
    runtime.start_worker()
    port = free_port()
    server = health_server(handler, port, host="127.0.0.1")
    try:
        yield stack, runtime, f"http://127.0.0.1:{port}/healthz"
    finally:
        server.shutdown()
        stack.slack.disconnect_socket(refuse_reconnect=True)
        handler.close()
        runtime.stop()
        stack.stop()


def test_command_over_socket_mode_is_acked_and_the_video_arrives(socket_stack):
    stack, _, _ = socket_stack
    payload = stack.driver_payloads().command_payload("Explain how HTTPS works --duration 60")
    ack = stack.slack.send_envelope("slash_commands", payload)
    assert "Explain how HTTPS works" in str(ack.get("payload", {}))
    stack.slack.wait_for(posted("Your video is ready", thread=True), timeout=20)
    assert stack.sim.count("POST", "/v1/videos") == 1


def test_thread_reply_over_socket_mode_becomes_an_edit(socket_stack):
    stack, runtime, _ = socket_stack
    builder = stack.driver_payloads()
    stack.slack.send_envelope("slash_commands", builder.command_payload("Explain tides"))
    stack.slack.wait_for(posted("Your video is ready", thread=True), timeout=20)
    thread = wait_until(
        lambda: runtime.store.recent_videos("T0KN0W001", "C0DESIGN1")[0].card_ts, what="card ts"
    )
    event = builder.message_event("Make scene 2 more dramatic", thread_ts=thread)
    stack.slack.send_envelope("events_api", builder.envelope(event))
    stack.slack.wait_for(posted("Edit applied", thread=True), timeout=20)
    assert stack.sim.count("POST", "/v1/edits") == 1


def test_health_follows_the_socket(socket_stack):
    stack, _, health = socket_stack
    assert httpx.get(health).status_code == 200
    stack.slack.disconnect_socket(refuse_reconnect=True)
    wait_until(
        lambda: httpx.get(health).status_code == 503, timeout=10, what="health to report the lost socket"
    )
    stack.slack.allow_reconnect()
    wait_until(lambda: httpx.get(health).status_code == 200, timeout=20, what="reconnect")

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
    server = health_server(handler, port, host="127.0.0.1", probes=runtime.probes)
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
    ready = health.replace("/healthz", "/readyz")
    assert httpx.get(health).status_code == 200
    assert httpx.get(ready).status_code == 200
    stack.slack.disconnect_socket(refuse_reconnect=True)
    wait_until(
        lambda: httpx.get(health).status_code == 503, timeout=10, what="health to report the lost socket"
    )
    assert httpx.get(ready).status_code == 503
    assert httpx.get(ready).json()["status"] == "socket not connected"
    stack.slack.allow_reconnect()
    wait_until(lambda: httpx.get(health).status_code == 200, timeout=20, what="reconnect")
    assert httpx.get(ready).status_code == 200


def test_socket_command_runs_connects_reports_health_and_stops_on_sigterm(tmp_path):
    """`knowlify-slack socket --health-port P` as an operator runs it: the CLI, not the fixture."""
    import signal
    import subprocess
    import sys

    stack = LocalStack(
        StackConfig(stage_seconds=0.15, poll_seconds=0.05, tick_seconds=0.02, window_seconds=1.0)
    )
    stack.start(bot=False)
    port = free_port()
    env = stack.bot_env()
    env.pop("SLACK_SIGNING_SECRET")  # Socket Mode needs none
    log = open(tmp_path / "socket.log", "wb")  # noqa: SIM115
    proc = subprocess.Popen(
        [sys.executable, "-m", "bot.cli", "socket", "--health-port", str(port)],
        env=env,
        cwd=tmp_path,
        stdout=log,
        stderr=log,
    )
    try:
        stack.slack.wait_connected(timeout=20)
        health = f"http://127.0.0.1:{port}/healthz"
        wait_until(lambda: _status(health) == 200, timeout=10, what="health 200")
        assert _listening_on(port) == {"127.0.0.1"}, "the health server is reachable only from this machine"
        ack = stack.slack.send_envelope(
            "slash_commands", stack.driver_payloads().command_payload("Explain tides")
        )
        assert "Explain tides" in str(ack.get("payload", {}))
        stack.slack.wait_for(posted("Your video is ready", thread=True), timeout=20)
        assert _status(f"http://127.0.0.1:{port}/readyz") == 200
        metrics = httpx.get(f"http://127.0.0.1:{port}/metrics").text
        assert 'knowlify_slack_commands_received_total{kind="create"} 1.0' in metrics
        assert 'knowlify_slack_acks_total{outcome="ok"} 1.0' in metrics
        assert "knowlify_slack_link_lag_seconds_count 1.0" in metrics
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0
        assert b"Traceback" not in (tmp_path / "socket.log").read_bytes()
    finally:
        if proc.poll() is None:
            proc.kill()
        log.close()
        stack.slack.disconnect_socket(refuse_reconnect=True)
        stack.stop()


def _listening_on(port: int) -> set[str]:
    """The IPv4 addresses a socket listens on at `port`, read from the kernel's table."""
    import socket
    import struct
    from pathlib import Path

    found = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        local, state = line.split()[1], line.split()[3]
        address, _, hex_port = local.partition(":")
        if state == "0A" and int(hex_port, 16) == port:  # 0A: LISTEN
            found.add(socket.inet_ntoa(struct.pack("<I", int(address, 16))))
    return found


def _status(url: str) -> int:
    try:
        return httpx.get(url, timeout=1).status_code
    except httpx.HTTPError:
        return 0

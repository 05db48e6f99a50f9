"""Socket Mode: no public URL; Slack pushes over a websocket opened with the xapp- token.

With --health-port, `GET /healthz` answers 200 only while the socket is connected, so an
orchestrator restarts a bot that lost Slack; `GET /readyz` also needs the database, and
`GET /metrics` is the bot's Prometheus text (bot.health). The server binds 127.0.0.1 unless
--health-host says otherwise: Socket Mode needs no inbound port, so nothing is exposed beyond the
machine by default.
"""

from __future__ import annotations

import json
import logging
import signal
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from slack_bolt.adapter.socket_mode import SocketModeHandler

from bot.health import Probes
from bot.metrics import CONTENT_TYPE
from bot.runtime import Runtime

log = logging.getLogger(__name__)


def make_handler(runtime: Runtime) -> SocketModeHandler:
    return SocketModeHandler(runtime.app, runtime.settings.secret("slack_app_token"))


DEFAULT_HEALTH_HOST = "127.0.0.1"


def health_server(
    handler: SocketModeHandler, port: int, host: str = DEFAULT_HEALTH_HOST, probes: Probes | None = None
) -> ThreadingHTTPServer:
    if probes is not None:
        probes.socket_connected = lambda: bool(handler.client.is_connected())

    class Health(BaseHTTPRequestHandler):
        def answer(self, status: int, body: bytes, content_type: str = "application/json") -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0].rstrip("/")
            if probes is not None and path == "/readyz":
                ready, reason = probes.ready()
                self.answer(200 if ready else 503, json.dumps({"ok": ready, "status": reason}).encode())
                return
            if probes is not None and path == "/metrics":
                self.answer(200, probes.metrics(), CONTENT_TYPE)
                return
            if path != "/healthz":
                self.send_response(404)
                self.end_headers()
                return
            connected = bool(handler.client.is_connected())
            self.send_response(200 if connected else 503)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(
                b'{"ok": true}' if connected else b'{"ok": false, "error": "socket not connected"}'
            )

        def log_message(self, *_: object) -> None:
            return

    server = ThreadingHTTPServer((host, port), Health)
    threading.Thread(target=server.serve_forever, name="healthz", daemon=True).start()
    return server


def _stop_on_sigterm(*_: object) -> None:
    """An orchestrator's SIGTERM stops the bot like Ctrl-C: the worker hands its rows back."""
    raise KeyboardInterrupt


def run_socket(runtime: Runtime, health_port: int | None, health_host: str = DEFAULT_HEALTH_HOST) -> None:
    signal.signal(signal.SIGTERM, _stop_on_sigterm)
    handler = make_handler(runtime)
    runtime.start_worker()
    server = (
        health_server(handler, health_port, health_host, probes=runtime.probes) if health_port else None
    )
    try:
        handler.start()  # blocks until interrupted
    except KeyboardInterrupt:
        log.info("stopping")
    finally:
        if server:
            server.shutdown()
        handler.close()
        runtime.stop()

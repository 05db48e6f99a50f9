"""HTTP mode: `POST /slack/events` for commands, events and interactivity; `GET /healthz`, `/readyz`
and `/metrics` (bot.health).

Bolt's sync `App.dispatch` blocks until `ack()`; the stock Starlette adapter runs it on the event
loop, so one slow request would hold up every other. Here each dispatch runs in the thread pool.

Slack retries anything but a 2xx, so a signed request the bot cannot or will not handle (malformed
JSON, an event type nobody listens to) is logged and answered 200; an unsigned or stale one 401.
"""

from __future__ import annotations

import logging

from slack_bolt import App, BoltResponse
from slack_bolt.adapter.starlette.handler import to_bolt_request, to_starlette_response
from slack_sdk.signature import SignatureVerifier
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from bot.health import Probes
from bot.metrics import CONTENT_TYPE

log = logging.getLogger(__name__)


def create_http_app(app: App, signing_secret: str, probes: Probes | None = None) -> Starlette:
    verifier = SignatureVerifier(signing_secret)

    def signed(request: Request, body: bytes) -> bool:
        return verifier.is_valid(
            body=body,
            timestamp=request.headers.get("x-slack-request-timestamp", ""),
            signature=request.headers.get("x-slack-signature", ""),
        )

    async def events(request: Request) -> Response:
        body = await request.body()
        try:
            bolt_response: BoltResponse = await run_in_threadpool(
                app.dispatch, to_bolt_request(request, body)
            )
        except Exception as exc:
            if not signed(request, body):
                return Response(status_code=401)
            log.warning("malformed Slack request ignored: %s", type(exc).__name__)
            return Response(status_code=200)
        if bolt_response.status in (404, 500):
            # 404: nothing listens to it; 500: Bolt failed before any listener. Either way a retry
            # would fail the same way, and Slack disables apps whose deliveries keep failing.
            # (503 passes through: the listeners' error handler asks for a redelivery with it.)
            if not signed(request, body):
                return Response(status_code=401)
            log.info("Slack request answered 200 instead of %s: not handled", bolt_response.status)
            return Response(status_code=200)
        return to_starlette_response(bolt_response)

    async def healthz(_: Request) -> Response:
        return JSONResponse({"ok": True})

    routes = [Route("/slack/events", events, methods=["POST"]), Route("/healthz", healthz)]
    if probes is not None:
        routes += ops_routes(probes)
    return Starlette(routes=routes)


def ops_routes(probes: Probes) -> list[Route]:
    async def readyz(_: Request) -> Response:
        ready, reason = await run_in_threadpool(probes.ready)
        return JSONResponse({"ok": ready, "status": reason}, status_code=200 if ready else 503)

    async def metrics(_: Request) -> Response:
        body = await run_in_threadpool(probes.metrics)
        return Response(body, media_type=CONTENT_TYPE)

    return [Route("/readyz", readyz), Route("/metrics", metrics)]

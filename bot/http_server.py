"""HTTP mode: `POST /slack/events` for commands, events and interactivity; `GET /healthz`, `/readyz`
and `/metrics` (bot.health).

What a request may cost before the bot knows it comes from Slack is bounded here, in this order:
  1. `BodyLimit` (ASGI middleware): a body over MAX_BODY_BYTES is answered 413 without being read
     whole — refused on its `Content-Length`, or cut off once a chunked stream passes the limit.
  2. `slack_signature_ok`: the signature is checked on the raw bytes before anything decodes or
     parses them; a request that cannot be verified gets 401, whatever its headers hold.
  3. Only then is the body decoded and handed to Bolt. A signed body that is not UTF-8, not JSON
     or not a form is answered 200 (a retry would fail the same way) and never logged.

Bolt's sync `App.dispatch` blocks until `ack()`; the stock Starlette adapter runs it on the event
loop, so one slow request would hold up every other. Here each dispatch runs in the thread pool.

Slack retries anything but a 2xx, so a signed request the bot cannot or will not handle (malformed
JSON, an event type nobody listens to) is logged and answered 200.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import time
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager

import anyio.to_thread
from slack_bolt import App, BoltResponse
from slack_bolt.adapter.starlette.handler import to_bolt_request, to_starlette_response
from slack_bolt.oauth.oauth_flow import OAuthFlow
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from bot.acks_first import REQUESTS
from bot.health import Probes
from bot.metrics import CONTENT_TYPE

log = logging.getLogger(__name__)

# Slack's largest payloads (a modal submission with every block) are tens of kilobytes.
MAX_BODY_BYTES = 1024 * 1024
# Slack's rule: a request whose timestamp is more than five minutes away from now is a replay.
MAX_CLOCK_SKEW_SECONDS = 5 * 60


class _BodyTooLarge(Exception):
    """Raised inside `receive` once a streamed body passes the limit; BodyLimit turns it into 413."""


class BodyLimit:
    """Refuse any request body over `max_bytes` with 413 and close the connection.

    A declared `Content-Length` over the limit is refused before a byte of the body is read; a
    chunked (or under-declared) body is counted as it streams in and refused the moment it passes
    the limit, so at most `max_bytes` plus one chunk is ever held. `Connection: close` makes the
    server drop the rest of the upload instead of draining it.
    """

    def __init__(self, app: ASGIApp, max_bytes: int = MAX_BODY_BYTES) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if _declared_length(scope) > self.max_bytes:
            await self._refuse(scope, send)
            return
        received = 0
        started = False

        async def counted_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise _BodyTooLarge
            return message

        async def tracked_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counted_receive, tracked_send)
        except _BodyTooLarge:
            if not started:
                await self._refuse(scope, send)

    async def _refuse(self, scope: Scope, send: Send) -> None:
        log.warning("request body over %d bytes refused with 413", self.max_bytes)
        response = JSONResponse(
            {"error": "request body too large"}, status_code=413, headers={"Connection": "close"}
        )
        await response(scope, _no_body, send)


async def _no_body() -> Message:
    return {"type": "http.disconnect"}


def _declared_length(scope: Scope) -> int:
    """The Content-Length header as a number (0 when absent; the server already rejects a malformed one)."""
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return 0
    return 0


def slack_signature(signing_secret: str, timestamp: str, body: bytes) -> str:
    """Slack's v0 signature: HMAC-SHA256 over `v0:{timestamp}:` and the raw body bytes.

    Computed here on bytes because slack_sdk's SignatureVerifier decodes the body as UTF-8 first
    and raises on anything else, which would turn a garbage body into a 500.
    """
    mac = hmac.new(signing_secret.encode(), b"v0:" + timestamp.encode() + b":" + body, hashlib.sha256)
    return "v0=" + mac.hexdigest()


def slack_signature_ok(
    signing_secret: str, headers: Mapping[str, str], body: bytes, now: float | None = None
) -> bool:
    """True only for a request Slack signed within the last five minutes.

    Every malformed header (missing, empty, non-numeric or absurdly long timestamp; missing or
    garbage signature) is simply False: the caller answers 401, never an exception.
    """
    timestamp = headers.get("x-slack-request-timestamp") or ""
    signature = headers.get("x-slack-signature") or ""
    # isdigit() alone accepts other scripts' digits and int() accepts "1_700"; Slack sends ASCII seconds.
    if not signature or not (timestamp.isascii() and timestamp.isdigit() and len(timestamp) <= 12):
        return False
    if abs((time.time() if now is None else now) - int(timestamp)) > MAX_CLOCK_SKEW_SECONDS:
        return False
    expected = slack_signature(signing_secret, timestamp, body)
    return hmac.compare_digest(expected.encode(), signature.encode("utf-8", "replace"))


def create_http_app(
    app: App, signing_secret: str, probes: Probes | None = None, max_body_bytes: int = MAX_BODY_BYTES
) -> Starlette:
    async def events(request: Request) -> Response:
        with REQUESTS.answering():  # the worker steps aside meanwhile (bot.acks_first)
            return await answer(request)

    async def answer(request: Request) -> Response:
        body = await request.body()  # at most max_body_bytes: BodyLimit refuses anything larger
        if not slack_signature_ok(signing_secret, request.headers, body):
            log.info("Slack request refused with 401: missing, stale or wrong signature")
            return JSONResponse({"error": "invalid request"}, status_code=401)
        try:
            bolt_request = to_bolt_request(request, body)  # decodes and parses: only signed bytes get here
            bolt_response: BoltResponse = await run_in_threadpool(app.dispatch, bolt_request)
        except Exception as exc:
            # Not UTF-8, not JSON, not a form: Slack would only retry it, so answer 200 and say
            # what kind of failure it was (the body itself is never logged).
            log.warning("malformed Slack request ignored: %s", type(exc).__name__)
            return Response(status_code=200)
        if bolt_response.status in (404, 500):
            # 404: nothing listens to it; 500: Bolt failed before any listener. Either way a retry
            # would fail the same way, and Slack disables apps whose deliveries keep failing.
            # (503 passes through: the listeners' error handler asks for a redelivery with it.)
            log.info("Slack request answered 200 instead of %s: not handled", bolt_response.status)
            return Response(status_code=200)
        return to_starlette_response(bolt_response)

    async def healthz(_: Request) -> Response:
        return JSONResponse({"ok": True})

    routes = [Route("/slack/events", events, methods=["POST"]), Route("/healthz", healthz)]
    if app.oauth_flow is not None:
        routes += install_routes(app.oauth_flow)
    if probes is not None:
        routes += ops_routes(probes)
    return Starlette(
        routes=routes,
        middleware=[Middleware(BodyLimit, max_bytes=max_body_bytes)],
        lifespan=_more_listener_threads,
    )


# Listeners run in AnyIO's thread pool, 40 threads unless told otherwise. A `/knowlify` listener
# waits there for the commit of its job row (storage.group_commit); with 40 threads, a burst of 50
# commands leaves 10 waiting for a thread until the first batch is committed, and so for a second
# commit. Waiting threads cost no CPU; 200 covers any burst Slack sends one app at once.
LISTENER_THREADS = 200


@asynccontextmanager
async def _more_listener_threads(_app: Starlette) -> AsyncIterator[None]:
    anyio.to_thread.current_default_thread_limiter().total_tokens = LISTENER_THREADS
    yield


def install_routes(flow: OAuthFlow) -> list[Route]:
    """Several workspaces: `GET /slack/install` (302 to Slack's authorize page with a single-use
    state) and `GET /slack/oauth_redirect` (state checked, code exchanged, installation stored)."""

    async def install(request: Request) -> Response:
        bolt_response = await run_in_threadpool(flow.handle_installation, to_bolt_request(request, b""))
        return to_starlette_response(bolt_response)

    async def oauth_redirect(request: Request) -> Response:
        bolt_response = await run_in_threadpool(flow.handle_callback, to_bolt_request(request, b""))
        return to_starlette_response(bolt_response)

    return [
        Route(flow.install_path, install, methods=["GET"]),
        Route(flow.redirect_uri_path, oauth_redirect, methods=["GET"]),
    ]


def ops_routes(probes: Probes) -> list[Route]:
    async def readyz(_: Request) -> Response:
        ready, reason = await run_in_threadpool(probes.ready)
        return JSONResponse({"ok": ready, "status": reason}, status_code=200 if ready else 503)

    async def metrics(_: Request) -> Response:
        body = await run_in_threadpool(probes.metrics)
        return Response(body, media_type=CONTENT_TYPE)

    return [Route("/readyz", readyz), Route("/metrics", metrics)]

"""Knowlify v1 HTTP client: one method per endpoint, one HTTP attempt per call, no sleeping.

Every call first takes a slot from the :class:`~bot.knowlify.budget.Budget` (POSTs as ``"action"``,
GETs as ``"poll"``), then sends exactly one request. Anything that is not a usable answer becomes a
:class:`~bot.knowlify.errors.KnowlifyError` subclass; the worker decides when to try again with
the one retry policy, :func:`bot.core.retry.retry`.

Transport failures: a connect error or connect/pool timeout means nothing was sent → ``Unreachable``.
Any later failure (read/write timeout, dropped connection) is ``OutcomeUnknown`` for a POST, but
``Unreachable`` for a GET: a GET changes nothing, so "maybe processed" and "not processed" call for the
same reaction (poll again later).
"""

from __future__ import annotations

import logging
import time
from typing import Any, TypeVar
from urllib.parse import quote

import httpx
from pydantic import BaseModel, ValidationError

from bot import metrics
from bot.knowlify.budget import Budget, bucket_for, key_fingerprint
from bot.knowlify.errors import (
    KnowlifyError,
    MalformedResponse,
    OutcomeUnknown,
    RateLimited,
    ServerError,
    Unreachable,
    detail_text,
    header,
    parse_seconds,
    rate_limit_wait,
    redact,
)
from bot.knowlify.models import (
    CreatedItem,
    CreateVideosResponse,
    EditAccepted,
    EditStatus,
    VideoSpec,
    VideoStatus,
)

logger = logging.getLogger(__name__)

MAX_BATCH = 50
_DETAIL_LIMIT = 500
_M = TypeVar("_M", bound=BaseModel)

# Failures raised before a single byte of the request could reach Knowlify.
_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout, httpx.ProxyError)
# Our own bug (bad URL or header); repeating cannot help.
_INVALID_REQUEST = (httpx.UnsupportedProtocol, httpx.LocalProtocolError)


class KnowlifyClient:
    """Typed access to the five API-key endpoints of Knowlify v1 for one API key."""

    def __init__(
        self,
        api_key: str,
        base_url: str,
        budget: Budget,
        *,
        transport: httpx.BaseTransport | None = None,
        timeout: float = 15.0,
        connect_timeout: float = 5.0,
    ) -> None:
        raw_key, api_key = api_key, api_key.strip()  # a trailing newline from a secrets file is common
        if not api_key:
            raise ValueError("Knowlify API key is empty")
        if budget.key_id not in (key_fingerprint(api_key), key_fingerprint(raw_key)):
            # A shared budget keyed to another workspace's key would pace the wrong pool.
            raise ValueError("budget.key_id is not the fingerprint of this API key")
        self._api_key = api_key
        self._budget = budget
        self._http = httpx.Client(
            base_url=base_url,
            headers={"X-API-Key": api_key, "Accept": "application/json"},
            timeout=httpx.Timeout(timeout, connect=connect_timeout),
            transport=transport,
            follow_redirects=False,
        )

    def __repr__(self) -> str:
        return f"KnowlifyClient(base_url={str(self._http.base_url)!r}, key_id={self._budget.key_id!r})"

    def __enter__(self) -> KnowlifyClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    # -- endpoints ---------------------------------------------------------------------------------

    def create_videos(self, specs: list[VideoSpec]) -> CreateVideosResponse:
        """Queue 1–50 videos. Not replay-safe: a lost answer raises ``OutcomeUnknown``."""
        if not 1 <= len(specs) <= MAX_BATCH:
            raise ValueError(f"a batch holds 1–{MAX_BATCH} videos, got {len(specs)}")
        payload = {"videos": [spec.to_payload() for spec in specs]}
        response = self._send("POST", "/v1/videos", purpose="action", json=payload, replay_safe=False)
        return self._parse(CreateVideosResponse, response, "/v1/videos", replay_safe=False)

    def create_video(self, spec: VideoSpec) -> CreatedItem:
        """Queue one video; a per-item ``status: "error"`` row is returned, not raised."""
        batch = self.create_videos([spec])
        for item in batch.results:
            if item.index == 0:
                return item
        if batch.results:
            return batch.results[0]
        raise MalformedResponse(200, "answer has no result row", method="POST", path="/v1/videos")

    def get_video(self, uuid: str) -> VideoStatus:
        path = f"/v1/videos/{_segment(uuid)}"
        response = self._send("GET", path, purpose="poll", replay_safe=True)
        return self._parse(VideoStatus, response, path, replay_safe=True)

    def create_edit(
        self,
        video_uuid: str,
        edit_request: str,
        *,
        idempotency_key: str,
        reference_image_urls: list[str] | None = None,
        aspect_ratio: str | None = None,
    ) -> EditAccepted:
        """Submit an edit. Replay-safe: the same ``idempotency_key`` within 24 h creates nothing new."""
        if not idempotency_key:
            raise ValueError("idempotency_key is required: a retried edit must not run twice")
        payload: dict[str, Any] = {"video_uuid": video_uuid, "edit_request": edit_request}
        if reference_image_urls is not None:
            payload["reference_image_urls"] = reference_image_urls
        if aspect_ratio is not None:
            payload["aspect_ratio"] = aspect_ratio
        response = self._send(
            "POST",
            "/v1/edits",
            purpose="action",
            json=payload,
            headers={"Idempotency-Key": idempotency_key},
            replay_safe=True,
        )
        return self._parse(EditAccepted, response, "/v1/edits", replay_safe=True)

    def get_edit(self, edit_id: str) -> EditStatus:
        path = f"/v1/edits/{_segment(edit_id)}"
        response = self._send("GET", path, purpose="poll", replay_safe=True)
        return self._parse(EditStatus, response, path, replay_safe=True)

    def revert_edit(self, edit_id: str) -> EditStatus:
        """Undo a completed edit. Not marked replay-safe: a repeat after a lost answer gets a 409
        ``edit is not in a revertable state (status=reverted)``, which the caller must interpret."""
        path = f"/v1/edits/{_segment(edit_id)}/revert"
        response = self._send("POST", path, purpose="action", replay_safe=False)
        return self._parse(EditStatus, response, path, replay_safe=False)

    # -- plumbing ----------------------------------------------------------------------------------

    def _send(
        self,
        method: str,
        path: str,
        *,
        purpose: str,
        replay_safe: bool,
        json: Any = None,
        headers: dict[str, str] | None = None,
    ) -> httpx.Response:
        bucket = bucket_for(method, path)
        self._budget.acquire(bucket, purpose)
        started = time.monotonic()
        try:
            response = self._http.request(method, path, json=json, headers=headers)
        except httpx.TransportError as exc:
            elapsed_ms = (time.monotonic() - started) * 1000
            failure = type(exc).__name__
            metrics.knowlify_request(
                bucket, method, "not_sent" if isinstance(exc, _NOT_SENT) else "no_answer", elapsed_ms / 1000
            )
            logger.debug("knowlify %s %s failed: %s after %.0f ms", method, path, failure, elapsed_ms)
            raise self._transport_error(exc, method, path, replay_safe) from exc
        elapsed_ms = (time.monotonic() - started) * 1000
        logger.debug("knowlify %s %s -> %d in %.0f ms", method, path, response.status_code, elapsed_ms)
        metrics.knowlify_request(bucket, method, response.status_code, elapsed_ms / 1000)

        if header(response.headers, "X-RateLimit-Remaining") is not None:
            self._budget.observe(bucket, response.headers)
        status = response.status_code
        if response.is_success:
            return response
        detail = self._detail(response)
        if status == 429:
            wait = rate_limit_wait(response.headers)
            self._budget.penalize(bucket, wait)
            raise RateLimited(status, detail, wait, replay_safe=replay_safe, method=method, path=path)
        if status >= 500:
            retry_after = parse_seconds(header(response.headers, "Retry-After"))
            raise ServerError(status, detail, retry_after, replay_safe=replay_safe, method=method, path=path)
        raise KnowlifyError(status, detail, replay_safe=replay_safe, method=method, path=path)

    def _transport_error(
        self, exc: httpx.TransportError, method: str, path: str, replay_safe: bool
    ) -> KnowlifyError:
        """Map a failure without an HTTP answer by whether Knowlify might have acted on the request."""
        reason = redact(f"{type(exc).__name__}: {exc}", (self._api_key,))
        if isinstance(exc, _NOT_SENT):
            return Unreachable(None, f"not sent ({reason})", replay_safe=True, method=method, path=path)
        if isinstance(exc, _INVALID_REQUEST):
            return KnowlifyError(None, f"invalid request ({reason})", method=method, path=path)
        if method == "GET":
            return Unreachable(None, f"no answer ({reason})", replay_safe=True, method=method, path=path)
        detail = f"sent but no answer arrived ({reason})"
        return OutcomeUnknown(None, detail, replay_safe=replay_safe, method=method, path=path)

    def _detail(self, response: httpx.Response) -> str:
        """The server's ``detail`` verbatim when present; otherwise a short excerpt of the body."""
        try:
            body = response.json()
        except ValueError:
            body = None
        text = detail_text(body)
        if text is None:
            excerpt = response.text.strip()[:_DETAIL_LIMIT]
            text = excerpt or response.reason_phrase or f"HTTP {response.status_code}"
        return redact(text, (self._api_key,))

    def _parse(self, model: type[_M], response: httpx.Response, path: str, *, replay_safe: bool) -> _M:
        """A 2xx body as ``model``; anything else is ``MalformedResponse`` (outcome unknown for POSTs)."""
        error: Exception
        try:
            body = response.json()
            return model.model_validate(body)
        except ValidationError as exc:
            first = exc.errors()[0]
            field = ".".join(str(p) for p in first["loc"]) or "body"
            reason = f"answer does not match {model.__name__}: {field}: {first['msg']}"
            error = exc
        except ValueError as exc:  # json.JSONDecodeError, UnicodeDecodeError
            reason = "answer is not valid JSON"
            error = exc
        raise MalformedResponse(
            response.status_code,
            redact(reason, (self._api_key,)),
            replay_safe=replay_safe,
            method=response.request.method,
            path=path,
        ) from error


def _segment(value: str) -> str:
    """An id as one path segment, so a stray '/' or '..' cannot address another endpoint."""
    if value in ("", ".", ".."):
        raise ValueError(f"not a usable id: {value!r}")
    return quote(value, safe="")

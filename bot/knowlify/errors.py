"""Knowlify failures as one exception family, and what each means for the retry policy.

The client never sleeps or loops: it raises, :func:`failure_of` reduces the exception to a
:class:`~bot.core.retry.Failure`, and :func:`bot.core.retry.retry` says when (or whether) to run the
job again. Callers branch on the class (what happened) and on ``status``/``detail`` (what
the server said; the 409 revert-guard texts arrive verbatim in ``detail``).
"""

from __future__ import annotations

import json
import math
import re
import time
from collections.abc import Iterable, Mapping
from email.utils import parsedate_to_datetime
from typing import Any

from bot.core.retry import DEFAULT_RATE_LIMIT_WAIT, Failure, Fault

# kn_<64 hex> per the docs; matched loosely so a truncated or odd-looking key is still hidden.
_KEY_PATTERN = re.compile(r"kn_[A-Za-z0-9]{8,}")
_REDACTED = "kn_[redacted]"


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    """Remove API keys from text that may be logged or shown to a user (server details can echo input)."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, _REDACTED)
    return _KEY_PATTERN.sub(_REDACTED, text)


class KnowlifyError(Exception):
    """Any failed Knowlify call. ``status`` is the HTTP status, or None when no answer was received.

    ``retry_after`` is set when the answer itself says how long to wait; ``replay_safe`` says whether
    sending the very same request again is harmless (GETs, and POST /v1/edits thanks to its
    Idempotency-Key); it only matters when the outcome is unknown.
    """

    def __init__(
        self,
        status: int | None,
        detail: str,
        retry_after: float | None = None,
        *,
        method: str | None = None,
        path: str | None = None,
        replay_safe: bool = False,
    ) -> None:
        self.status = status
        self.detail = redact(detail)
        self.retry_after = retry_after
        self.method = method
        self.path = path
        self.replay_safe = replay_safe
        super().__init__(self.detail)

    def __str__(self) -> str:
        where = f"{self.method} {self.path}" if self.method and self.path else "Knowlify"
        code = f" -> {self.status}" if self.status is not None else ""
        return f"{where}{code}: {self.detail}"

    def __repr__(self) -> str:
        name = type(self).__name__
        return f"{name}(status={self.status!r}, detail={self.detail!r}, retry_after={self.retry_after!r})"


class RateLimited(KnowlifyError):
    """429 from Knowlify; ``retry_after`` is always set (Retry-After, X-RateLimit-Reset, else 60 s)."""

    retry_after: float


class ServerError(KnowlifyError):
    """5xx: retried with exponential backoff (see bot.core.retry)."""

    @property
    def outcome_unknown(self) -> bool:
        """A gateway error (502/504) may hide an upstream that did the work: do not replay blindly."""
        return self.status in (502, 504) and not self.replay_safe


class BudgetExhausted(KnowlifyError):
    """Our own pacing refused the call before anything was sent; ``retry_after`` = until a slot frees."""

    retry_after: float

    def __init__(self, retry_after: float, detail: str = "local request budget exhausted") -> None:
        super().__init__(None, detail, retry_after, replay_safe=True)


class OutcomeUnknown(KnowlifyError):
    """The request may have been processed but no usable answer came back.

    For POST /v1/videos (no idempotency key) this must not be retried blindly: the user decides.
    """


class Unreachable(KnowlifyError):
    """Nothing was processed (connect failure), or the call was a GET: repeating it is always safe."""


class MalformedResponse(OutcomeUnknown):
    """A 2xx whose body does not parse. ``status`` keeps the 2xx code; for a POST the outcome is unknown."""


def failure_of(error: KnowlifyError) -> Failure:
    """What a failed call means for the retry policy (bot.core.retry), whatever class said it."""
    if isinstance(error, BudgetExhausted):
        fault = Fault.BUDGET
    elif isinstance(error, RateLimited):
        fault = Fault.RATE_LIMITED
    elif isinstance(error, ServerError):
        fault = Fault.GATEWAY if error.status in (502, 504) else Fault.SERVER
    elif isinstance(error, Unreachable):
        fault = Fault.UNREACHABLE
    elif isinstance(error, OutcomeUnknown):
        fault = Fault.NO_ANSWER
    elif error.status == 401:
        fault = Fault.UNAUTHORIZED
    elif error.status in (403, 404):
        fault = Fault.GONE
    else:
        fault = Fault.REFUSED
    return Failure(fault, error.status, error.detail, error.retry_after)


def parse_seconds(value: str | None, *, now: float | None = None) -> float | None:
    """A delta-seconds header value (or an HTTP date, which RFC 9110 allows for Retry-After)."""
    if value is None:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            return None
        seconds = when.timestamp() - (time.time() if now is None else now)
    if not math.isfinite(seconds):
        return None
    return max(seconds, 0.0)


def header(headers: Mapping[str, str], name: str) -> str | None:
    """Case-insensitive lookup that works for ``httpx.Headers`` and for plain dicts alike."""
    value = headers.get(name)
    if value is not None:
        return value
    lowered = name.lower()
    for key, val in headers.items():
        if key.lower() == lowered:
            return val
    return None


def rate_limit_wait(headers: Mapping[str, str]) -> float:
    """How long a 429 asks us to wait: Retry-After, else X-RateLimit-Reset, else 60 s."""
    for name in ("Retry-After", "X-RateLimit-Reset"):
        seconds = parse_seconds(header(headers, name))
        if seconds is not None:
            return seconds
    return DEFAULT_RATE_LIMIT_WAIT


def detail_text(body: Any) -> str | None:
    """The human text of an error body: ``detail`` as given, or a FastAPI list as "field: msg; …"."""
    if not isinstance(body, dict) or "detail" not in body:
        return None
    detail = body["detail"]
    if isinstance(detail, str):
        return detail
    if isinstance(detail, list):
        parts = []
        for item in detail:
            if isinstance(item, dict):
                loc = item.get("loc") or ()
                if not isinstance(loc, list | tuple):
                    loc = (loc,)
                fields = [str(p) for p in loc]
                if fields and fields[0] in ("body", "query", "path", "header"):
                    fields = fields[1:]
                msg = str(item.get("msg") or item.get("message") or item.get("type") or "invalid")
                parts.append(f"{'.'.join(fields)}: {msg}" if fields else msg)
            else:
                parts.append(str(item))
        return "; ".join(parts)
    return json.dumps(detail, separators=(",", ":"), default=str)

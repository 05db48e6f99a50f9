"""Per-key pacing that keeps every 60-second span under Knowlify's limits, without ever sleeping.

Knowlify counts in fixed 60 s windows whose start we cannot see. A sliding log over a slightly longer
span (``window + margin``) is stricter than any fixed window: if no span of that length holds more than
``cap`` calls, no 60 s span does either. Polls may only use ``cap - reserve`` of each span, so the next
user action (create, edit, revert) always finds room even while many jobs are being polled.

The log is a protocol so that the bot can share it through the database across replicas and restarts;
:class:`InMemoryCallLog` serves a single process and the tests. Times are wall-clock (``time.time``)
because a shared log is compared across processes, where monotonic clocks mean nothing.
"""

from __future__ import annotations

import bisect
import hashlib
import threading
import time
from collections.abc import Callable, Mapping
from enum import StrEnum
from typing import Protocol

from bot import metrics
from bot.core.polling import PollPolicy
from bot.knowlify.errors import BudgetExhausted, header, parse_seconds


class Bucket(StrEnum):
    VIDEOS = "videos"
    EDITS = "edits"


DEFAULT_LIMITS: dict[str, int] = {Bucket.VIDEOS: 30, Bucket.EDITS: 10}
DEFAULT_RESERVE: dict[str, int] = {Bucket.VIDEOS: 6, Bucket.EDITS: 4}
PURPOSES = ("action", "poll")
# Waits are rounded up by this much so that `now + retry_after` lands past the boundary despite float
# rounding of large wall-clock values; otherwise a rescheduled job could be refused once more.
_ROUND_UP_SECONDS = 1e-3


def bucket_for(method: str, path: str) -> Bucket:
    """The rate-limit bucket of an endpoint; unknown paths are refused rather than left unpaced."""
    clean = path.split("?", 1)[0].rstrip("/")
    for bucket in Bucket:
        prefix = f"/v1/{bucket.value}"
        if clean == prefix or clean.startswith(prefix + "/"):
            return bucket
    raise ValueError(f"no Knowlify rate-limit bucket for {method.upper()} {clean}")


def key_fingerprint(api_key: str) -> str:
    """A stable, non-secret id for a key (first 12 hex of sha256), safe to store and log."""
    return hashlib.sha256(api_key.encode()).hexdigest()[:12]


class CallLog(Protocol):
    def try_reserve(self, scope: str, now: float, window: float, cap: int) -> float:
        """Atomically: if fewer than ``cap`` calls of ``scope`` lie in (now - window, now], record one
        at ``now`` and return 0.0; otherwise record nothing and return the seconds until enough calls
        have left the window for one more to fit."""
        ...

    def block(self, scope: str, until: float) -> None:
        """Remember a server-imposed pause; of two pauses the later end wins."""
        ...

    def blocked_until(self, scope: str) -> float:
        """End of the current pause, or 0.0."""
        ...


class InMemoryCallLog:
    """Thread-safe, process-local :class:`CallLog`."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._calls: dict[str, list[float]] = {}
        self._blocked: dict[str, float] = {}

    def try_reserve(self, scope: str, now: float, window: float, cap: int) -> float:
        with self._lock:
            calls = self._calls.setdefault(scope, [])
            # Drop what has left the window; calls "in the future" (clock stepped back) still count.
            del calls[: bisect.bisect_right(calls, now - window)]
            if len(calls) < cap:
                bisect.insort(calls, now)
                return 0.0
            if cap <= 0:
                return window
            # The (len - cap)-th oldest call must leave before a slot is free (> 0 even after rounding).
            return max(calls[len(calls) - cap] + window - now, 1e-6)

    def block(self, scope: str, until: float) -> None:
        with self._lock:
            self._blocked[scope] = max(until, self._blocked.get(scope, 0.0))

    def blocked_until(self, scope: str) -> float:
        with self._lock:
            return self._blocked.get(scope, 0.0)

    def calls(self, scope: str) -> list[float]:
        """Recorded call times (for tests and diagnostics)."""
        with self._lock:
            return list(self._calls.get(scope, ()))


class Budget:
    """Decides, before any request is sent, whether this key may call a bucket now."""

    def __init__(
        self,
        log: CallLog,
        *,
        key_id: str,
        window_seconds: float = 60.0,
        limits: dict[str, int] | None = None,
        reserve: dict[str, int] | None = None,
        clock: Callable[[], float] = time.time,
        margin_seconds: float = 1.0,
    ) -> None:
        self.log = log
        self.key_id = key_id
        self.window_seconds = window_seconds
        self.margin_seconds = margin_seconds
        self.limits = {**DEFAULT_LIMITS, **(limits or {})}
        self.reserve = {**DEFAULT_RESERVE, **(reserve or {})}
        self.clock = clock
        for bucket, limit in self.limits.items():
            held = self.reserve.get(bucket, 0)
            if limit < 1 or not 0 <= held < limit:
                raise ValueError(f"bucket {bucket}: need limit >= 1 and 0 <= reserve < limit")

    @property
    def span(self) -> float:
        """The sliding span actually counted: the server's window plus a safety margin."""
        return self.window_seconds + self.margin_seconds

    def scope(self, bucket: str) -> str:
        return f"{self.key_id}:{Bucket(bucket).value}"

    def cap(self, bucket: str, purpose: str) -> int:
        if purpose not in PURPOSES:
            raise ValueError(f"purpose must be one of {PURPOSES}, not {purpose!r}")
        limit = self.limits[Bucket(bucket)]
        return limit if purpose == "action" else limit - self.reserve.get(Bucket(bucket), 0)

    def poll_policy(self, poll_seconds: float) -> PollPolicy:
        """The poll scheduler's view of this budget: the span counted and each bucket's poll share."""
        return PollPolicy(
            poll_seconds=poll_seconds,
            span_seconds=self.span,
            video_poll_cap=self.cap(Bucket.VIDEOS, "poll"),
            edit_poll_cap=self.cap(Bucket.EDITS, "poll"),
        )

    def acquire(self, bucket: str, purpose: str) -> None:
        """Record one call now, or raise :class:`BudgetExhausted` with the wait until one would fit."""
        cap = self.cap(bucket, purpose)
        scope = self.scope(bucket)
        now = self.clock()
        blocked = self.log.blocked_until(scope)
        if blocked > now:
            wait = blocked - now + _ROUND_UP_SECONDS
            metrics.budget_wait(bucket, purpose, "paused")
            raise BudgetExhausted(wait, f"Knowlify asked us to pause the {bucket} bucket")
        wait = self.log.try_reserve(scope, now, self.span, cap)
        if wait > 0:
            wait += _ROUND_UP_SECONDS
            metrics.budget_wait(bucket, purpose, "budget")
            raise BudgetExhausted(wait, f"{purpose} budget for the {bucket} bucket is used up")

    def observe(self, bucket: str, headers: Mapping[str, str]) -> None:
        """Trust the server's count: when it says nothing is left, pause until its window resets."""
        remaining = header(headers, "X-RateLimit-Remaining")
        try:
            exhausted = remaining is not None and int(float(remaining)) <= 0
        except ValueError:
            return
        if exhausted:
            reset = parse_seconds(header(headers, "X-RateLimit-Reset"))
            self.penalize(bucket, self.window_seconds if reset is None else reset)

    def penalize(self, bucket: str, seconds: float) -> None:
        """Pause the bucket for ``seconds`` (plus the margin, as the server rounds to whole seconds)."""
        self.log.block(self.scope(bucket), self.clock() + seconds + self.margin_seconds)

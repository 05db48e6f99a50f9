"""The one retry policy for every Knowlify call the worker makes.

A failed call is reduced to a :class:`Failure` (what happened, not which exception said so), and
:func:`retry` answers when to run the job again, or that trying again would be wrong. Nothing sleeps:
the answer becomes the row's `next_run_at`.

- 429, or our own budget saying "not now": wait what the answer asked (never an attempt).
- 5xx, or no connection: back off 2 s, 4 s, 8 s … capped at 5 minutes.
- No answer to a request that is not safe to send twice (a video create, or a 502/504 that may hide
  an upstream that did the work): give up; the user decides.
- 401 on a read: the key may be rotated any moment; look again in a minute without counting it.
- Any other 4xx on a write: give up (the request itself is wrong). On a read: back off.
- A video create gives up after MAX_CREATE_ATTEMPTS failures (≈ 4 minutes of backoff).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

BACKOFF_BASE_SECONDS = 2.0
BACKOFF_CAP_SECONDS = 300.0
# A wait the server asks for is obeyed, up to an hour (a bigger value is a server bug, not a plan).
SERVER_WAIT_CAP_SECONDS = 3600.0
DEFAULT_RATE_LIMIT_WAIT = 60.0
UNAUTHORIZED_WAIT_SECONDS = 60.0
MAX_CREATE_ATTEMPTS = 7


class Fault(StrEnum):
    """What went wrong with one call, as far as deciding what to do next is concerned."""

    BUDGET = "budget"  # our own pacing refused it: nothing was sent
    RATE_LIMITED = "rate_limited"  # 429
    SERVER = "server"  # 5xx that did nothing (500, 503, …)
    GATEWAY = "gateway"  # 502/504: an upstream may have done the work
    UNREACHABLE = "unreachable"  # nothing was processed, or a read got no answer
    NO_ANSWER = "no_answer"  # a write may have been processed; no usable answer came back
    UNAUTHORIZED = "unauthorized"  # 401
    GONE = "gone"  # 403/404: Knowlify does not know this object (under this key)
    REFUSED = "refused"  # any other 4xx, or a request we could not even build


class Call(StrEnum):
    """Every Knowlify call the worker makes; each knows whether repeating it is safe."""

    CREATE_VIDEO = "create_video"  # no idempotency key: never repeated blindly
    POLL_VIDEO = "poll_video"
    CREATE_EDIT = "create_edit"  # Idempotency-Key: a resend replays
    POLL_EDIT = "poll_edit"
    REVERT = "revert"  # looked up (GET) before it is ever sent again
    LOOKUP_REVERT = "lookup_revert"

    @property
    def is_read(self) -> bool:
        return self in (Call.POLL_VIDEO, Call.POLL_EDIT, Call.LOOKUP_REVERT)

    @property
    def replayable(self) -> bool:
        return self is not Call.CREATE_VIDEO

    @property
    def max_attempts(self) -> int | None:
        return MAX_CREATE_ATTEMPTS if self is Call.CREATE_VIDEO else None


@dataclass(frozen=True)
class Failure:
    """One failed call: the fault, what the server said, and the wait it asked for (if any)."""

    fault: Fault
    status: int | None = None
    detail: str = ""
    retry_after: float | None = None


@dataclass(frozen=True)
class Retry:
    """When to try again (``delay`` seconds from now), or ``delay is None``: don't.

    ``attempts`` is the row's new failure count: waiting for the budget or a 429 is not a failure.
    """

    delay: float | None
    attempts: int

    @property
    def give_up(self) -> bool:
        return self.delay is None


def backoff_seconds(attempt: int) -> float:
    """Delay before retry number ``attempt`` (1-based): 2, 4, 8 … ≤ 300."""
    exponent = min(max(attempt, 1), 32)
    return min(BACKOFF_BASE_SECONDS * 2 ** (exponent - 1), BACKOFF_CAP_SECONDS)


def server_wait(seconds: float | None, default: float = DEFAULT_RATE_LIMIT_WAIT) -> float:
    """A wait the server (or the budget) asked for, bounded to something sane."""
    if seconds is None:
        return default
    return min(max(seconds, 0.0), SERVER_WAIT_CAP_SECONDS)


def under_earlier_key(failure: Failure, row_key: str, current_key: str) -> bool:
    """A 403/404 about something made under an earlier Knowlify key: the current key does not know it."""
    return failure.fault is Fault.GONE and row_key != current_key


def retry(failure: Failure, call: Call, attempts: int) -> Retry:
    """The policy: after ``attempts`` earlier failures, ``call`` failed with ``failure``."""
    fault = failure.fault
    if fault in (Fault.BUDGET, Fault.RATE_LIMITED):
        return Retry(server_wait(failure.retry_after), attempts)
    n = attempts + 1
    if fault is Fault.UNAUTHORIZED and call.is_read:
        return Retry(UNAUTHORIZED_WAIT_SECONDS, attempts)
    if fault in (Fault.GATEWAY, Fault.NO_ANSWER) and not call.replayable:
        return Retry(None, n)
    if fault in (Fault.UNAUTHORIZED, Fault.GONE, Fault.REFUSED) and not call.is_read:
        return Retry(None, n)
    if fault is Fault.GONE:
        return Retry(None, n)  # a read of something Knowlify no longer has: the machine ends it
    if call.max_attempts is not None and n >= call.max_attempts:
        return Retry(None, n)
    delay = backoff_seconds(n)
    if failure.retry_after is not None:
        delay = max(delay, server_wait(failure.retry_after))
    return Retry(delay, n)

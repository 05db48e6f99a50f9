"""The one retry policy: every fault × every kind of call, as a table."""

from __future__ import annotations

import pytest

from bot.core.retry import (
    MAX_CREATE_ATTEMPTS,
    Call,
    Failure,
    Fault,
    Retry,
    backoff_seconds,
    retry,
    server_wait,
    under_earlier_key,
)
from bot.knowlify.errors import (
    BudgetExhausted,
    KnowlifyError,
    MalformedResponse,
    OutcomeUnknown,
    RateLimited,
    ServerError,
    Unreachable,
    failure_of,
)

W, R, C, V = Call.CREATE_VIDEO, Call.POLL_VIDEO, Call.CREATE_EDIT, Call.REVERT
GIVE_UP = None


@pytest.mark.parametrize(
    ("fault", "call", "attempts", "retry_after", "delay", "new_attempts"),
    [
        # 429 and our own budget: wait what was asked, never counted as a failure.
        (Fault.RATE_LIMITED, W, 3, 45.0, 45.0, 3),
        (Fault.RATE_LIMITED, R, 0, None, 60.0, 0),
        (Fault.BUDGET, C, 0, 0.5, 0.5, 0),
        (Fault.RATE_LIMITED, V, 0, 1e9, 3600.0, 0),  # a wait beyond an hour is a server bug
        # 5xx: 2 s, 4 s, 8 s …, or the server's Retry-After when longer.
        (Fault.SERVER, W, 0, None, 2.0, 1),
        (Fault.SERVER, W, 2, None, 8.0, 3),
        (Fault.SERVER, R, 0, 30.0, 30.0, 1),
        (Fault.SERVER, R, 5, 30.0, 64.0, 6),
        (Fault.SERVER, R, 40, None, 300.0, 41),  # capped, never hours
        (Fault.UNREACHABLE, W, 0, None, 2.0, 1),
        (Fault.UNREACHABLE, V, 11, None, 300.0, 12),  # a revert that keeps timing out: 5 min, not 68
        # A video create gives up after MAX_CREATE_ATTEMPTS failures; other calls go on.
        (Fault.SERVER, W, MAX_CREATE_ATTEMPTS - 2, None, 64.0, MAX_CREATE_ATTEMPTS - 1),
        (Fault.SERVER, W, MAX_CREATE_ATTEMPTS - 1, None, GIVE_UP, MAX_CREATE_ATTEMPTS),
        (Fault.UNREACHABLE, W, MAX_CREATE_ATTEMPTS - 1, None, GIVE_UP, MAX_CREATE_ATTEMPTS),
        (Fault.SERVER, C, 50, None, 300.0, 51),
        # No answer: a create (no idempotency key) is never repeated blindly; the rest are replayable.
        (Fault.NO_ANSWER, W, 0, None, GIVE_UP, 1),
        (Fault.GATEWAY, W, 0, None, GIVE_UP, 1),
        (Fault.NO_ANSWER, C, 0, None, 2.0, 1),
        (Fault.GATEWAY, C, 1, None, 4.0, 2),
        (Fault.NO_ANSWER, V, 0, None, 2.0, 1),
        (Fault.NO_ANSWER, R, 2, None, 8.0, 3),
        (Fault.GATEWAY, Call.POLL_EDIT, 0, None, 2.0, 1),
        # 401: a read waits a minute (uncounted); a write is refused.
        (Fault.UNAUTHORIZED, R, 4, None, 60.0, 4),
        (Fault.UNAUTHORIZED, Call.LOOKUP_REVERT, 0, None, 60.0, 0),
        (Fault.UNAUTHORIZED, W, 0, None, GIVE_UP, 1),
        (Fault.UNAUTHORIZED, C, 0, None, GIVE_UP, 1),
        # 403/404: gone for reads and writes alike.
        (Fault.GONE, R, 0, None, GIVE_UP, 1),
        (Fault.GONE, V, 0, None, GIVE_UP, 1),
        # Any other 4xx: a write is wrong as it is; a read backs off.
        (Fault.REFUSED, W, 0, None, GIVE_UP, 1),
        (Fault.REFUSED, C, 0, None, GIVE_UP, 1),
        (Fault.REFUSED, V, 0, None, GIVE_UP, 1),
        (Fault.REFUSED, R, 0, None, 2.0, 1),
    ],
)
def test_retry_policy(fault, call, attempts, retry_after, delay, new_attempts):
    step = retry(Failure(fault, retry_after=retry_after), call, attempts)
    assert step == Retry(delay, new_attempts)
    assert step.give_up is (delay is None)


def test_a_gone_object_of_an_earlier_key_is_a_key_change():
    gone, refused = Failure(Fault.GONE, 404, "not found"), Failure(Fault.REFUSED, 409, "busy")
    assert under_earlier_key(gone, "old", "new")
    assert not under_earlier_key(gone, "new", "new")
    assert not under_earlier_key(refused, "old", "new")


def test_backoff_is_doubling_from_two_seconds_and_capped():
    assert [backoff_seconds(n) for n in range(1, 11)] == [2, 4, 8, 16, 32, 64, 128, 256, 300, 300]
    assert backoff_seconds(0) == 2 and backoff_seconds(10_000) == 300


def test_server_waits_are_bounded():
    assert server_wait(None) == 60.0
    assert server_wait(-5.0) == 0.0
    assert server_wait(12.5) == 12.5


@pytest.mark.parametrize(
    ("call", "read", "replayable", "cap"),
    [
        (Call.CREATE_VIDEO, False, False, MAX_CREATE_ATTEMPTS),
        (Call.POLL_VIDEO, True, True, None),
        (Call.CREATE_EDIT, False, True, None),
        (Call.POLL_EDIT, True, True, None),
        (Call.REVERT, False, True, None),
        (Call.LOOKUP_REVERT, True, True, None),
    ],
)
def test_what_each_call_allows(call, read, replayable, cap):
    assert (call.is_read, call.replayable, call.max_attempts) == (read, replayable, cap)


@pytest.mark.parametrize(
    ("error", "fault"),
    [
        (BudgetExhausted(3.0), Fault.BUDGET),
        (RateLimited(429, "slow down", 45.0), Fault.RATE_LIMITED),
        (ServerError(500, "oops"), Fault.SERVER),
        (ServerError(503, "maintenance", 30.0), Fault.SERVER),
        (ServerError(502, "bad gateway"), Fault.GATEWAY),
        (ServerError(504, "upstream timed out", replay_safe=True), Fault.GATEWAY),
        (Unreachable(None, "not sent (connect refused)"), Fault.UNREACHABLE),
        (OutcomeUnknown(None, "read timeout"), Fault.NO_ANSWER),
        (MalformedResponse(200, "not json"), Fault.NO_ANSWER),
        (KnowlifyError(401, "Invalid API key"), Fault.UNAUTHORIZED),
        (KnowlifyError(403, "API key does not own this video"), Fault.GONE),
        (KnowlifyError(404, "not found"), Fault.GONE),
        (KnowlifyError(409, "a newer edit exists"), Fault.REFUSED),
        (KnowlifyError(None, "invalid request (bad URL)"), Fault.REFUSED),
    ],
)
def test_every_knowlify_error_class_has_one_fault(error, fault):
    failure = failure_of(error)
    assert failure == Failure(fault, error.status, error.detail, error.retry_after)

"""Acks before background work: the worker steps aside while Slack requests are being answered.

Slack waits 3 seconds for an answer; a card post or a Knowlify poll can wait a few hundred
milliseconds without anyone noticing. In one process both compete for the same interpreter (the
GIL), so a burst of 50 commands acknowledged while the worker posts the cards of the previous ones
takes about twice as long. The HTTP endpoint and the Bolt dispatch count the requests in flight;
the worker, before each claim and each step, waits until none is, at most `MAX_YIELD_SECONDS`, so
a steady stream of requests slows the worker down but never stops it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

MAX_YIELD_SECONDS = 0.25
# Idle means no request for this long: inside a burst the requests in flight can drop to zero for
# a moment (the next one is still on the wire), and a claim started then runs beside the rest.
QUIET_SECONDS = 0.02


class InFlight:
    def __init__(self) -> None:
        self._count = 0
        self._last_end = 0.0
        self._idle = threading.Condition()

    @contextmanager
    def answering(self) -> Iterator[None]:
        """Around the answer to one request from Slack."""
        with self._idle:
            self._count += 1
        try:
            yield
        finally:
            with self._idle:
                self._count -= 1
                self._last_end = time.monotonic()
                if self._count == 0:
                    self._idle.notify_all()

    def wait_idle(self, timeout: float = MAX_YIELD_SECONDS) -> bool:
        """Block until no request has been answered for QUIET_SECONDS, or `timeout` passed;
        whether it is idle."""
        deadline = time.monotonic() + timeout
        with self._idle:
            while True:
                now = time.monotonic()
                if self._count == 0 and now - self._last_end >= QUIET_SECONDS:
                    return True
                if now >= deadline:
                    return False
                if self._count == 0:  # idle, not yet for long: wait out the rest
                    self._idle.wait(min(QUIET_SECONDS - (now - self._last_end), deadline - now))
                else:
                    self._idle.wait(deadline - now)

    @property
    def count(self) -> int:
        return self._count


# One per process: what competes for the interpreter is the whole process.
REQUESTS = InFlight()

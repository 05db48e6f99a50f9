"""The worker steps aside while Slack requests are answered, but never for long."""

from __future__ import annotations

import threading
import time

from bot.acks_first import QUIET_SECONDS, InFlight


def test_with_nothing_in_flight_the_worker_goes_on_at_once():
    started = time.monotonic()
    assert InFlight().wait_idle(timeout=1.0)
    assert time.monotonic() - started < 0.5


def test_the_worker_waits_for_the_request_and_a_quiet_moment_after_it():
    requests = InFlight()
    answered = threading.Event()
    inside = threading.Event()

    def answer() -> None:
        with requests.answering():
            inside.set()
            answered.wait(5)

    thread = threading.Thread(target=answer)
    thread.start()
    assert inside.wait(5)
    waited: list[float] = []

    def worker() -> None:
        started = time.monotonic()
        requests.wait_idle(timeout=5.0)
        waited.append(time.monotonic() - started)

    w = threading.Thread(target=worker)
    w.start()
    time.sleep(0.1)  # the request is still being answered: the worker must still be waiting
    assert not waited
    released = time.monotonic()
    answered.set()
    thread.join(5)
    w.join(5)
    assert waited and waited[0] >= 0.1
    assert time.monotonic() - released >= QUIET_SECONDS


def test_a_request_that_never_ends_holds_the_worker_only_until_the_timeout():
    requests = InFlight()
    with requests.answering():
        started = time.monotonic()
        assert requests.wait_idle(timeout=0.05) is False
        assert 0.04 <= time.monotonic() - started < 1.0
    assert requests.count == 0

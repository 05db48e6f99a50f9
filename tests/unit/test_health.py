"""bot.health.Probes: a hung or failing database makes /readyz say "not ready" quickly, and a
healthy answer is reused for a few seconds instead of hitting the database on every probe."""

from __future__ import annotations

import threading
import time

from bot.health import Probes


class Engine:
    """Stands in for an SQLAlchemy engine: counts connections, can hang or fail."""

    def __init__(self) -> None:
        self.connects = 0
        self.release = threading.Event()
        self.hang = False
        self.fail = False

    def connect(self) -> Engine:
        self.connects += 1
        if self.hang:
            self.release.wait(10)
        if self.fail:
            raise OSError("connection refused")
        return self

    def __enter__(self) -> Engine:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def exec_driver_sql(self, sql: str) -> None:
        return None

    def rollback(self) -> None:
        return None


def probes(engine: Engine, **kw: float) -> Probes:
    return Probes("postgresql://db.invalid/bot", engine, **kw)  # type: ignore[arg-type]


def test_a_hung_database_is_not_ready_within_the_timeout_and_checks_do_not_pile_up():
    engine = Engine()
    engine.hang = True
    p = probes(engine, timeout=0.2)
    t0 = time.monotonic()
    assert p.ready() == (False, "database check timed out")
    assert p.ready()[0] is False
    assert time.monotonic() - t0 < 1.0
    assert engine.connects == 1, "a second probe waits on the hung check instead of starting another"
    engine.hang = False
    engine.release.set()
    assert p.ready() == (True, "ok")


def test_a_good_answer_is_reused_for_max_age():
    engine = Engine()
    p = probes(engine, max_age=60)
    assert p.ready() == (True, "ok")
    engine.fail = True
    assert p.ready() == (True, "ok")
    assert engine.connects == 1


def test_an_unreachable_database_is_named():
    engine = Engine()
    engine.fail = True
    assert probes(engine, max_age=0).ready() == (False, "database unreachable (OSError)")


def test_socket_mode_needs_the_socket_too():
    p = probes(Engine())
    p.socket_connected = lambda: False
    assert p.ready() == (False, "socket not connected")

"""`/knowlify` ack time with several workspaces installed, next to the single-workspace set-up,
while the worker is busy writing.

In distributed mode Bolt looks the workspace's installation up (slack_sdk's store, a database read)
before every listener runs, and the gate reads the workspace's Knowlify key. On SQLite the bot's
own engine begins every transaction with BEGIN IMMEDIATE, so a read on it waits for the write lock.
Three stacks, each on its own SQLite file, each with a busy worker:
  single       the single-workspace set-up (SLACK_BOT_TOKEN, KNOWLIFY_API_KEY)
  distributed  two workspaces installed through OAuth, each with its key; the stores on their
               reader engine (deferred transactions: a read never waits for the write lock)
  trap         the same, but the stores on the bot's own engine (BEGIN IMMEDIATE): what
               bot.installs avoids
"Busy worker": 20 renders in flight, polled by the real worker, plus a writer thread that holds
the database's write lock for 150 ms out of every 200 ms (a heavy worker tick, a slow disk).
50 creates, one at a time, timed at the client; median and worst.

    python bench/distributed_ack.py [--quick]
"""

from __future__ import annotations

import argparse
import statistics
import threading
import time

import _common
from _common import table

_common.clean_env()

import bot.installs  # noqa: E402
from bot.listeners.connect import CONNECT_MODAL, KEY_BLOCK, KEY_INPUT  # noqa: E402
from sandbox.slack_driver import SlackDriver  # noqa: E402
from sandbox.stack import LocalStack, StackConfig  # noqa: E402
from storage.db import make_engine  # noqa: E402

BETA = "T0BETA002"
HOLD, PERIOD = 0.15, 0.20


def busy_writer(url: str, stop: threading.Event) -> threading.Thread:
    engine = make_engine(url)

    def run() -> None:
        while not stop.is_set():
            with engine.begin() as conn:  # BEGIN IMMEDIATE: the write lock
                stop.wait(HOLD)
                del conn
            stop.wait(PERIOD - HOLD)
        engine.dispose()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def connect(driver: SlackDriver, key: str, user: str) -> None:
    view = {"callback_id": CONNECT_MODAL, "state": {"values": {KEY_BLOCK: {KEY_INPUT: {"value": key}}}}}
    response = driver.view_submission(view, user=user)
    assert "errors" not in response.text, response.text


def measure(mode: str, n: int) -> list[float]:
    config = StackConfig(
        distributed=mode != "single", stage_seconds=2.0, poll_seconds=0.2, tick_seconds=0.05, window_seconds=60.0
    )
    original = bot.installs.make_store_engine
    if mode == "trap":
        bot.installs.make_store_engine = make_engine  # type: ignore[assignment]
    stack = LocalStack(config).start()
    try:
        driver = stack.driver
        assert driver is not None
        if mode != "single":
            stack.slack.add_workspace(BETA, "beta")
            stack.slack.add_user("U0BEA0001", name="bea", team_id=BETA)
            stack.slack.add_channel("C0BETA001", team_id=BETA)
            stack.install(stack.slack.team_id, "U0ADA0001")
            stack.install(BETA, "U0BEA0001")
            connect(driver, "kn_" + "1a" * 32, "U0ADA0001")
            connect(stack.driver_for(BETA), "kn_" + "2b" * 32, "U0BEA0001")
        for i in range(20):  # renders in flight for the worker to poll
            driver.command(f"Background render {i}")
        stop = threading.Event()
        writer = busy_writer(stack.database_url, stop)
        times = []
        try:
            for i in range(n):
                started = time.perf_counter()
                response = driver.command(f"Explain number {i}")
                times.append(time.perf_counter() - started)
                assert response.status_code == 200
        finally:
            stop.set()
            writer.join()
        return times
    finally:
        stack.stop()
        bot.installs.make_store_engine = original


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="20 commands instead of 50")
    args = parser.parse_args()
    n = 20 if args.quick else 50
    rows = []
    for mode in ("single", "distributed", "trap"):
        times = measure(mode, n)
        over = sum(1 for t in times if t >= 3.0)
        rows.append(
            [mode, n, f"{statistics.median(times) * 1000:.0f}", f"{max(times) * 1000:.0f}", over]
        )
    table(
        ["set-up", "commands", "median ms", "worst ms", ">= 3 s"],
        rows,
        title=f"/knowlify ack with a busy worker (write lock held {HOLD * 1000:.0f} of every {PERIOD * 1000:.0f} ms)",
    )
    print(
        "\nsingle and distributed wait for the write lock once (to store the job); trap waits for it a"
        "\nsecond time, before the listener, to find the installation."
    )


if __name__ == "__main__":
    main()

"""How fast 50 concurrent `/knowlify` commands are acknowledged, next to a bare Bolt app.

Per database — SQLite with `synchronous=FULL` (every commit reaches the disk before it returns) and
a throwaway PostgreSQL with `fsync=on` and `synchronous_commit=on` — two servers run side by side in
this process, behind the same HTTP shell (bot.http_server: signature check, dispatch in the thread
pool):
  bot   the real bot (Runtime: listeners, worker running at real-time settings, simulator and Slack
        stand-in), whose command writes the job row and commits it before it acknowledges;
  bare  the same kind of Bolt app whose `/knowlify` only acknowledges;
  and, as the baseline of the group commit, the bot again with each job row committed in its own
  transaction (storage.group_commit switched off).
Each round sends 50 signed commands at once (a barrier releases them together), to the bare app
and then the bot; the client times each answer. After every bot round the bench checks that every
acknowledged command has its row committed (read on another connection).

    python bench/ack_latency.py [--rounds N] [--concurrency C] [--no-postgres]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

import _common
from _common import percentile, table

_common.clean_env()

from slack_bolt import Ack, App  # noqa: E402
from sqlalchemy import create_engine, event, text  # noqa: E402

from bot.http_server import create_http_app  # noqa: E402
from sandbox.servers import ServerThread  # noqa: E402
from sandbox.slack_driver import SlackDriver  # noqa: E402
from sandbox.stack import BOT_TOKEN, SIGNING_SECRET, LocalStack, StackConfig  # noqa: E402
from storage.db import normalize_url  # noqa: E402

SINGLE = "bot, a commit per command"
APPS = ("bare", SINGLE, "bot")


def bare_server(stack: LocalStack) -> ServerThread:
    """A Bolt app whose command only acknowledges, behind the bot's own HTTP shell."""
    from slack_sdk import WebClient

    app = App(
        client=WebClient(token=BOT_TOKEN, base_url=f"{stack.slack_server.url}/api/"),
        signing_secret=SIGNING_SECRET,
        process_before_response=True,
    )

    @app.command("/knowlify")
    def _ack(ack: Ack) -> None:
        ack(text="ok")

    return ServerThread(create_http_app(app, SIGNING_SECRET)).start()


class Burst:
    """`concurrency` threads, each with its own kept-alive connection, released together."""

    def __init__(self, url: str, concurrency: int, expect: str) -> None:
        self.concurrency = concurrency
        self.expect = expect
        self.drivers = [SlackDriver(url, SIGNING_SECRET) for _ in range(concurrency)]
        self.pool = ThreadPoolExecutor(concurrency)
        self.sent = 0
        self.refusal = ""  # the first answer that did not take the command, to print
        for d in self.drivers:  # open every connection before timing anything
            d.command("help")

    def run(self) -> tuple[list[float], int]:
        barrier = threading.Barrier(self.concurrency)
        base = self.sent
        self.sent += self.concurrency
        run = uuid.uuid4().hex  # every command its own trigger_id: one job row each

        def one(i: int) -> tuple[float, bool]:
            driver = self.drivers[i]
            barrier.wait()
            t0 = time.perf_counter()
            response = driver.command(
                f"Explain how HTTPS works, take {base + i} --duration 60",
                trigger_id=f"{base + i}.{run}",
                user=f"U{base + i:08d}",  # 50 people at once, each well inside their daily limit
            )
            elapsed = time.perf_counter() - t0
            ok = response.status_code == 200 and self.expect in response.text
            if not ok and not self.refusal:
                self.refusal = f"{response.status_code} {response.text[:200]}"
            return elapsed, ok

        results = list(self.pool.map(one, range(self.concurrency)))
        return [t for t, _ in results], sum(1 for _, ok in results if not ok)

    def close(self) -> None:
        self.pool.shutdown()
        for d in self.drivers:
            d.close()


def committed_jobs(url: str) -> int:
    """Rows visible to a fresh connection: what survives if the bot dies right after its ack."""
    engine = create_engine(normalize_url(url))
    try:
        with engine.connect() as conn:
            return int(conn.execute(text("SELECT count(*) FROM video_job")).scalar_one())
    finally:
        engine.dispose()


def full_sync(engine: Any) -> None:
    """synchronous=FULL on every connection of the bot's SQLite engine, whatever its default."""

    @event.listens_for(engine, "connect")
    def _full(dbapi_conn, _record):  # type: ignore[no-untyped-def]
        dbapi_conn.execute("PRAGMA synchronous=FULL")

    engine.dispose()  # connections opened before the listener are replaced


@contextmanager
def databases(use_postgres: bool, tmp: Path) -> Iterator[list[tuple[str, str]]]:
    found = [("SQLite, synchronous=FULL", f"sqlite:///{tmp / 'bench.db'}")]
    if not use_postgres:
        yield found
        return
    from sandbox.postgres import PostgresUnavailable, start_postgres

    try:
        with start_postgres(tmp / "pg") as server:
            import psycopg

            # The throwaway server trades durability for speed; a bench of durable acks wants it back.
            with psycopg.connect(server.url.replace("+psycopg", ""), autocommit=True) as conn:
                for setting in ("fsync", "full_page_writes", "synchronous_commit"):
                    conn.execute(f"ALTER SYSTEM SET {setting} = on")
                conn.execute("SELECT pg_reload_conf()")
            yield [*found, ("PostgreSQL, fsync=on", server.new_database("ack"))]
    except PostgresUnavailable as exc:
        print(f"(PostgreSQL skipped: {exc})")
        yield found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--rounds", type=int, default=6, help="bursts per app and database")
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--no-postgres", action="store_true")
    parser.add_argument("--quick", action="store_true", help="2 rounds")
    args = parser.parse_args()
    if args.quick:
        args.rounds = 2
    config = dict(stage_seconds=2.0, window_seconds=60.0, poll_seconds=5.0, tick_seconds=0.5)
    rows: list[list[object]] = []
    lost = 0
    with (
        tempfile.TemporaryDirectory(prefix="ack-") as tmpdir,
        databases(not args.no_postgres, Path(tmpdir)) as dbs,
    ):
        for name, url in dbs:
            stack = LocalStack(StackConfig(**config)).start(bot=False)  # type: ignore[arg-type]
            bare = None
            try:
                runtime = stack.start_bot(worker=False, database_url=url)
                if url.startswith("sqlite"):
                    full_sync(runtime.engine)
                runtime.start_worker()
                assert stack.bot_server is not None
                bare = bare_server(stack)
                bursts = {
                    "bare": Burst(f"{bare.url}/slack/events", args.concurrency, "ok"),
                    "bot": Burst(f"{stack.bot_server.url}/slack/events", args.concurrency, "Got it"),
                }
                bursts[SINGLE] = bursts["bot"]
                times: dict[str, list[float]] = {app: [] for app in APPS}
                bad = dict.fromkeys(times, 0)
                group = runtime.store._group
                for _ in range(args.rounds):
                    for app in APPS:
                        # The same bot, its rows committed one transaction per command (as before).
                        runtime.store._group = None if app == SINGLE else group
                        latencies, failed = bursts[app].run()
                        times[app] += latencies
                        bad[app] += failed
                        if app != "bare":
                            lost += bursts["bot"].sent - bad["bot"] - bad[SINGLE] - committed_jobs(url)
                runtime.store._group = group
                del bursts[SINGLE]
                for app, burst in bursts.items():
                    if burst.refusal:
                        print(f"{name}, {app}: first answer that did not take the command: {burst.refusal}")
                    burst.close()
            finally:
                if bare is not None:
                    bare.stop()
                with suppress(Exception):
                    stack.stop()
            p99 = {app: percentile(t, 99) for app, t in times.items()}
            p50 = {app: statistics.median(t) for app, t in times.items()}
            for app in APPS:
                rows.append(
                    [
                        name,
                        app,
                        len(times[app]),
                        f"{p50[app] * 1000:.0f}",
                        f"{p99[app] * 1000:.0f}",
                        f"{max(times[app]) * 1000:.0f}",
                        f"{p50[app] / p50['bare']:.2f}x" if app != "bare" else "",
                        f"{p99[app] / p99['bare']:.2f}x" if app != "bare" else "",
                        bad[app],
                    ]
                )
    table(
        ["database", "app", "n", "p50 ms", "p99 ms", "worst ms", "p50 vs bare", "p99 vs bare", "not taken"],
        rows,
        title=f"/knowlify acknowledgement, {args.concurrency} concurrent commands per burst, timed at the "
        f"client (load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs)",
    )
    print(f"acknowledged commands whose row was not committed when the burst ended: {lost}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""How fast 50 concurrent `/knowlify` commands are acknowledged, next to a bare Bolt app.

Per database — SQLite (the bot's own `synchronous=FULL`: every commit reaches the disk before it
returns) and a throwaway PostgreSQL with `fsync=on` and `synchronous_commit=on` — three servers run,
each in its own process as a deployment runs it, behind the same HTTP shell (bot.http_server: body
limit, signature check, dispatch in the thread pool):
  bare    a Bolt app whose `/knowlify` only acknowledges (bench/_ack_app.py);
  single  the real bot with each job row committed in its own transaction (the group commit
          switched off): the baseline of the group commit;
  bot     the real bot, `knowlify-slack serve` as shipped: listeners, worker at real-time settings,
          its command's job row committed before it acknowledges.
The Knowlify simulator, the Slack stand-in and the client run in this process: they stand for
Slack's and Knowlify's servers, which are not in the bot's process either.

Each round sends 50 signed commands at once (a barrier releases them together) to each server in
turn; the client times each answer. Before each burst every server's process is left to go quiet
(its worker done with the previous rounds' cards and creates), so one app's background work never
lands in another's figures; the bot's own worker still runs during its burst. After every bot
round the bench checks that every acknowledged command has its row committed (read on another
connection).

    python bench/ack_latency.py [--rounds N] [--concurrency C] [--no-postgres]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from pathlib import Path

import _common
from _common import percentile, table

_common.clean_env()

from sqlalchemy import create_engine, text  # noqa: E402

from sandbox.bot_process import BotProcess  # noqa: E402
from sandbox.slack_driver import SlackDriver  # noqa: E402
from sandbox.stack import SIGNING_SECRET, LocalStack, StackConfig  # noqa: E402
from storage.db import normalize_url  # noqa: E402

SINGLE = "bot, a commit per command"
APPS = ("bare", SINGLE, "bot")
HERE = Path(__file__).resolve().parent


def cpu_ticks(pid: int) -> int:
    """User + system CPU of a process so far, in clock ticks (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


def wait_quiet(pids: list[int], timeout: float = 30.0) -> None:
    """Until none of `pids` used more than a tick of CPU in the last 0.2 s (or `timeout`)."""
    deadline = time.monotonic() + timeout
    before = [cpu_ticks(p) for p in pids]
    while time.monotonic() < deadline:
        time.sleep(0.2)
        after = [cpu_ticks(p) for p in pids]
        if all(a - b <= 1 for a, b in zip(after, before, strict=True)):
            return
        before = after


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

    def warm(self) -> None:
        """One untimed request per connection: a connection idle for more than uvicorn's
        keep-alive (5 s, e.g. while another server went quiet) would be closed under the burst."""
        for d in self.drivers:
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


@contextmanager
def databases(use_postgres: bool, tmp: Path) -> Iterator[list[tuple[str, dict[str, str]]]]:
    """Per database, one fresh database for each bot (the bare app stores nothing)."""
    found = [
        (
            "SQLite, synchronous=FULL",
            {app: f"sqlite:///{tmp / f'bench-{n}.db'}" for n, app in enumerate(APPS)},
        )
    ]
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
            urls = {app: server.new_database(f"ack{n}") for n, app in enumerate(APPS)}
            yield [*found, ("PostgreSQL, fsync=on", urls)]
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
    config = StackConfig(stage_seconds=2.0, window_seconds=60.0, poll_seconds=5.0, tick_seconds=0.5)
    rows: list[list[object]] = []
    lost = 0
    with (
        tempfile.TemporaryDirectory(prefix="ack-") as tmpdir,
        databases(not args.no_postgres, Path(tmpdir)) as dbs,
    ):
        for name, urls in dbs:
            stack = LocalStack(config).start(bot=False)
            with ExitStack() as running:
                running.callback(stack.stop)
                servers: dict[str, BotProcess] = {}
                for app, launcher in (
                    ("bare", [sys.executable, str(HERE / "_ack_app.py"), "bare"]),
                    (SINGLE, [sys.executable, str(HERE / "_ack_app.py"), "single"]),
                    ("bot", None),  # `python -m bot.cli`: knowlify-slack itself
                ):
                    env = {"DATABASE_URL": urls[app], "KNOWLIFY_WORKER_ID": f"ack-{app[:6]}"}
                    log = Path(tmpdir) / f"{name[:6]}-{app[:6]}.log"
                    server = BotProcess(stack, log, log_level="WARNING", env=env, launcher=launcher)
                    servers[app] = running.enter_context(server)
                expect = {"bare": "ok", SINGLE: "Got it", "bot": "Got it"}
                bursts = {
                    app: Burst(f"{server.url}/slack/events", args.concurrency, expect[app])
                    for app, server in servers.items()
                }
                for burst in bursts.values():
                    running.callback(burst.close)
                pids = [s.proc.pid for s in servers.values() if s.proc is not None]
                times: dict[str, list[float]] = {app: [] for app in APPS}
                bad = dict.fromkeys(APPS, 0)
                for _ in range(args.rounds):
                    for app in APPS:
                        bursts[app].warm()
                        wait_quiet(pids)
                        latencies, failed = bursts[app].run()
                        times[app] += latencies
                        bad[app] += failed
                        if app != "bare":
                            lost += bursts[app].sent - bad[app] - committed_jobs(urls[app])
                for app, burst in bursts.items():
                    if burst.refusal:
                        print(f"{name}, {app}: first answer that did not take the command: {burst.refusal}")
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

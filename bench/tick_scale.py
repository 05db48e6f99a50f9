"""A worker tick and the served bot's memory with 10,000 tracked jobs, most of them not due.

For SQLite and PostgreSQL (a throwaway server from sandbox.postgres), the database is filled with
10,000 video jobs of this key — 6,000 rendering and polled later (due in 5 min to 1 h), 3,500
complete, 500 failed — and 2,000 finished edits; none is due, as between two polls. Then:

  tick     one `Worker.tick()` of the real bot (Runtime, worker not scheduled), timed 60 times:
           the claim queries that find nothing to do. Baseline in the same run: the same tick with
           the claim query the bot used before (due rows in id order, which walks the whole table).
  RSS      `knowlify-slack serve` as a process on that database, its worker ticking and /metrics
           scraped (the jobs-by-state query), VmRSS after 5 s.

    python bench/tick_scale.py [--jobs N] [--no-postgres]
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

import _common
from _common import percentile, table

_common.clean_env()

import httpx  # noqa: E402
from sqlalchemy import insert, or_, update  # noqa: E402
from sqlmodel import col, select  # noqa: E402

from bot.knowlify.budget import key_fingerprint  # noqa: E402
from sandbox.bot_process import BotProcess  # noqa: E402
from sandbox.stack import API_KEY, LocalStack, StackConfig  # noqa: E402
from storage.repo import Store  # noqa: E402

NEVER = 9.0e12


def fill(engine: Any, jobs: int) -> None:
    """`jobs` videos of this key, none due; finished edits on a fifth of them."""
    now = time.time()
    key_id = key_fingerprint(API_KEY)
    rng = random.Random(7)
    rows = []
    for i in range(jobs):
        share = i / jobs
        state = "rendering" if share < 0.6 else "complete" if share < 0.95 else "failed"
        rows.append(
            dict(
                request_key=f"bench:{i}",
                team_id="T0KN0W001",
                channel_id="C0DESIGN1",
                user_id="U0ADA0001",
                key_id=key_id,
                prompt=f"Explain topic number {i} in a short explainer video",
                options_json='{"fields": {}, "summary": ""}',
                state=state,
                status="generating_frames" if state == "rendering" else state,
                knowlify_uuid=f"00000000-0000-4000-8000-{i:012d}",
                card_ts=f"1700000000.{i:06d}",
                next_run_at=now + rng.uniform(300, 3600) if state == "rendering" else NEVER,
                created_at=now,
                updated_at=now,
                attempts=0,
                card_updated_at=now,
                card_stale=False,
            )
        )
    from storage.models import EditJob, VideoJob

    with engine.begin() as conn:
        conn.execute(insert(VideoJob), rows)
        conn.execute(
            insert(EditJob),
            [
                dict(
                    video_id=1 + i * 5,
                    key_id=key_id,
                    team_id="T0KN0W001",
                    channel_id="C0DESIGN1",
                    reply_ts=f"1700000001.{i:06d}",
                    user_id="U0ADA0001",
                    text="Make scene 2 more dramatic",
                    state="complete",
                    next_run_at=NEVER,
                    created_at=now,
                    updated_at=now,
                    attempts=0,
                )
                for i in range(jobs // 5)
            ],
        )
    if engine.dialect.name == "postgresql":
        # Planner statistics, as autovacuum keeps them on a live database (a fresh bulk load has none,
        # and the planner would scan the table instead of walking the next_run_at index).
        with engine.connect() as conn:
            conn.exec_driver_sql("ANALYZE")
            conn.commit()


def id_ordered_claim(self: Store, model: Any, owner: str, lease_seconds: float, limit: int, *conditions: Any):  # type: ignore[no-untyped-def]
    """The claim as it was: due rows in id order (the planner walks the primary key)."""
    now = self.clock()
    due = (
        select(model.id)
        .where(
            *conditions,
            col(model.next_run_at) <= now,
            or_(
                col(model.lease_until).is_(None),
                col(model.lease_until) < now,
                col(model.lease_owner) == owner,
            ),
        )
        .order_by(col(model.id))
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    stmt = (
        update(model)
        .where(col(model.id).in_(due.scalar_subquery()))
        .values(lease_owner=owner, lease_until=now + lease_seconds)
        .returning(col(model.id))
    )
    with self.session() as s:
        ids = [row[0] for row in s.execute(stmt)]
        s.commit()
        if not ids:
            return []
        return sorted(s.exec(select(model).where(col(model.id).in_(ids))), key=lambda r: r.id or 0)


def time_ticks(worker: Any, n: int = 60) -> list[float]:
    worker.tick()  # warm the connection pool and the statement cache
    out = []
    for _ in range(n):
        t0 = time.perf_counter()
        handled = worker.tick()
        out.append(time.perf_counter() - t0)
        assert handled == 0, "the bench expects nothing due"
    return out


def rss_mb(pid: int) -> tuple[float, float]:
    fields = dict(
        line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines() if ":" in line
    )
    return int(fields["VmRSS"].split()[0]) / 1024, int(fields["VmHWM"].split()[0]) / 1024


@contextmanager
def databases(use_postgres: bool, tmp: Path) -> Iterator[list[tuple[str, str]]]:
    found = [("SQLite", f"sqlite:///{tmp / 'bench.db'}")]
    if not use_postgres:
        yield found
        return
    from sandbox.postgres import PostgresUnavailable, start_postgres

    try:
        with start_postgres(tmp / "pg") as server:
            yield [*found, ("PostgreSQL", server.new_database("tick"))]
    except PostgresUnavailable as exc:
        print(f"(PostgreSQL skipped: {exc})")
        yield found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--jobs", type=int, default=10_000)
    parser.add_argument("--no-postgres", action="store_true")
    parser.add_argument("--quick", action="store_true", help="2,000 jobs")
    args = parser.parse_args()
    if args.quick:
        args.jobs = 2_000
    rows: list[list[object]] = []
    with (
        tempfile.TemporaryDirectory(prefix="tick-scale-") as tmpdir,
        databases(not args.no_postgres, Path(tmpdir)) as dbs,
    ):
        for name, url in dbs:
            stack = LocalStack(StackConfig(poll_seconds=5.0, tick_seconds=0.5)).start(bot=False)
            try:
                runtime = stack.start_bot(worker=False, database_url=url)
                fill(runtime.engine, args.jobs)
                now = time_ticks(runtime.worker)
                original = Store.claim
                Store.claim = id_ordered_claim  # type: ignore[method-assign,assignment]
                try:
                    before = time_ticks(runtime.worker)
                finally:
                    Store.claim = original  # type: ignore[method-assign]
                stack.stop_bot()

                bot = BotProcess(stack, Path(tmpdir) / f"{name}.log", env={"DATABASE_URL": url})
                bot.start()
                try:
                    deadline = time.monotonic() + 5.0
                    with httpx.Client(base_url=bot.url) as client:
                        while time.monotonic() < deadline:
                            assert client.get("/metrics").status_code == 200
                            time.sleep(0.5)
                    assert bot.proc is not None
                    rss, peak = rss_mb(bot.proc.pid)
                finally:
                    bot.stop()
            finally:
                with suppress(Exception):
                    stack.stop()
            for label, ticks in (("before: id-ordered claim", before), ("now: due-first claim", now)):
                rows.append(
                    [
                        name,
                        label,
                        f"{statistics.median(ticks) * 1000:.2f}",
                        f"{percentile(ticks, 95) * 1000:.2f}",
                        f"{max(ticks) * 1000:.2f}",
                        f"{rss:.0f}" if label.startswith("now") else "",
                        f"{peak:.0f}" if label.startswith("now") else "",
                    ]
                )
    table(
        [
            "database",
            "claim query",
            "tick median ms",
            "tick p95 ms",
            "tick worst ms",
            "RSS MB",
            "peak RSS MB",
        ],
        rows,
        title=f"(load average at the end: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs)\n"
        f"One worker tick with {args.jobs:,} tracked jobs, none due (target ≤ 20 ms); "
        "`knowlify-slack serve` RSS on that database (target ≤ 150 MB)",
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Bot replicas sharing one database: leases vs a naive loop (in-process), and replica processes
with one SIGKILLed mid-run (PostgreSQL, 3 processes; SQLite, 1 process, for comparison).

Part `leases` — three bot replicas on one SQLite file, 12 videos: completion posts and creates.

Each replica is a real `Runtime` (own Bolt app served over HTTP, own Knowlify and Slack clients, own
worker with `owner="replica-N"`), all on the same database file; the 12 /knowlify commands go to
the three replicas in turn (as a load balancer would). Scaled time: stage 0.2 s, window 1 s,
poll 0.083 s, tick 0.05 s.

  leases    the real workers: rows are claimed with UPDATE … RETURNING before they are touched.
  naive     the real workers create the videos (cards and POST /v1/videos as usual) but leave
            rendering rows alone; instead each replica runs the loop written below — select every
            row in state `rendering` (no claim), poll Knowlify, on complete post the link in the
            thread, then mark the row complete.

Part `kill` — real `knowlify-slack serve` processes (3 on one PostgreSQL database, or 1 on a SQLite
file), one Knowlify key, behind a round-robin balancer that sends a request to the next replica
when one does not answer (as Slack retries). 30 videos; 10 of them get an edit reply, 5 of those
edits are reverted. Each configuration runs twice with the same script: without a kill, and with
replica 2 (on SQLite: the only process) SIGKILLed after the 15th command and restarted under the
same KNOWLIFY_WORKER_ID. Figures: creates per video and edit creates at the simulator (duplicates),
lost jobs (no result post), completion posts per job, the longest wait for a result, and the delay
the kill added (longest wait with the kill minus without). Needs the PostgreSQL binaries on PATH.

    python bench/replicas.py [--part leases|kill|all] [--quick]
"""

from __future__ import annotations

import argparse
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import _common
from _common import table

_common.clean_env()

import httpx  # noqa: E402
from sqlalchemy import update  # noqa: E402
from sqlmodel import select  # noqa: E402

from bot.core import lifecycle as lc  # noqa: E402
from bot.core import texts  # noqa: E402
from bot.http_server import create_http_app  # noqa: E402
from bot.knowlify.errors import KnowlifyError  # noqa: E402
from bot.runtime import Runtime  # noqa: E402
from bot.worker import NEVER, Worker  # noqa: E402
from sandbox.bot_process import BotProcess  # noqa: E402
from sandbox.postgres import start_postgres  # noqa: E402
from sandbox.servers import ServerThread  # noqa: E402
from sandbox.slack_driver import SlackDriver  # noqa: E402
from sandbox.slack_standin import Call  # noqa: E402
from sandbox.stack import SIGNING_SECRET, LocalStack, StackConfig  # noqa: E402
from storage.models import VideoJob  # noqa: E402
from tests.faults.invariants import (  # noqa: E402
    EDIT_FINAL,
    READY,
    Ledger,
    card_ts_of,
    check,
    edit_rows,
    job_for,
    posts,
    settle,
    sim_edits,
    sim_videos,
)

REPLICAS = 3
TICK = 0.05


class CreatorOnly(Worker):
    """The real worker minus polling: cards and creates as usual, rendering rows are left alone."""

    def _video_step(self, job: VideoJob) -> None:
        if job.state == lc.RENDERING:
            self.store.release(job, self.owner, NEVER)
            return
        super()._video_step(job)


def naive_loop(rt: Runtime, stop: threading.Event) -> None:
    """What a replica without leases does: read every rendering row, poll, post, mark done."""
    while not stop.is_set():
        with rt.store.session() as s:
            rows = list(s.exec(select(VideoJob).where(VideoJob.state == lc.RENDERING)))
        for job in rows:
            try:
                status = rt.knowlify.get_video(job.knowlify_uuid or "")
            except KnowlifyError:  # includes our own budget saying "not now"
                continue
            if status.status == "complete":
                rt.slack.post(
                    job.channel_id, texts.video_done(job.chat_url or "", job.prompt), None, job.card_ts
                )
                with rt.store.session() as s:
                    s.exec(update(VideoJob).where(VideoJob.id == job.id).values(state=lc.COMPLETE))  # type: ignore[call-overload]
                    s.commit()
        stop.wait(TICK)


def completion(c: Call) -> bool:
    return (
        c.method == "chat.postMessage" and bool(c.args.get("thread_ts")) and "ready" in c.args.get("text", "")
    )


def run(mode: str, jobs: int) -> dict[str, Any]:
    stack = LocalStack(
        StackConfig(stage_seconds=0.2, window_seconds=1.0, poll_seconds=5 / 60, tick_seconds=TICK)
    )
    stack.start(bot=False)
    runtimes: list[Runtime] = []
    servers: list[ServerThread] = []
    drivers: list[SlackDriver] = []
    stop = threading.Event()
    loops: list[threading.Thread] = []
    per_replica: Counter[str] = Counter()
    try:
        for n in range(1, REPLICAS + 1):
            owner = f"replica-{n}"
            rt = Runtime(stack.settings(), owner=owner)
            if mode == "naive":
                rt.worker = CreatorOnly(
                    rt.store,
                    rt.knowlify,
                    rt.slack,
                    key_id=rt.key_id,
                    poll_seconds=rt.settings.knowlify_poll_seconds,
                    owner=owner,
                )
            original_post = rt.slack.post

            def counting_post(
                channel: str,
                text: str,
                blocks: Any = None,
                thread_ts: str | None = None,
                _post: Any = original_post,
                _owner: str = owner,
            ) -> str:
                ts = _post(channel, text, blocks, thread_ts)
                if thread_ts and "ready" in text:
                    per_replica[_owner] += 1
                return ts

            rt.slack.post = counting_post  # type: ignore[method-assign]
            runtimes.append(rt)
            server = ServerThread(create_http_app(rt.app, SIGNING_SECRET)).start()
            servers.append(server)
            drivers.append(SlackDriver(f"{server.url}/slack/events", SIGNING_SECRET))
        for rt in runtimes:
            rt.start_worker()
            if mode == "naive":
                loops.append(threading.Thread(target=naive_loop, args=(rt, stop), daemon=True))
        for t in loops:
            t.start()
        for i in range(jobs):
            assert drivers[i % REPLICAS].command(f"Explain topic {i + 1}").status_code == 200
        deadline = time.monotonic() + 60
        # Every thread has its completion (duplicates do not count towards that).
        while len({c.args["thread_ts"] for c in stack.slack.calls if completion(c)}) < jobs:
            if time.monotonic() > deadline:
                raise TimeoutError("not every video got its completion post within 60 s")
            time.sleep(0.05)
        time.sleep(1.0)  # late duplicates land within a tick or two
        posts = [c for c in stack.slack.calls if completion(c)]
        threads = Counter(c.args["thread_ts"] for c in posts)
        return {
            "cards": sum(1 for c in stack.slack.calls_of("chat.postMessage") if not c.args.get("thread_ts")),
            "creates": stack.sim.count("POST", "/v1/videos"),
            "posts": len(posts),
            "dup_threads": sum(1 for n in threads.values() if n > 1),
            "per_replica": "/".join(str(per_replica[f"replica-{n}"]) for n in range(1, REPLICAS + 1)),
            "polls": stack.sim.count("GET", "/v1/videos/"),
        }
    finally:
        stop.set()
        for t in loops:
            t.join(timeout=5)
        for d in drivers:
            d.close()
        for s in servers:
            s.stop()
        for rt in runtimes:
            rt.stop()
        stack.stop()


# --- part `kill`: replica processes, one SIGKILLed -----------------------------------------------

KILL_VIDEOS, KILL_EDITS, KILL_REVERTS, KILL_AFTER = 30, 10, 5, 15


class Fleet:
    """Replica processes behind a round-robin balancer that tries the next one on failure."""

    def __init__(self, stack: LocalStack, replicas: int, log_dir: Path) -> None:
        self.bots = [
            BotProcess(
                stack,
                log_dir / f"replica-{n}.log",
                # One person sends all 30: the per-person daily limit (20) is not what is measured.
                env={"KNOWLIFY_WORKER_ID": f"replica-{n}", "KNOWLIFY_USER_VIDEOS_PER_DAY": "0"},
                start_timeout=90,
            )
            for n in range(1, replicas + 1)
        ]
        self._lock = threading.Lock()
        self._next = 0

    def start(self) -> None:
        threads = [threading.Thread(target=b.start) for b in self.bots]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert all(b.alive() for b in self.bots), "a replica did not start"

    def send(self, request: Callable[[SlackDriver, int], httpx.Response]) -> None:
        """Deliver one request (same ids every attempt) until some replica answers 200."""
        deadline, attempt = time.monotonic() + 120, 0
        while True:
            with self._lock:
                bot = self.bots[self._next % len(self.bots)]
                self._next += 1
            driver = bot.driver
            try:
                if driver is not None and request(driver, attempt).status_code == 200:
                    return
            except (httpx.HTTPError, RuntimeError):  # killed mid-request, or its driver was replaced
                pass
            attempt += 1
            if time.monotonic() > deadline:
                raise TimeoutError("no replica answered for 120 s")
            time.sleep(0.05)

    def stop(self) -> None:
        for b in self.bots:
            b.stop()


def _later_ts(ts: str, micros: int) -> str:
    sec, _, frac = ts.partition(".")
    us = int(sec) * 1_000_000 + int((frac + "000000")[:6]) + micros
    return f"{us // 1_000_000}.{us % 1_000_000:06d}"


def killed_run(database_url: str, replicas: int, kill: bool, log_dir: Path) -> dict[str, Any]:
    stack = LocalStack(
        StackConfig(
            stage_seconds=0.15, window_seconds=1.0, poll_seconds=0.05, tick_seconds=0.02,
            database_url=database_url,
        )
    ).start(bot=False)
    fleet = Fleet(stack, replicas, log_dir)
    ledger, prompts = Ledger(), [f"replicas-{i:02d} how glaciers carve valleys" for i in range(KILL_VIDEOS)]
    victim = fleet.bots[1 if replicas > 1 else 0]
    kill_at: list[float] = []
    try:
        fleet.start()
        for i, prompt in enumerate(prompts):
            if kill and i == KILL_AFTER:
                victim.kill()
                kill_at.append(time.time())
                threading.Thread(target=victim.start, daemon=True).start()  # restart, same worker id
            ledger.command(prompt, unknown_ok=True)
            fleet.send(lambda d, n, p=prompt, i=i: d.command(p, trigger_id=f"replicas-{i}.1.bench"))
        replies: list[str] = []
        for i, prompt in enumerate(prompts[:KILL_EDITS]):
            thread = card_ts_of(stack, prompt, timeout=120)
            ts, text = _later_ts(thread, 500_000), f"replicas-{i:02d} edit: make scene {i % 5 + 1} icier"
            ledger.edit(text, prompt, ts)

            def reply(d: SlackDriver, n: int, text: str = text, thread: str = thread, ts: str = ts, i: int = i):
                event = d.message_event(text, thread_ts=thread, ts=ts)
                return d.event(event, event_id=f"EvREPLEDIT{i:02d}", retry_num=n or None)

            fleet.send(reply)
            replies.append(ts)
        for i, ts in enumerate(replies[:KILL_REVERTS]):
            deadline = time.monotonic() + 120
            while not any(
                r["reply_ts"] == ts and r["state"] in EDIT_FINAL and r["lease_owner"] is None
                for r in edit_rows(stack)
            ):
                if time.monotonic() > deadline:
                    raise TimeoutError(f"edit {i} never finished")
                time.sleep(0.05)
            if not any(r["reply_ts"] == ts and r["state"] == "complete" for r in edit_rows(stack)):
                continue
            ledger.revert(ts)
            fleet.send(
                lambda d, n, ts=ts, i=i: d.event(
                    d.reaction_event(ts), event_id=f"EvREPLREV{i:02d}", retry_num=n or None
                )
            )
        problems = ""
        try:
            settle(stack, ledger, timeout=180)
            outcome = check(stack, ledger)
            longest = outcome.longest()
        except AssertionError as exc:
            problems, longest = str(exc).splitlines()[0][:300], float("nan")
            print(f"{database_url.split(':')[0]} kill={kill}: {exc}\nlogs: {log_dir}", flush=True)
        creates = Counter(v["task"] for v in sim_videos(stack))
        edit_creates = Counter(e["edit_request"] for e in sim_edits(stack))
        edit_keys = {
            c.idempotency_key for c in stack.sim.calls if c.method == "POST" and c.path == "/v1/edits"
        }
        ready = Counter(
            c.args.get("thread_ts") for c in posts(stack) if READY in (c.args.get("text") or "")
        )
        cards = {p: (job_for(stack, p) or {}).get("card_ts") for p in prompts}
        per_job = Counter(ready.get(cards[p], 0) if cards[p] else 0 for p in prompts)
        return {
            "creates": sum(creates[p] for p in prompts),
            "dup_creates": sum(max(0, creates[p] - 1) for p in prompts),
            "edit_keys": len(edit_keys),
            "edit_creates": sum(edit_creates.values()),
            "dup_edits": sum(max(0, n - 1) for n in edit_creates.values()),
            # Jobs a user never heard the end of: a video with neither its completion post nor the
            # "outcome unknown, run it again" notice (a create cut off by the kill), a reply without
            # an edit result. `unknown`: the notices, which the product promises instead of a guess.
            "lost": sum(
                1
                for p in prompts
                if not (cards[p] and ready.get(cards[p])) and not (job_for(stack, p) or {}).get("unknown_notice_ts")
            )
            # (A refused edit is told in the thread without a result_ts.)
            + sum(1 for r in edit_rows(stack) if not r["result_ts"] and r["state"] != "refused"),
            "unknown": sum(1 for p in prompts if (job_for(stack, p) or {}).get("state") == "unknown"),
            "posts_per_job": ", ".join(f"{k}×{v}" for k, v in sorted(per_job.items())),
            "longest": longest,
            "problems": problems,
            "reverts": sum(
                1 for c in stack.sim.calls if c.path.endswith("/revert") and c.status == 200
            ),
            "revert_intents": sum(1 for e in ledger.edits.values() if e.revert_sent_at),
        }
    finally:
        fleet.stop()
        stack.stop()


def kill_part() -> None:
    rows: list[list[Any]] = []
    base = Path(tempfile.mkdtemp(prefix="bench-replicas-"))
    with start_postgres(base / "pg") as pg:
        configs = [
            ("PostgreSQL", REPLICAS, lambda: pg.new_database("replicas")),
            ("SQLite", 1, lambda: f"sqlite:///{tempfile.mkdtemp(dir=base)}/bot.db"),
        ]
        for name, n, url in configs:
            without = killed_run(url(), n, False, Path(tempfile.mkdtemp(dir=base)))
            killed = killed_run(url(), n, True, Path(tempfile.mkdtemp(dir=base)))
            for label, m in (("no kill", without), ("1 SIGKILL + restart", killed)):
                added = m["longest"] - without["longest"]
                rows.append(
                    [
                        f"{name}, {n} process{'es' if n > 1 else ''}, {label}",
                        f"{m['creates']} ({m['dup_creates']} dup)",
                        f"{m['edit_creates']} ({m['dup_edits']} dup) / {m['edit_keys']} keys",
                        f"{m['reverts']} / {m['revert_intents']}",
                        m["lost"],
                        m["unknown"],
                        m["posts_per_job"],
                        f"{m['longest']:.1f}",
                        "-" if label == "no kill" else f"{added:+.1f}",
                        m["problems"] or "all invariants hold",
                    ]
                )
    table(
        [
            "run",
            "video creates",
            "edit creates / idempotency keys",
            "reverts done / asked",
            "lost jobs",
            "told 'outcome unknown'",
            "completion posts per job (posts×jobs)",
            "longest wait for a result (s)",
            "delay the kill added (s)",
            "check",
        ],
        rows,
        title=(
            f"{KILL_VIDEOS} videos, {KILL_EDITS} edits, up to {KILL_REVERTS} reverts, one key; expected "
            f"{KILL_VIDEOS} creates, {KILL_EDITS} edit creates, 1 completion post per job, 0 lost"
        ),
    )
    print(f"logs: {base}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--quick", action="store_true", help="one run of each instead of three (part leases)")
    parser.add_argument("--part", choices=("leases", "kill", "all"), default="all")
    args = parser.parse_args()
    if args.part in ("kill", "all"):
        kill_part()
    if args.part == "kill":
        return 0
    jobs = 12
    rounds = 1 if args.quick else 3
    rows = []
    for r in range(1, rounds + 1):
        for mode in ("leases", "naive"):
            m = run(mode, jobs)
            rows.append(
                [
                    f"{mode} #{r}",
                    m["cards"],
                    m["creates"],
                    m["posts"],
                    m["dup_threads"],
                    m["per_replica"],
                    m["polls"],
                ]
            )
    table(
        [
            "run",
            "cards",
            "POST /v1/videos",
            "completion posts",
            "threads with >1",
            "posts by replica 1/2/3",
            "GET polls",
        ],
        rows,
        title=f"{REPLICAS} replicas, one SQLite file, {jobs} videos (expected: 12 cards, 12 creates, 12 completion posts)",
    )
    lease = [r[3] for r in rows if r[0].startswith("leases")]
    naive = [r[3] for r in rows if r[0].startswith("naive")]
    print(
        f"Reading: with leases every run posted {'/'.join(map(str, lease))} completions for {jobs} videos; the naive "
        f"loop posted {'/'.join(map(str, naive))} — the same link several times in one thread."
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Three bot replicas on one SQLite file, 12 videos: completion posts and creates, leases vs naive.

Each replica is a real `Runtime` (own Bolt app served over HTTP, own Knowlify and Slack clients, own
worker with `owner="replica-N"`), all on the same database file; the 12 /knowlify commands go to
the three replicas in turn (as a load balancer would). Scaled time: stage 0.2 s, window 1 s,
poll 0.083 s, tick 0.05 s.

  leases    the real workers: rows are claimed with UPDATE … RETURNING before they are touched.
  naive     the real workers create the videos (cards and POST /v1/videos as usual) but leave
            rendering rows alone; instead each replica runs the loop written below — select every
            row in state `rendering` (no claim), poll Knowlify, on complete post the link in the
            thread, then mark the row complete.

    python bench/replicas.py [--quick]
"""

from __future__ import annotations

import argparse
import threading
import time
from collections import Counter
from typing import Any

import _common
from _common import table

_common.clean_env()

from sqlalchemy import update  # noqa: E402
from sqlmodel import select  # noqa: E402

from bot.core import lifecycle as lc  # noqa: E402
from bot.core import texts  # noqa: E402
from bot.http_server import create_http_app  # noqa: E402
from bot.knowlify.errors import KnowlifyError  # noqa: E402
from bot.runtime import Runtime  # noqa: E402
from bot.worker import NEVER, Worker  # noqa: E402
from sandbox.servers import ServerThread  # noqa: E402
from sandbox.slack_driver import SlackDriver  # noqa: E402
from sandbox.slack_standin import Call  # noqa: E402
from sandbox.stack import SIGNING_SECRET, LocalStack, StackConfig  # noqa: E402
from storage.models import VideoJob  # noqa: E402

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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--quick", action="store_true", help="one run of each instead of three")
    args = parser.parse_args()
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

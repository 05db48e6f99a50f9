"""200 `/knowlify` commands within 10 s against the real bot, with and without its Knowlify budget.

Scaled time (window 60 s → 1 s, so 1/60): stage 0.1 s (6 s real), poll 5 s → 0.083 s, tick 0.01 s.
Knowlify renders 3 videos at a time per key; the rest are parked and promoted FIFO.

Figures per run: every ack time (client side, signed HTTP), cards and POST /v1/videos (none lost,
none doubled), 429s the simulator answered (none injected: every one is caused by the bot), the most
requests in any window-length span per bucket as the simulator recorded them vs the limit, time
until all completions were posted, and FIFO: were creates sent in arrival order, and were completions
posted in the order Knowlify finished them.

Baseline: the same burst with the budget switched off on the running bot — the Budget's limits are
raised to 10**6 (`runtime.knowlify._budget.limits`), and its reading of X-RateLimit-Remaining is
turned off (`budget.observe` replaced by a no-op), so only Knowlify's 429 + Retry-After pace it.
`--baseline-headers` keeps observe() on (limits raised only): a third run.

    python bench/burst.py [--quick] [--baseline-headers]
"""

from __future__ import annotations

import argparse
import statistics
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime

import _common
from _common import max_in_window, table

_common.clean_env()

from sqlalchemy import func  # noqa: E402
from sqlmodel import Session, select  # noqa: E402

from sandbox.slack_driver import SlackDriver  # noqa: E402
from sandbox.slack_standin import Call  # noqa: E402
from sandbox.stack import SIGNING_SECRET, LocalStack, StackConfig  # noqa: E402
from storage.models import VideoJob  # noqa: E402

WINDOW = 1.0
SCALE = WINDOW / 60.0
STAGE = 0.1
LIMITS = {"videos": 30, "edits": 10}


@dataclass
class Outcome:
    label: str
    acks: list[float]
    bad_acks: int
    cards: int
    creates: int
    creates_ok: int
    rejected: int
    busiest: dict[str, int]
    all_done: float | None
    completed: int
    arrival_creates: int  # pairs of jobs whose creates went out in the reverse of arrival order
    overtaken: int  # most later commands created before any one command
    knowlify_fifo: int  # pairs Knowlify finished in the reverse of arrival order
    post_order: int  # pairs whose completion posts went out in the reverse of arrival order
    post_lag: list[float]  # seconds from Knowlify's finish to the completion post
    max_attempts_waiting: int  # highest `attempts` seen on a row still waiting to be created
    parked: int


def inversions(seq: list[float]) -> int:
    return sum(1 for i in range(len(seq)) for j in range(i + 1, len(seq)) if seq[i] > seq[j])


def completion(c: Call) -> bool:
    return (
        c.method == "chat.postMessage" and bool(c.args.get("thread_ts")) and "ready" in c.args.get("text", "")
    )


def run(label: str, n: int, spread: float, budget: str) -> Outcome:
    config = StackConfig(
        stage_seconds=STAGE, window_seconds=WINDOW, poll_seconds=5.0 * SCALE, tick_seconds=0.01
    )
    stack = LocalStack(config).start()
    assert stack.runtime is not None and stack.bot_server is not None
    if budget != "on":
        b = stack.runtime.knowlify._budget
        b.limits = {k: 10**6 for k in b.limits}
        if budget == "off":
            b.observe = lambda bucket, headers: None  # type: ignore[method-assign]
    url = f"{stack.bot_server.url}/slack/events"
    local = threading.local()
    drivers: list[SlackDriver] = []
    lock = threading.Lock()

    def send(i: int, t0: float) -> tuple[float, bool]:
        d = getattr(local, "d", None)
        if d is None:
            d = local.d = SlackDriver(url, SIGNING_SECRET)
            with lock:
                drivers.append(d)
        delay = t0 + i * spread / n - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        start = time.perf_counter()
        r = d.command(f"Explain topic number {i + 1:03d}")
        return time.perf_counter() - start, r.status_code == 200 and "Got it" in r.text

    # Sample the worker's retry counter on rows waiting for their create (a budget wait counts as an
    # attempt; see the report): read-only, every 0.1 s.
    sampled = [0]
    stop_sampling = threading.Event()

    def sample() -> None:
        while not stop_sampling.wait(0.1):
            with stack.runtime.store.session() as s:  # type: ignore[union-attr]
                top = s.exec(select(func.max(VideoJob.attempts)).where(VideoJob.state == "ready")).one()
            sampled[0] = max(sampled[0], top or 0)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        t0_wall = time.time()
        t0 = time.perf_counter()
        with ThreadPoolExecutor(16) as pool:
            results = list(pool.map(lambda i: send(i, t0), range(n)))
        try:
            posts = stack.slack.wait_for(completion, n, timeout=170)
        except TimeoutError:
            posts = [c for c in stack.slack.calls if completion(c)]
        all_done = max(p.at for p in posts) - t0_wall if len(posts) >= n else None

        cards = [c for c in stack.slack.calls_of("chat.postMessage") if not c.args.get("thread_ts")]
        sim_calls = list(stack.sim.calls)
        busiest = {
            bucket: max_in_window([c.at for c in sim_calls if c.path.startswith(f"/v1/{bucket}")], WINDOW)
            for bucket in LIMITS
        }
        creates = [c for c in sim_calls if c.method == "POST" and c.path == "/v1/videos"]
        with Session(stack.runtime.engine) as s:
            jobs = list(s.exec(select(VideoJob).order_by(VideoJob.id)))
        # Arrival order = job id (rows are written before the ack). Knowlify's view of each video:
        views = {j.id: stack.sim.video(j.knowlify_uuid) for j in jobs if j.knowlify_uuid}
        ids = [j.id for j in jobs if j.id in views]
        ts = lambda v, k: datetime.fromisoformat(v[k]).timestamp()  # noqa: E731
        created = [ts(views[i], "created_at") for i in ids]
        finished = {i: ts(views[i], "updated_at") for i in ids if views[i]["status"] == "complete"}
        parked = sum(1 for i in finished if finished[i] - ts(views[i], "created_at") > 7 * STAGE + 0.05)
        card_of = {j.card_ts: j.id for j in jobs}
        post_at = {card_of[p.args["thread_ts"]]: p.at for p in posts}
        post_order = inversions([post_at[i] for i in ids if i in post_at])
        post_lag = [post_at[i] - finished[i] for i in ids if i in post_at and i in finished]
        return Outcome(
            label=label,
            acks=[r[0] for r in results],
            bad_acks=sum(1 for r in results if not r[1]),
            cards=len(cards),
            creates=len(creates),
            creates_ok=sum(1 for c in creates if c.status == 200),
            rejected=sum(1 for c in sim_calls if c.status == 429),
            busiest=busiest,
            all_done=all_done,
            completed=len(posts),
            arrival_creates=inversions(created),
            overtaken=max(
                (sum(1 for b in created[a + 1 :] if b < created[a]) for a in range(len(created))), default=0
            ),
            knowlify_fifo=inversions([finished[i] for i in ids if i in finished]),
            post_order=post_order,
            post_lag=post_lag,
            max_attempts_waiting=sampled[0],
            parked=parked,
        )
    finally:
        stop_sampling.set()
        sampler.join()
        for d in drivers:
            d.close()
        stack.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--quick", action="store_true", help="60 commands within 3 s")
    parser.add_argument("--baseline-headers", action="store_true", help="also run limits-only baseline")
    args = parser.parse_args()
    n, spread = (60, 3.0) if args.quick else (200, 10.0)

    runs = [run("bot (budget on)", n, spread, "on"), run("baseline: budget off", n, spread, "off")]
    if args.baseline_headers:
        runs.append(run("baseline: limits off, headers on", n, spread, "headers"))

    pairs = n * (n - 1) // 2

    def col(f):  # type: ignore[no-untyped-def]
        return [f(o) for o in runs]

    rows = [
        ["commands sent", *col(lambda o: f"{len(o.acks)} in {spread:.0f} s")],
        [
            "ack median / worst ms",
            *col(lambda o: f"{statistics.median(o.acks) * 1000:.0f} / {max(o.acks) * 1000:.0f}"),
        ],
        ["acks over 3 s / not ok", *col(lambda o: f"{sum(1 for a in o.acks if a > 3)} / {o.bad_acks}")],
        ["status cards posted", *col(lambda o: o.cards)],
        ["POST /v1/videos (200 OK)", *col(lambda o: f"{o.creates} ({o.creates_ok})")],
        ["429s caused by the bot", *col(lambda o: o.rejected)],
        *[
            [f"max {b} reqs in any {WINDOW:.0f} s (limit {lim})", *col(lambda o, b=b: o.busiest[b])]
            for b, lim in LIMITS.items()
        ],
        ["completion posts", *col(lambda o: o.completed)],
        [
            "all completed after s (real-equiv.)",
            *col(
                lambda o: f"{o.all_done:.1f} ({o.all_done / SCALE / 60:.1f} min)" if o.all_done else "not all"
            ),
        ],
        ["parked at Knowlify", *col(lambda o: o.parked)],
        [f"creates out of arrival order (of {pairs} pairs)", *col(lambda o: o.arrival_creates)],
        ["most later commands created before one", *col(lambda o: o.overtaken)],
        ["Knowlify finishes out of arrival order", *col(lambda o: o.knowlify_fifo)],
        ["completion posts out of arrival order", *col(lambda o: o.post_order)],
        [
            "post after Knowlify finish, median / worst s",
            *col(
                lambda o: (
                    f"{statistics.median(o.post_lag) / SCALE:.0f} / {max(o.post_lag) / SCALE:.0f} (real)"
                )
            ),
        ],
        ["max `attempts` on a row awaiting its create", *col(lambda o: o.max_attempts_waiting)],
    ]
    table(
        ["", *[o.label for o in runs]],
        rows,
        title=f"Burst: {n} /knowlify in {spread:.0f} s (stage {STAGE} s, window {WINDOW} s = 60 s scaled 1/60)",
    )
    bot, base = runs[0], runs[1]
    print(
        f"Reading: with the budget, {bot.rejected} 429s and at most {bot.busiest['videos']} videos requests in any "
        f"window (limit 30); without it Knowlify answered {base.rejected} 429s and saw up to "
        f"{base.busiest['videos']}. No command lost: {bot.cards} cards, {bot.creates_ok} creates, "
        f"{bot.completed} completions. FIFO: creates out of arrival order in {bot.arrival_creates} of {pairs} "
        "pairs, and Knowlify (FIFO itself) finishes them in that order."
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

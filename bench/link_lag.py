"""How long after a render completes its link reaches the thread: the bot vs a naive poller at the
same budget, side by side on one Knowlify simulator, in the same run.

lag = when the link was posted in the thread (bot) or the poll saw `complete` (naive)
      − when the simulator completed the render (its `updated_at` at completion).

Each render takes D seconds, D drawn uniformly from 40–120 s (seeded, the same list for both
pollers): the simulator runs 7 timed stages of D / 7 each. Knowlify's rate-limit window is the
real 60 s and KNOWLIFY_POLL_SECONDS is 5, unless --scale shrinks *all* times uniformly (renders,
window, poll floor, worker tick), which keeps every ratio the same except the bot's fixed 1 s
budget margin and the fixed cost of each HTTP call, both of which weigh more when time is
shrunk: --scale 1 is the measurement, smaller scales are for quick looks. Figures are printed in
real-time seconds either way.

  bot    the served bot (LocalStack: signed /knowlify over HTTP, real worker, budget, SQLite)
  naive  its own API key on the same simulator: POST each render, then GET each one every
         60 / floor(30 / N) s (N = renders in flight) until it is complete; a 429 waits for the
         next turn

Cases: (a) 8 renders at once on one key and 8 render slots (nothing parks); (b) 30 renders at
once with Knowlify's 3-render cap (27 park and are promoted in order).

    python bench/link_lag.py [--case a|b|both] [--scale 1.0] [--seed 8] [--quick]
"""

from __future__ import annotations

import argparse
import random
import re
import statistics
import threading
import time
from dataclasses import dataclass
from datetime import datetime

import _common
from _common import percentile, table

_common.clean_env()

import httpx  # noqa: E402
from sqlmodel import Session, select  # noqa: E402

from sandbox.slack_standin import Call  # noqa: E402
from sandbox.stack import API_KEY, LocalStack, StackConfig  # noqa: E402
from storage.models import VideoJob  # noqa: E402

NAIVE_KEY = "kn_" + "7e" * 32
POLL = 5.0
WINDOW = 60.0
TICK = 0.5
LIMIT = 30
CASES = {"a": (8, 8), "b": (30, 3)}  # renders, render slots per key
_LENGTH = re.compile(r"\[(\d+(?:\.\d+)?) s\]")


@dataclass
class Figures:
    lags: list[float]
    requests: int
    rejected: int
    renders: int

    def row(self, name: str) -> list[str]:
        lags = self.lags
        return [
            name,
            f"{len(lags)}/{self.renders}",
            f"{statistics.mean(lags):.1f}" if lags else "-",
            f"{percentile(lags, 50):.1f}" if lags else "-",
            f"{percentile(lags, 95):.1f}" if lags else "-",
            f"{max(lags):.1f}" if lags else "-",
            f"{self.requests / self.renders:.1f}",
            str(self.rejected),
        ]


def epoch(iso: str) -> float:
    return datetime.fromisoformat(iso).timestamp()


def naive(base: str, tasks: list[str], interval: float, scale: float, seen: dict[str, float]) -> None:
    """Create every render, then poll each one at a fixed interval, staggered evenly over it."""
    with httpx.Client(base_url=base, headers={"X-API-Key": NAIVE_KEY}, timeout=30) as http:
        uuids: list[str] = []
        for task in tasks:
            while True:
                r = http.post("/v1/videos", json={"videos": [{"task": task}]})
                if r.status_code == 200:
                    uuids.append(r.json()["results"][0]["uuid"])
                    break
                time.sleep(float(r.headers.get("Retry-After", 1)) * scale)
        step = interval * scale / len(uuids)
        due = {u: time.monotonic() + interval * scale + i * step for i, u in enumerate(uuids)}
        while due:
            uuid = min(due, key=lambda u: due[u])
            time.sleep(max(0.0, due[uuid] - time.monotonic()))
            try:
                r = http.get(f"/v1/videos/{uuid}")
            except httpx.TransportError:  # the server closed an idle keep-alive connection: again
                r = http.get(f"/v1/videos/{uuid}")
            if r.status_code == 200 and r.json()["status"] in ("complete", "failed"):
                seen[uuid] = time.time()
                del due[uuid]
            else:
                due[uuid] += interval * scale


def run(case: str, scale: float, seed: int) -> dict[str, Figures]:
    renders, slots = CASES[case]
    rng = random.Random(seed)
    lengths = [rng.uniform(40.0, 120.0) for _ in range(renders)]

    def stage_seconds(task: str) -> float:
        match = _LENGTH.search(task)
        return (float(match.group(1)) if match else 80.0) / 7 * scale

    config = StackConfig(
        window_seconds=WINDOW * scale,
        poll_seconds=POLL * scale,
        tick_seconds=TICK * scale,
        sim={"video_stage_seconds": stage_seconds, "concurrent_renders": slots},
    )
    stack = LocalStack(config).start()
    assert stack.driver is not None and stack.runtime is not None
    try:
        tasks = [f"Explain topic {i + 1} [{d:.1f} s]" for i, d in enumerate(lengths)]
        seen: dict[str, float] = {}
        interval = WINDOW / max(1, LIMIT // renders)
        thread = threading.Thread(
            target=naive, args=(stack.sim_server.url, tasks, interval, scale, seen), daemon=True
        )
        thread.start()
        for task in tasks:
            assert stack.driver.command(task).status_code == 200

        def posted(c: Call) -> bool:
            return (
                c.method == "chat.postMessage"
                and bool(c.args.get("thread_ts"))
                and "ready" in c.args.get("text", "")
            )

        longest = (max(lengths) + sum(lengths) / slots) * scale
        posts = stack.slack.wait_for(posted, renders, timeout=3 * longest + 120 * scale + 60)
        thread.join(timeout=3 * longest + 60)
        at_ts = {c.response.get("ts"): c.at for c in posts}
        deadline = time.monotonic() + 30
        while True:  # each link's ts is stored right after its post
            with Session(stack.runtime.store.engine) as s:
                jobs = list(s.exec(select(VideoJob)))
            if all(j.final_ts for j in jobs) or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        bot_lags = []
        for job in jobs:
            if job.knowlify_uuid and job.final_ts in at_ts:
                done = epoch(stack.sim.video(job.knowlify_uuid)["updated_at"])
                bot_lags.append((at_ts[job.final_ts] - done) / scale)
        naive_lags = [(t - epoch(stack.sim.video(u)["updated_at"])) / scale for u, t in seen.items()]
        out = {}
        for name, key, lags in (("bot", API_KEY, bot_lags), ("naive", NAIVE_KEY, naive_lags)):
            calls = [c for c in stack.sim.calls if c.key == key[-6:]]
            out[name] = Figures(
                lags=lags,
                requests=len(calls),
                rejected=sum(1 for c in calls if c.status == 429),
                renders=renders,
            )
        return out
    finally:
        stack.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--case", choices=("a", "b", "both"), default="both")
    parser.add_argument("--scale", type=float, default=1.0, help="time scale (1 = real 60 s window)")
    parser.add_argument("--seed", type=int, default=8, help="seed of the render lengths")
    parser.add_argument("--quick", action="store_true", help="time scaled 1/10 (about 2 minutes)")
    args = parser.parse_args()
    if args.quick:
        args.scale = 0.1
    cases = ("a", "b") if args.case == "both" else (args.case,)
    for case in cases:
        renders, slots = CASES[case]
        figures = run(case, args.scale, args.seed)
        rows = [f.row(name) for name, f in figures.items()]
        bot, base = figures["bot"], figures["naive"]
        ratio = (
            f"{statistics.mean(bot.lags) / statistics.mean(base.lags):.2f}"
            if bot.lags and base.lags
            else "-"
        )
        table(
            ["poller", "done", "mean lag s", "p50", "p95", "max", "requests/render", "429s"],
            rows,
            title=(
                f"({case}) {renders} renders of 40-120 s at once, {slots} render slots per key; "
                f"window {WINDOW * args.scale:g} s, time scale {args.scale:g} (figures in real seconds)"
            ),
        )
        print(f"bot / naive mean lag: {ratio}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

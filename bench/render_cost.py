"""How many Knowlify requests a render costs at KNOWLIFY_POLL_SECONDS=5, next to naive pollers.

Knowlify only says a render "takes minutes", so the stage duration is an assumption: each row assumes
S seconds per stage (10, 30, 60) and runs with all time scaled by 1/100 (S = 30 s → stage 0.3 s,
poll 5 s → 0.05 s, window 60 s → 0.6 s, worker tick 0.5 s → 0.005 s). The simulator runs 7 timed
steps per render — pending, queued and the 5 render stages (voiceover … generating_frames) — so a
render lasts 7·S and "polls per stage" is polls / 7. Figures are converted back to real seconds.

In the same run and on the same simulator (each poller its own API key, i.e. its own Knowlify caller
with its own limits and 3 render slots):
  bot        the real bot (LocalStack: signed /knowlify, real worker and budget, real SQLite)
  naive 5 s  POST once, then GET every 5 s until terminal, whatever the answer (429s included)
  naive 2.2s the same every ~2.2 s (the TP-explainers third-party client's pace)

    python bench/render_cost.py [--quick]
"""

from __future__ import annotations

import argparse
import threading
import time
from dataclasses import dataclass

import _common
from _common import max_in_window, table

_common.clean_env()

import httpx  # noqa: E402

from sandbox.slack_standin import Call  # noqa: E402
from sandbox.stack import API_KEY, LocalStack, StackConfig  # noqa: E402

SCALE = 0.01  # scaled seconds per real second
POLL = 5.0
WINDOW = 60.0
TICK = 0.5
LIMIT = 30
NAIVE = {"naive 5 s": (5.0, "kn_" + "b1" * 32), "naive 2.2 s": (2.2, "kn_" + "c2" * 32)}


@dataclass
class Result:
    creates: int
    polls: int
    rejected: int  # 429s
    total: int  # every request sent, 429s included
    busiest_minute: int  # most requests sent in any 60 s (real) span, 429s included
    done_after: float  # real seconds from the first command to the last completion seen


def naive_render(base: str, key: str, interval: float, t0: float, done: list[float]) -> None:
    """The baseline: create, then poll at a fixed interval regardless of status or 429s."""
    with httpx.Client(base_url=base, headers={"X-API-Key": key}, timeout=10) as http:
        uuid = None
        while uuid is None:
            r = http.post("/v1/videos", json={"videos": [{"task": "Explain how HTTPS works"}]})
            if r.status_code == 200:
                uuid = r.json()["results"][0]["uuid"]
            else:
                time.sleep(interval * SCALE)
        while True:
            time.sleep(interval * SCALE)
            r = http.get(f"/v1/videos/{uuid}")
            if r.status_code == 200 and r.json()["status"] in ("complete", "failed"):
                done.append(time.monotonic() - t0)
                return


def completion(c: Call) -> bool:
    return (
        c.method == "chat.postMessage" and bool(c.args.get("thread_ts")) and "ready" in c.args.get("text", "")
    )


def run(stage: float, renders: int) -> dict[str, Result]:
    """One fresh stack; the bot and both naive pollers start `renders` renders each, at the same time."""
    config = StackConfig(
        stage_seconds=stage * SCALE,
        window_seconds=WINDOW * SCALE,
        poll_seconds=POLL * SCALE,
        tick_seconds=TICK * SCALE,
    )
    stack = LocalStack(config).start()
    assert stack.driver is not None
    try:
        naive_done: dict[str, list[float]] = {name: [] for name in NAIVE}
        t0 = time.monotonic()
        threads = [
            threading.Thread(
                target=naive_render, args=(stack.sim_server.url, key, interval, t0, naive_done[name])
            )
            for name, (interval, key) in NAIVE.items()
            for _ in range(renders)
        ]
        for t in threads:
            t.start()
        for i in range(renders):
            assert stack.driver.command(f"Explain how HTTPS works, part {i + 1}").status_code == 200
        posts = stack.slack.wait_for(completion, renders, timeout=20 * 7 * stage * SCALE + 30)
        bot_done = max(p.at for p in posts) - (time.time() - (time.monotonic() - t0))
        for t in threads:
            t.join(timeout=60)
        results: dict[str, Result] = {}
        for name, key, done in [("bot", API_KEY, [bot_done])] + [
            (n, k, naive_done[n]) for n, (_, k) in NAIVE.items()
        ]:
            calls = [c for c in stack.sim.calls if c.key == key[-6:]]
            results[name] = Result(
                creates=sum(
                    1 for c in calls if c.method == "POST" and c.path == "/v1/videos" and c.status == 200
                ),
                polls=sum(1 for c in calls if c.method == "GET"),
                rejected=sum(1 for c in calls if c.status == 429),
                total=len(calls),
                busiest_minute=max_in_window([c.at for c in calls], WINDOW * SCALE),
                done_after=max(done) / SCALE if done else float("nan"),
            )
        return results
    finally:
        stack.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--quick", action="store_true", help="one stage duration, 1 and 6 renders")
    args = parser.parse_args()
    stages = (30.0,) if args.quick else (10.0, 30.0, 60.0)
    counts = (1, 6) if args.quick else (1, 3, 6)

    rows = []
    for stage in stages:
        for name, r in run(stage, 1).items():
            total = r.total
            rows.append(
                [
                    f"{stage:.0f} s",
                    name,
                    f"{7 * stage:.0f}",
                    r.creates,
                    r.polls,
                    r.rejected,
                    total,
                    f"{r.polls / 7:.1f}",
                    f"{r.done_after:.0f}",
                ]
            )
    table(
        [
            "stage",
            "poller",
            "render s",
            "creates",
            "polls",
            "429s",
            "requests",
            "polls/stage",
            "done seen at s",
        ],
        rows,
        title="Knowlify requests for ONE render (real-time equivalents; time scaled 1/100)",
    )
    bot30 = next(r for r in rows if r[0] == "30 s" and r[1] == "bot")
    n30 = next(r for r in rows if r[0] == "30 s" and r[1] == "naive 2.2 s")
    print(
        f"Reading: alone, the bot polls at the 5 s pace (slower while Knowlify shows 'pending'): {bot30[6]} "
        f"requests for a 30 s-stage render vs {n30[6]} for the 2.2 s client; cost grows linearly with render time."
    )

    rows = []
    stage = 30.0
    for k in counts:
        for name, r in run(stage, k).items():
            rows.append(
                [
                    k,
                    name,
                    r.total,
                    f"{r.total / k:.0f}",
                    r.rejected,
                    r.busiest_minute,
                    f"{LIMIT}",
                    "yes" if r.busiest_minute <= LIMIT else "NO",
                    f"{r.done_after:.0f}",
                ]
            )
    table(
        [
            "renders",
            "poller",
            "requests",
            "per render",
            "429s",
            "max in any 60 s",
            "budget",
            "within",
            "all done seen at s",
        ],
        rows,
        title=f"videos bucket use with simultaneous renders (stage {stage:.0f} s; Knowlify runs 3 at a time)",
    )
    worst_bot = max(r[5] for r in rows if r[1] == "bot")
    print(
        f"Reading: the bot never sends more than {worst_bot} videos-bucket requests in any 60 s (budget {LIMIT}; "
        "polls may use 24, 6 stay free for creates), so more renders mean slower polling, not 429s; "
        "the naive pollers scale with the number of renders and get 429s."
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

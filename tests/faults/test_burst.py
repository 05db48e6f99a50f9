"""A burst of 200 slash commands within 10 s: each acknowledged within 3 s, none lost, the parked
ones complete in order, and Knowlify's budget is never exceeded (no 429 caused by the bot)."""

from __future__ import annotations

import itertools
import time
from concurrent.futures import ThreadPoolExecutor

from bot.knowlify.budget import DEFAULT_LIMITS
from tests.faults import report
from tests.faults.conftest import make_stack
from tests.faults.conversation import ACK_LIMIT
from tests.faults.invariants import (
    Ledger,
    check,
    knowlify_429s,
    max_in_window,
    settle,
    sim_videos,
    video_rows,
)
from tests.helpers import ack_text

BURST = 200
WITHIN = 10.0


def test_burst_of_200_commands_in_10s(baseline, db_url):
    # Renders and windows are scaled down further so that 200 videos (3 render at a time) finish
    # quickly; the budget rule is the same: 30 video-bucket calls per window.
    window = 0.5
    stack = make_stack(stage_seconds=0.02, window_seconds=window, database_url=db_url).start()
    try:
        driver, ledger = stack.driver, Ledger()
        assert driver is not None
        prompts = [f"burst-{i:03d} how rivers meander" for i in range(BURST)]

        def send(prompt: str) -> tuple[float, int, str]:
            ledger.command(prompt)
            t0 = time.monotonic()
            response = driver.command(prompt)
            return time.monotonic() - t0, response.status_code, ack_text(response)

        started = time.monotonic()
        with ThreadPoolExecutor(10) as pool:
            answers = list(pool.map(send, prompts))
        sent_in = time.monotonic() - started
        assert sent_in <= WITHIN, f"the burst took {sent_in:.1f}s to send"
        slow = [
            (p, round(s, 2), code)
            for p, (s, code, _) in zip(prompts, answers, strict=True)
            if s >= ACK_LIMIT or code != 200
        ]
        assert not slow, f"{len(slow)} commands not acknowledged within {ACK_LIMIT}s: {slow[:5]}"
        assert all("Got it" in text for _, _, text in answers)

        settle(stack, ledger, timeout=90)
        outcome = check(stack, ledger)

        # Knowlify's budget: no 429, and no window-long span holding more than the limit.
        assert not knowlify_429s(stack)
        video_calls = [c.at for c in stack.sim.calls if c.path.startswith("/v1/videos")]
        assert max_in_window(video_calls, window) <= DEFAULT_LIMITS["videos"]

        # The bot sent the creates in the order it recorded the commands (job ids), and Knowlify (which renders
        # three at a time and parks the rest) therefore finished them in that order.
        jobs = video_rows(stack)
        order = [
            c.body["videos"][0]["task"]
            for c in stack.sim.calls
            if c.method == "POST" and c.path == "/v1/videos"
        ]
        taken = [j["prompt"] for j in sorted(jobs, key=lambda j: j["id"])]
        sent_at = {p: i for i, p in enumerate(order)}
        delayed = [
            (q[:9], sent_at[q] - r)
            for r, q in enumerate(taken)
            if any(sent_at[p] < sent_at[q] for p in taken[r + 1 :])
        ]
        assert order == taken, (
            f"{len(delayed)} creates were sent after a later command's (command, places lost): {delayed[:8]}"
        )
        finished = {v["task"]: stack.sim.video(v["uuid"]) for v in sim_videos(stack)}
        by_completion = sorted(order, key=lambda p: finished[p]["updated_at"])
        assert by_completion == order, "Knowlify finished the videos out of request order"
        ready = [
            c.args["text"]
            for c in stack.slack.calls_of("chat.postMessage")
            if "is ready" in c.args.get("text", "")
        ]
        told_order = [next(p for p in order if p[:9] in t) for t in ready]
        inversions = sum(1 for a, b in itertools.pairwise(told_order) if a > b)
        print(f"\nburst: ready posts out of order: {inversions} inversions of adjacent pairs")
    finally:
        stack.stop()
    report.record(f"burst of {BURST} commands in {sent_in:.1f}s", outcome, baseline)

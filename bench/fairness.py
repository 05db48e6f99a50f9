"""One busy workspace must not starve another: workspace A submits 30 videos, then workspace B
submits 1. How long until B's video reaches Knowlify (its create) and until its link is posted?

  distributed  A and B installed through OAuth, each with its own Knowlify key: a worker per
               workspace, each claiming only its rows, each under its own key's budget, and the
               tick starting with a different workspace each time
  one key      the baseline: the same 31 videos through one workspace and one key (the
               single-workspace set-up), B's video last in the queue

Time is scaled: Knowlify's rate-limit window is 6 s instead of 60 (the budget is still 30 requests
to the videos bucket per window and key), a render stage 0.3 s. A's 30 creates use up its key's
window, so in the baseline B's create waits for that window to slide.

    python bench/fairness.py [--quick]
"""

from __future__ import annotations

import argparse
import time

import _common
from _common import table

_common.clean_env()

from bot.listeners.connect import CONNECT_MODAL, KEY_BLOCK, KEY_INPUT  # noqa: E402
from sandbox.slack_driver import SlackDriver  # noqa: E402
from sandbox.stack import LocalStack, StackConfig  # noqa: E402

BETA = "T0BETA002"
KEY_A, KEY_B = "kn_" + "1a" * 32, "kn_" + "2b" * 32


def connect(driver: SlackDriver, key: str, user: str) -> None:
    view = {"callback_id": CONNECT_MODAL, "state": {"values": {KEY_BLOCK: {KEY_INPUT: {"value": key}}}}}
    assert "errors" not in driver.view_submission(view, user=user).text


def run(distributed: bool, burst: int, window: float) -> dict[str, float]:
    config = StackConfig(
        distributed=distributed,
        stage_seconds=0.3,
        poll_seconds=0.1,
        tick_seconds=0.02,
        window_seconds=window,
        api_key=KEY_A,
    )
    stack = LocalStack(config).start()
    try:
        alpha = stack.driver
        assert alpha is not None
        beta, beta_user, beta_channel = alpha, "U0BOB0002", "C0DESIGN1"
        if distributed:
            stack.slack.add_workspace(BETA, "beta")
            stack.slack.add_user("U0BEA0001", name="bea", team_id=BETA)
            stack.slack.add_channel("C0BETA001", team_id=BETA)
            stack.install(stack.slack.team_id, "U0ADA0001")
            stack.install(BETA, "U0BEA0001")
            connect(alpha, KEY_A, "U0ADA0001")
            beta, beta_user, beta_channel = stack.driver_for(BETA), "U0BEA0001", "C0BETA001"
            connect(beta, KEY_B, "U0BEA0001")
        for i in range(burst):
            alpha.command(f"Busy workspace video {i}")
        started = time.monotonic()
        beta.command("The other workspace's one video", user=beta_user, channel=beta_channel)

        def created(c) -> bool:  # type: ignore[no-untyped-def]
            return (
                c.method == "POST"
                and c.path == "/v1/videos"
                and c.body["videos"][0]["task"] == "The other workspace's one video"
            )

        stack.sim.wait_for_calls(created, timeout=120)
        created_at = time.monotonic() - started
        stack.slack.wait_for(
            lambda c: c.method == "chat.postMessage"
            and c.args.get("thread_ts")
            and c.args.get("channel") == beta_channel
            and "ready" in str(c.args.get("text", "")).lower()
            and any(
                "The other workspace" in str(m.args.get("text", ""))
                for m in stack.slack.calls_of("chat.postMessage")
                if m.response.get("ts") == c.args.get("thread_ts")
            ),
            timeout=120,
        )
        linked_at = time.monotonic() - started
        a_creates = sum(1 for c in stack.sim.calls if c.method == "POST" and c.path == "/v1/videos") - 1
        return {"created": created_at, "linked": linked_at, "a_creates_before": a_creates}
    finally:
        stack.stop()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="a 3 s window")
    args = parser.parse_args()
    window = 3.0 if args.quick else 6.0
    rows = []
    for name, distributed in (("distributed (own key)", True), ("one key (baseline)", False)):
        result = run(distributed, 30, window)
        rows.append([name, f"{result['created']:.2f}", f"{result['linked']:.2f}"])
    table(
        ["B's 1 video after A's 30", "to its create (s)", "to its link (s)"],
        rows,
        title=f"Fairness: workspace A submits 30 videos, then B 1 (rate-limit window {window:.0f} s, 30 per window)",
    )
    print("\nWith its own key and its own worker turn, B does not wait for A's queue or A's budget.")


if __name__ == "__main__":
    main()

"""Ack time of a `:rewind:` reaction whose revert needs `users.info` while Slack rate-limits it.

The bot: listeners use a client without retry handlers (1 s timeout), so a 429 is answered at once
with "couldn't check your permissions". Baseline, same run: the listener given the worker's client,
whose RateLimitErrorRetryHandler waits out each Retry-After inside the listener (how it was before).

    python bench/permission_ack.py [--quick]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bot.slack_ops import SlackOps
from sandbox.stack import LocalStack, StackConfig

ADMIN, BOB = "U0ADM0003", "U0BOB0002"


def measure(stack: LocalStack, reply_ts: str, rounds: int, retry_after: int) -> list[float]:
    times = []
    for _ in range(rounds):
        stack.slack.inject("users.info", status=429, retry_after=retry_after, times=4)
        started = time.monotonic()
        stack.driver.reaction(reply_ts, user=ADMIN)
        times.append(time.monotonic() - started)
        with stack.slack._lock:  # drop whatever is left of the injected 429s before the next round
            stack.slack._faults.pop("users.info", None)
    return times


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    rounds = 2 if args.quick else 5
    with LocalStack(StackConfig(stage_seconds=0.1, poll_seconds=0.05, tick_seconds=0.02)) as stack:
        stack.driver.command("Explain tides")
        stack.slack.wait_for(lambda c: "Your video is ready" in (c.args.get("text") or ""), timeout=30)
        thread = stack.slack.calls_of("chat.postMessage")[0].response["ts"]
        _, reply_ts = stack.driver.reply("<@U0KN0WBOT> make scene 2 slower", thread_ts=thread, user=BOB)
        stack.slack.wait_for(lambda c: "Edit applied" in (c.args.get("text") or ""), timeout=30)
        runtime = stack.runtime
        assert runtime is not None
        ours = measure(stack, reply_ts, rounds, retry_after=1)
        fast = runtime.services.slack
        runtime.services.slack = SlackOps(runtime.client)  # the worker's retrying client
        baseline = measure(stack, reply_ts, rounds, retry_after=1)
        runtime.services.slack = fast
    print("users.info answers 429 (Retry-After 1 s) four times; admin reacts :rewind: on Bob's edit")
    print("| listener client | reactions | ack mean s | ack max s |")
    print("| --- | ---: | ---: | ---: |")
    for name, xs in (("bot: no retry handler, 1 s timeout", ours), ("baseline: retrying client", baseline)):
        print(f"| {name} | {len(xs)} | {statistics.mean(xs):.2f} | {max(xs):.2f} |")
    print("Slack's limit is 3 s; past it Slack marks the delivery failed and retries it.")


if __name__ == "__main__":
    main()

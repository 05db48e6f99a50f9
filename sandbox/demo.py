"""`knowlify-slack demo`: the whole conversation, offline, printed as a Slack user would see it.

It starts the bundled Knowlify simulator and the Slack stand-in on 127.0.0.1, runs the real bot
(HTTP mode, a temporary SQLite file, the real worker) and plays a user: create a video, watch the
card move, edit it by replying in the thread, undo the edit with the revert emoji.
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable

from sandbox.slack_driver import ack_text
from sandbox.slack_standin import Call
from sandbox.stack import LocalStack, StackConfig

PROMPT = "Explain how HTTPS works --duration 60 --aspect 9:16 --type explainer --primary #0066cc"


class Narrator:
    """Prints every new thing the bot shows in Slack, once, in order."""

    def __init__(self, stack: LocalStack, out: Callable[[str], None]) -> None:
        self.stack = stack
        self.out = out
        self.seen = 0
        self.start = time.monotonic()

    def _line(self, who: str, text: str) -> None:
        stamp = f"{time.monotonic() - self.start:5.1f}s"
        body = self.stack.slack._render_text(text).splitlines() or [""]
        self.out(f"  [{stamp}] {who}{body[0]}")
        for line in body[1:]:
            self.out(" " * (len(stamp) + 5 + len(who)) + line)

    def show(self, call: Call) -> None:
        args, m = call.args, call.method
        text = args.get("text") or self.stack.slack._render_blocks(args.get("blocks"))
        if m == "chat.postMessage" and call.response.get("ok"):
            where = "thread reply" if args.get("thread_ts") else "card posted "
            self._line(f"{where} | ", text)
        elif m == "chat.update" and call.response.get("ok"):
            self._line("card update  | ", text)
        elif m == "chat.postEphemeral":
            self._line("only you see | ", text)

    def until(self, predicate: Callable[[Call], bool], timeout: float = 60.0) -> None:
        """Print calls as they arrive until one matches."""
        deadline = time.monotonic() + timeout
        while True:
            calls = self.stack.slack.wait_for(
                lambda c: True, count=self.seen + 1, timeout=max(0.1, deadline - time.monotonic())
            )
            for call in calls[self.seen :]:
                self.seen += 1
                self.show(call)
                if predicate(call):
                    return


def _posted(fragment: str) -> Callable[[Call], bool]:
    return lambda c: (
        c.method in ("chat.postMessage", "chat.postEphemeral") and fragment in (c.args.get("text") or "")
    )


def run_demo(stage_seconds: float = 0.3, out: Callable[[str], None] = print) -> int:
    logging.basicConfig(level=logging.WARNING)
    # Every Knowlify duration is scaled down together: stages, poll interval and rate-limit window.
    config = StackConfig(
        stage_seconds=stage_seconds,
        poll_seconds=max(0.05, stage_seconds / 3),
        tick_seconds=0.05,
        window_seconds=max(1.0, stage_seconds * 10),
    )
    with LocalStack(config) as stack:
        assert stack.driver is not None and stack.runtime is not None
        narrator = Narrator(stack, out)
        out("knowlify-slack demo: the real bot, the Knowlify simulator and a Slack stand-in on 127.0.0.1")
        out(f"(Knowlify render stages take {stage_seconds}s here instead of minutes)\n")

        out(f"@ada types: /knowlify {PROMPT}")
        t0 = time.monotonic()
        ack = stack.driver.command(PROMPT)
        out(f"  [ack in {1000 * (time.monotonic() - t0):.0f} ms] only you see | {ack_text(ack)}")
        narrator.until(_posted("Your video is ready"))
        card_ts = stack.slack.calls_of("chat.postMessage")[0].response["ts"]
        narrator.until(lambda c: c.method == "chat.update" and "Done" in (c.args.get("text") or ""))

        out("\n@ada replies in the thread: Make scene 2 more dramatic")
        _, reply_ts = stack.driver.reply("Make scene 2 more dramatic", thread_ts=card_ts)
        narrator.until(_posted("Edit applied"))

        out("\n@bob reacts :rewind: on that reply (he neither asked for the edit nor made the video)")
        stack.driver.reaction(reply_ts, user="U0BOB0002")
        narrator.until(lambda c: c.method == "chat.postEphemeral")

        out("\n@ada reacts :rewind: on her reply")
        stack.driver.reaction(reply_ts)
        narrator.until(_posted("Edit reverted"))
        # The card follows the revert with an update of its own: show the channel once it has come.
        narrator.until(lambda c: c.method == "chat.update" and c.args.get("ts") == card_ts, timeout=30)

        out("\n@ada types: /knowlify list")
        listing = ack_text(stack.driver.command("list"))
        narrator._line("only you see | ", listing)

        out("\n@ada types: /knowlify --duration 10 Quarterly recap")
        narrator._line("only you see | ", ack_text(stack.driver.command("--duration 10 Quarterly recap")))

        calls = stack.sim.calls
        creates = sum(1 for c in calls if c.method == "POST" and c.path == "/v1/videos")
        edits = sum(1 for c in calls if c.method == "POST" and c.path == "/v1/edits")
        polls = sum(1 for c in calls if c.method == "GET")
        reverts = sum(1 for c in calls if c.method == "POST" and c.path.endswith("/revert"))
        out(f"\nKnowlify received {creates} create, {edits} edit, {reverts} revert and {polls} polls.")
        out("\nThe channel as a Slack user sees it now:\n")
        out(stack.slack.transcript())
    return 0


if __name__ == "__main__":
    sys.exit(run_demo())

"""The bot process is killed (SIGKILL) at random moments of a run of 10 videos with edits and
reverts, and restarted each time on the same database. Afterwards every job is where Knowlify says
it is, each result was posted once, and nothing was created twice.

The kill points come from `random.Random(seed)`; the seed is printed, and FAULT_SEED=<n> replays it.
"""

from __future__ import annotations

import os
import random
import threading
import time
from collections.abc import Callable
from typing import Any

import httpx

from sandbox.bot_process import BotProcess
from sandbox.slack_driver import SlackDriver
from sandbox.stack import LocalStack
from tests.faults import report
from tests.faults.conftest import make_stack
from tests.faults.invariants import (
    EDIT_FINAL,
    Ledger,
    Outcome,
    card_ts_of,
    check,
    edit_rows,
    knowlify_429s,
    settle,
    unsettled,
    video_rows,
    wait_for,
)

VIDEOS = 10
EDITED = 6  # videos 0–5 get an edit reply (most arrive during the render and are kept)
REVERTED = 3  # the edits of videos 0–2 are reverted once done
KILLS = 4


class KilledRun:
    """Plays the users against a bot process that a second thread SIGKILLs and restarts."""

    def __init__(self, stack: LocalStack, bot: BotProcess, seed: int, kills: int) -> None:
        self.stack, self.bot, self.kills = stack, bot, kills
        self.script_rng = random.Random(seed)
        self.kill_rng = random.Random(seed + 1)
        self.ledger = Ledger()
        self.generation = 0
        self.changed = threading.Condition()
        self.done_killing = threading.Event()
        self.kill_times: list[float] = []

    # --- the killer -----------------------------------------------------------------------

    def killer(self) -> None:
        try:
            for _ in range(self.kills):
                time.sleep(self.kill_rng.uniform(0.3, 1.8))  # a random kill point
                with self.changed:
                    self.bot.kill()
                    self.kill_times.append(time.time())
                    self.bot.start()
                    self.generation += 1
                    self.changed.notify_all()
        finally:
            self.done_killing.set()

    # --- the users ------------------------------------------------------------------------

    def send(self, what: str, request: Callable[[SlackDriver, int], httpx.Response]) -> None:
        """Deliver one request until the bot answers 200, as Slack would retry (same ids every time)."""
        deadline = time.monotonic() + 30
        attempt = 0
        while True:
            with self.changed:
                driver, generation = self.bot.driver, self.generation
            assert driver is not None
            try:
                if request(driver, attempt).status_code == 200:
                    return
            except (httpx.HTTPError, RuntimeError):  # killed mid-request, or the driver was replaced
                pass
            attempt += 1
            if time.monotonic() > deadline:
                raise AssertionError(f"{what}: the bot never answered")
            with self.changed:  # wait for the restart (or retry soon if it was not a kill)
                self.changed.wait_for(lambda g=generation: self.generation != g, timeout=1.0)

    def pause(self) -> None:
        time.sleep(self.script_rng.uniform(0.0, 0.25))  # users do not act in lockstep

    def play(self) -> None:
        ledger, stack = self.ledger, self.stack
        prompts = [f"kill-{i:02d} how tide pools work" for i in range(VIDEOS)]
        for i, prompt in enumerate(prompts):
            ledger.command(prompt, unknown_ok=True)
            self.send(prompt, lambda d, n, p=prompt, i=i: d.command(p, trigger_id=f"kill-{i}.1.seeded"))
            self.pause()
        replies: list[str] = []
        for i, prompt in enumerate(prompts[:EDITED]):
            thread = card_ts_of(stack, prompt, timeout=30)
            ts = _later_ts(thread, 500_000)
            text = f"kill-{i:02d} edit: make scene {i % 5 + 1} brighter"
            ledger.edit(text, prompt, ts)
            event_id = f"EvKILLEDIT{i:02d}"

            def reply(
                d: SlackDriver,
                n: int,
                text: str = text,
                thread: str = thread,
                ts: str = ts,
                eid: str = event_id,
            ) -> Any:
                event = d.message_event(text, thread_ts=thread, ts=ts)
                return d.event(event, event_id=eid, retry_num=n or None)

            self.send(text, reply)
            replies.append(ts)
            self.pause()
        for i, ts in enumerate(replies[:REVERTED]):
            row = wait_for(lambda ts=ts: _finished_edit(stack, ts), 25, f"the result of edit {i}")
            if row["state"] != "complete":
                continue
            ledger.revert(ts)
            event_id = f"EvKILLREV{i:02d}"
            self.send(
                f"revert {i}",
                lambda d, n, ts=ts, event_id=event_id: d.event(
                    d.reaction_event(ts), event_id=event_id, retry_num=n or None
                ),
            )
            self.pause()


def _later_ts(ts: str, micros: int) -> str:
    sec, _, frac = ts.partition(".")
    us = int(sec) * 1_000_000 + int((frac + "000000")[:6]) + micros
    return f"{us // 1_000_000}.{us % 1_000_000:06d}"


def _finished_edit(stack: LocalStack, reply_ts: str) -> dict[str, Any] | None:
    for r in edit_rows(stack):
        if r["reply_ts"] == reply_ts and r["state"] in EDIT_FINAL and r["lease_owner"] is None:
            return r
    return None


def _run(tmp_path: Any, db_url: str, seed: int, kills: int) -> tuple[LocalStack, KilledRun, Outcome]:
    stack = make_stack(database_url=db_url).start(bot=False)
    bot = BotProcess(stack, tmp_path / f"bot-{kills}-kills.log")
    run = KilledRun(stack, bot, seed, kills)
    try:
        bot.start()
        killer = threading.Thread(target=run.killer, daemon=True)
        killer.start()
        run.play()
        assert run.done_killing.wait(30)
        settle(stack, run.ledger, timeout=25)
        outcome = check(stack, run.ledger)
        unknown = [r["prompt"] for r in video_rows(stack) if r["state"] == "unknown"]
        assert len(unknown) <= kills, f"more jobs left unknown than kills: {unknown}"
        assert not knowlify_429s(stack), "the budget survives restarts: Knowlify never said 429"
        return stack, run, outcome
    except BaseException:
        print("still unsettled:", *unsettled(stack, run.ledger), sep="\n  ")
        print("jobs:", [(r["id"], r["state"], r["lease_owner"]) for r in video_rows(stack)])
        print(
            "edits:", [(r["id"], r["state"], r["revert_state"], r["lease_owner"]) for r in edit_rows(stack)]
        )
        print(f"bot log tail ({bot.log_path}):\n{bot.log_tail(30)}")
        raise
    finally:
        bot.stop()
        stack.stop()


def test_sigkill_at_random_points_of_a_ten_video_run(tmp_path, new_db_url):
    seed = int(os.environ.get("FAULT_SEED") or random.SystemRandom().randrange(1 << 31))
    print(f"\nSIGKILL run seed: {seed} (replay with FAULT_SEED={seed})")
    _, _, without = _run(tmp_path, new_db_url(), seed, kills=0)
    try:
        _, run, outcome = _run(tmp_path, new_db_url(), seed, kills=KILLS)
    except AssertionError as exc:
        raise AssertionError(f"[seed {seed}] {exc}") from exc
    assert len(run.kill_times) == KILLS
    report.record(f"SIGKILL ×{KILLS} + restart, 10 videos (seed {seed})", outcome, without)

"""KNOWLIFY_API_KEY changes between two runs of the bot on one database: what was not yet sent goes
on under the new key; what Knowlify does not know under it is ended, and the thread and card say
why, once. (The simulator treats each key as its own caller: another key's video is a 403.)"""

from __future__ import annotations

from sandbox.stack import API_KEY
from tests.helpers import card_ts, edits, jobs, posted, sim_posts, updated, wait_until

KEY_B = "kn_" + "b7" * 32
ADA = "U0ADA0001"


def key_of(call) -> str:
    return "A" if API_KEY.endswith(call.key) else "B" if KEY_B.endswith(call.key) else "?"


def test_jobs_of_the_old_key_go_on_or_are_ended_once_with_the_reason(stack):
    # Under key A: one finished video, one still rendering, one not yet sent.
    stack.driver.command("Explain tides")
    done_thread = card_ts(stack, 0)
    stack.slack.wait_for(posted("Your video is ready", thread=True), timeout=20)
    stack.sim.config.stage_seconds = 30.0  # the next render outlives this run of the bot
    stack.driver.command("Explain waves")
    wait_until(lambda: len(jobs(stack)) == 2 and jobs(stack)[1].state == "rendering", 15, "render started")
    rendering_thread = jobs(stack)[1].card_ts
    stack.stop_bot()
    stack.start_bot(worker=False)  # a command taken, then the bot stops before sending it
    stack.driver.command("Explain currents")
    wait_until(lambda: len(jobs(stack)) == 3, 5, "third job stored")
    stack.stop_bot()
    stack.sim.config.stage_seconds = 0.15

    # Restart under key B.
    stack.start_bot(knowlify_api_key=KEY_B)
    ended = stack.slack.wait_for(posted("API key was changed", thread=True), timeout=15)[0]
    assert ended.args["thread_ts"] == rendering_thread
    stack.slack.wait_for(updated("API key was changed"), timeout=10)
    stack.slack.wait_for(posted("Your video is ready", thread=True), count=2, timeout=20)
    wait_until(lambda: [j.state for j in jobs(stack)] == ["complete", "failed", "complete"], 10, "states")
    creates = sim_posts(stack, "/v1/videos")
    assert [(c.body["videos"][0]["task"], key_of(c)) for c in creates] == [
        ("Explain tides", "A"),
        ("Explain waves", "A"),
        ("Explain currents", "B"),
    ]

    # A reply on the old finished video is tried under key B, refused, and the thread says why.
    stack.driver.reply("Make scene 2 slower", thread_ts=done_thread, user=ADA)
    refusal = stack.slack.wait_for(posted("API key was changed", thread=True), count=2, timeout=10)[-1]
    assert refusal.args["thread_ts"] == done_thread
    wait_until(lambda: edits(stack) and edits(stack)[0].state == "refused", 5, "edit refused")

    # Later ticks and a further restart say nothing more about the ended render.
    stack.stop_bot()
    stack.start_bot(knowlify_api_key=KEY_B)
    for _ in range(5):
        stack.runtime.run_ticks()
    said = [
        c
        for c in stack.slack.calls_of("chat.postMessage")
        if "API key was changed" in c.args["text"] and c.args.get("thread_ts") == rendering_thread
    ]
    assert len(said) == 1

"""Who may spend credits, end to end over signed HTTP: only the creator's replies (or replies that
mention the bot) become edits, deleting a kept reply cancels it, and each person has a daily limit
on videos and edits."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator

import pytest

from sandbox.stack import LocalStack, StackConfig
from tests.helpers import ack_text, card_ts, edits, jobs, posted, sim_posts, wait_until

CHANNEL = "C0DESIGN1"
ADA, BOB, BOT = "U0ADA0001", "U0BOB0002", "U0KN0WBOT"
SLACK_DATE = re.compile(r"<!date\^(\d+)\^\{date_short_pretty\} at \{time\}\|[^>]+>")


def ready_video(stack: LocalStack, prompt: str = "Explain tides", user: str = ADA, index: int = 0) -> str:
    stack.driver.command(prompt, user=user)
    thread = card_ts(stack, index)
    stack.slack.wait_for(posted("Your video is ready", thread=True), count=index + 1, timeout=20)
    return thread


def edit_posts(stack: LocalStack) -> list:
    return sim_posts(stack, "/v1/edits")


def ephemerals_to(stack: LocalStack, user: str) -> list:
    return [c for c in stack.slack.calls_of("chat.postEphemeral") if c.args["user"] == user]


def settle(stack: LocalStack) -> None:
    """Give the worker a moment to act on anything it wrongly took (it never should)."""
    runtime = stack.runtime
    assert runtime is not None
    for _ in range(3):
        runtime.run_ticks()


# --- who may edit ---------------------------------------------------------------------------


def test_someone_elses_chatter_costs_nothing_and_they_are_told_once_how_to_ask(stack):
    thread = ready_video(stack)
    for words in ("thanks, looks great!", "agreed, love scene 3"):
        response, _ = stack.driver.reply(words, thread_ts=thread, user=BOB)
        assert response.status_code == 200
    settle(stack)
    assert edit_posts(stack) == [] and edits(stack) == []
    (hint,) = ephemerals_to(stack, BOB)  # once per thread, however often Bob talks
    assert hint.args["thread_ts"] == thread and hint.args["channel"] == CHANNEL
    assert f"<@{BOT}>" in hint.args["text"] and f"<@{ADA}>" in hint.args["text"]
    assert "not sent to Knowlify" in hint.args["text"]


def test_a_reply_that_mentions_the_bot_is_an_edit_without_the_mention(stack):
    thread = ready_video(stack)
    stack.driver.reply(f"<@{BOT}> make scene 2 slower", thread_ts=thread, user=BOB)
    stack.slack.wait_for(posted("Edit applied", thread=True), timeout=10)
    (call,) = edit_posts(stack)
    assert call.body["edit_request"] == "make scene 2 slower"
    assert edits(stack)[0].user_id == BOB
    assert ephemerals_to(stack, BOB) == []


def test_the_creators_reply_is_an_edit_and_a_mention_in_it_is_removed(stack):
    thread = ready_video(stack)
    stack.driver.reply(f"Slow down scene 2 please <@{BOT}|knowlify>", thread_ts=thread)
    stack.slack.wait_for(posted("Edit applied", thread=True), timeout=10)
    assert [c.body["edit_request"] for c in edit_posts(stack)] == ["Slow down scene 2 please"]


def test_the_video_ready_message_and_help_say_who_can_edit(stack):
    ready_video(stack)
    (done,) = stack.slack.wait_for(posted("Your video is ready", thread=True), timeout=5)
    assert "mentions me" in done.args["text"] and "asked for the video" in done.args["text"]
    help_answer = ack_text(stack.driver.command("help"))
    assert "mentions me" in help_answer and "created the" in help_answer


@pytest.fixture
def slow_stack() -> Iterator[LocalStack]:
    """Renders slow enough that a reply is still kept when its deletion arrives."""
    s = LocalStack(StackConfig(stage_seconds=1.0, poll_seconds=0.05, tick_seconds=0.02, window_seconds=1.0))
    s.start()
    try:
        yield s
    finally:
        s.stop()


def deleted_event(stack: LocalStack, ts: str, thread: str, text: str, user: str = ADA) -> dict:
    """Slack's `message_deleted`: hidden, no user at the top, the reply in `previous_message`."""
    event_ts = stack.driver.next_ts(after=ts)
    return {
        "type": "message",
        "subtype": "message_deleted",
        "hidden": True,
        "deleted_ts": ts,
        "channel": CHANNEL,
        "ts": event_ts,
        "event_ts": event_ts,
        "channel_type": "channel",
        "previous_message": {"type": "message", "user": user, "text": text, "ts": ts, "thread_ts": thread},
    }


def test_deleting_a_kept_reply_cancels_it_once_and_nothing_is_sent(slow_stack):
    stack = slow_stack
    stack.driver.command("Explain tides")
    thread = card_ts(stack)
    _, kept_ts = stack.driver.reply("Make scene 1 brighter", thread_ts=thread)
    _, other_ts = stack.driver.reply("Make scene 2 calmer", thread_ts=thread)
    stack.slack.wait_for(posted("still rendering", thread=True), count=2, timeout=10)

    event = deleted_event(stack, kept_ts, thread, "Make scene 1 brighter")
    event_id = stack.driver.new_event_id()
    assert stack.driver.event(event, event_id=event_id).status_code == 200
    assert stack.driver.event(event, event_id=event_id, retry_num=1).status_code == 200  # Slack retries
    (note,) = stack.slack.wait_for(posted("cancelled", thread=True), timeout=5)
    assert note.args["thread_ts"] == thread
    assert jobs(stack)[0].state == "rendering", "the cancel came while the video was still rendering"

    stack.slack.wait_for(posted("Edit applied", thread=True), timeout=30)
    wait_until(lambda: {e.reply_ts: e.state for e in edits(stack)} == {kept_ts: "cancelled", other_ts: "complete"}, 5, "states")
    settle(stack)
    assert [c.body["edit_request"] for c in edit_posts(stack)] == ["Make scene 2 calmer"]
    assert len([c for c in stack.slack.calls_of("chat.postMessage") if "cancelled" in c.args["text"]]) == 1


def test_deleting_a_submitted_reply_changes_nothing(stack):
    thread = ready_video(stack)
    _, reply_ts = stack.driver.reply("Make scene 1 brighter", thread_ts=thread)
    stack.slack.wait_for(posted("Edit applied", thread=True), timeout=10)
    posts_before = len(stack.slack.calls_of("chat.postMessage"))
    assert stack.driver.event(deleted_event(stack, reply_ts, thread, "x")).status_code == 200
    settle(stack)
    assert edits(stack)[0].state == "complete"
    assert len(stack.slack.calls_of("chat.postMessage")) == posts_before
    assert len(edit_posts(stack)) == 1


# --- per-person limits ----------------------------------------------------------------------


def restart_with(stack: LocalStack, **overrides) -> None:
    stack.stop_bot()
    stack.start_bot(**overrides)


def test_a_person_over_the_video_limit_is_refused_with_when_and_nothing_is_sent(stack):
    restart_with(stack, knowlify_user_videos_per_day=2)
    trigger = "5550001.1.limit"
    assert "Got it" in ack_text(stack.driver.command("Explain tides", trigger_id=trigger))
    assert "Got it" in ack_text(stack.driver.command("Explain waves"))
    wait_until(lambda: len(sim_posts(stack, "/v1/videos")) == 2, 15, "two creates sent")

    now = time.time()
    refused = ack_text(stack.driver.command("Explain currents"))
    assert "2 videos in the last 24 hours" in refused and "nothing was sent" in refused
    (when,) = SLACK_DATE.findall(refused)
    assert now + 24 * 3600 - 120 < int(when) <= now + 24 * 3600 + 60
    # The first request sent again (same trigger) is not a new video and not refused as one.
    assert "already have" in ack_text(stack.driver.command("Explain tides", trigger_id=trigger))
    # Another person is not affected; the count lives in the database, so a restart keeps it.
    assert "Got it" in ack_text(stack.driver.command("Explain rain", user=BOB))
    restart_with(stack, knowlify_user_videos_per_day=2)
    assert "2 videos in the last 24 hours" in ack_text(stack.driver.command("Explain currents"))
    wait_until(lambda: len(sim_posts(stack, "/v1/videos")) == 3, 15, "Bob's create sent")
    settle(stack)
    tasks = [c.body["videos"][0]["task"] for c in sim_posts(stack, "/v1/videos")]
    assert sorted(tasks) == ["Explain rain", "Explain tides", "Explain waves"]
    # 0 means no limit.
    restart_with(stack, knowlify_user_videos_per_day=0)
    assert "Got it" in ack_text(stack.driver.command("Explain currents"))


def test_a_person_over_the_edit_limit_is_told_in_the_thread_once_and_nothing_is_sent(stack):
    restart_with(stack, knowlify_user_edits_per_day=1)
    thread = ready_video(stack)
    stack.driver.reply("Make scene 1 brighter", thread_ts=thread)
    stack.slack.wait_for(posted("Edit applied", thread=True), timeout=10)

    event = stack.driver.message_event("Make scene 2 calmer", thread_ts=thread)
    event_id = stack.driver.new_event_id()
    stack.driver.event(event, event_id=event_id)
    stack.driver.event(event, event_id=event_id, retry_num=1)
    (refusal,) = stack.slack.wait_for(posted("1 edit in the last 24 hours", thread=True), timeout=5)
    assert refusal.args["thread_ts"] == thread and f"<@{ADA}>" in refusal.args["text"]
    assert SLACK_DATE.search(refusal.args["text"])
    # Bob, mentioning the bot, still may.
    stack.driver.reply(f"<@{BOT}> make scene 3 shorter", thread_ts=thread, user=BOB)
    stack.slack.wait_for(posted("Edit applied", thread=True), count=2, timeout=10)
    settle(stack)
    assert [c.body["edit_request"] for c in edit_posts(stack)] == ["Make scene 1 brighter", "make scene 3 shorter"]
    assert len([c for c in stack.slack.calls_of("chat.postMessage") if "in the last 24 hours" in c.args["text"]]) == 1


def test_a_modal_submission_over_the_limit_keeps_the_modal_open_with_the_reason(stack):
    from bot.ui.modal import CALLBACK_ID, build_create_modal

    restart_with(stack, knowlify_user_videos_per_day=1)
    ready_video(stack)
    view = build_create_modal('{"channel": "C0DESIGN1"}')
    prompt_block = view["blocks"][0]
    first_block = prompt_block["block_id"]
    values = {first_block: {prompt_block["element"]["action_id"]: {"type": "plain_text_input", "value": "Explain rain"}}}
    response = stack.driver.view_submission(
        {"callback_id": CALLBACK_ID, "private_metadata": view["private_metadata"], "state": {"values": values}}
    )
    body = response.json()
    assert body["response_action"] == "errors"
    assert "1 video in the last 24 hours" in body["errors"][first_block] and "UTC" in body["errors"][first_block]
    settle(stack)
    assert len(jobs(stack)) == 1

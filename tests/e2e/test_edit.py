"""The edit conversation end to end: thread replies over signed HTTP, the real bot and worker, the
Knowlify simulator and the Slack stand-in."""

from __future__ import annotations

import json
import threading

import pytest

from bot.worker import edit_idempotency_key
from tests.helpers import card_ts, edits, jobs, posted, sim_posts, updated, wait_until

CHANNEL = "C0DESIGN1"
TEAM = "T0KN0W001"


def ready_video(stack, prompt: str = "Explain tides") -> str:
    """A rendered video; returns its thread (the card's ts)."""
    stack.driver.command(prompt)
    thread = card_ts(stack)
    stack.slack.wait_for(posted("Your video is ready", thread=True), timeout=20)
    return thread


def edit_posts(stack):
    return sim_posts(stack, "/v1/edits")


def thread_texts(stack, thread: str, channel: str = CHANNEL) -> list[str]:
    return [m["text"] for m in stack.slack.thread(channel, thread)]


def test_reply_becomes_an_edit_and_the_result_and_new_version_show_in_the_thread(stack):
    thread = ready_video(stack)
    text = "Slow down scene 2, delete scene 3 and add a closing scene"
    response, reply_ts = stack.driver.reply(text, thread_ts=thread)
    assert response.status_code == 200

    accepted = stack.slack.wait_for(posted("Edit accepted", thread=True), timeout=10)[0]
    assert accepted.args["thread_ts"] == thread and accepted.args["channel"] == CHANNEL
    done = stack.slack.wait_for(posted("Edit applied", thread=True), timeout=10)[0]
    assert done.args["thread_ts"] == thread

    # Knowlify received the reply's words for this video, keyed to the Slack message.
    (call,) = edit_posts(stack)
    assert call.body == {"video_uuid": jobs(stack)[0].knowlify_uuid, "edit_request": text}
    assert call.idempotency_key == edit_idempotency_key(TEAM, CHANNEL, reply_ts)

    # The result carries the new link and which scenes changed, were added and deleted.
    result = stack.sim.edit(edits(stack)[0].knowlify_edit_id)["result"]
    assert result["link"] and result["link"] in done.args["text"]
    assert (
        result["changed_scene_numbers"],
        result["added_scene_numbers"],
        result["deleted_scene_numbers"],
    ) == (
        [2],
        [5],
        [3],
    )
    assert "changed: 2 · added: 5 · deleted: 3" in done.args["text"]

    # The card now points at the new version and counts the edit.
    card = stack.slack.wait_for(updated("1 edit applied"), timeout=5)[-1]
    assert card.args["ts"] == thread and result["link"] in card.args["text"]
    assert "version 2" in card.args["text"]


def test_idempotency_key_differs_per_reply_and_two_edits_make_version_three(stack):
    thread = ready_video(stack)
    _, first = stack.driver.reply("Make scene 1 brighter", thread_ts=thread)
    stack.slack.wait_for(posted("Edit applied"), timeout=10)
    _, second = stack.driver.reply("Make scene 4 calmer", thread_ts=thread)
    stack.slack.wait_for(posted("Edit applied"), count=2, timeout=10)
    keys = [c.idempotency_key for c in edit_posts(stack)]
    assert keys == [
        edit_idempotency_key(TEAM, CHANNEL, first),
        edit_idempotency_key(TEAM, CHANNEL, second),
    ]
    assert keys[0] != keys[1]
    stack.slack.wait_for(updated("2 edits applied"), timeout=5)


def test_replies_while_another_edit_runs_are_queued_behind_it(stack):
    thread = ready_video(stack)
    words = ["Make scene 1 brighter", "Make scene 2 calmer", "Make scene 3 shorter"]
    for n, text in enumerate(words, start=1):
        stack.driver.reply(text, thread_ts=thread)
        wait_until(lambda n=n: len(edits(stack)) == n, 5, f"reply {n} recorded")  # people type one at a time
    # Each edit runs for two 0.15 s stages, so at least the last reply waits behind another one.
    queued = stack.slack.wait_for(posted("queued behind", thread=True), timeout=10)[0]
    assert queued.args["thread_ts"] == thread
    stack.slack.wait_for(posted("Edit applied"), count=3, timeout=15)
    assert [c.body["edit_request"] for c in edit_posts(stack)] == words


def test_replies_during_the_render_are_kept_then_submitted_in_the_order_written(stack):
    stack.driver.command("Explain tides")
    thread = card_ts(stack)
    # Three replies written in this order, but Slack delivers the second one first.
    ts = [stack.driver.next_ts(after=thread) for _ in range(3)]
    words = ["First: make scene 1 brighter", "Second: make scene 2 calmer", "Third: make scene 3 shorter"]
    for i in (1, 0, 2):
        response, _ = stack.driver.reply(words[i], thread_ts=thread, ts=ts[i])
        assert response.status_code == 200

    kept = stack.slack.wait_for(posted("still rendering", thread=True), count=3, timeout=10)
    ready = stack.slack.wait_for(posted("Your video is ready", thread=True), timeout=20)[0]
    assert all(k.at < ready.at for k in kept), "the kept notice comes right away, before the render ends"
    assert all(k.args["thread_ts"] == thread for k in kept)

    stack.slack.wait_for(posted("Edit applied"), count=3, timeout=15)
    calls = edit_posts(stack)
    assert [c.body["edit_request"] for c in calls] == words
    assert all(c.status == 202 for c in calls), "nothing was sent before the render completed"


def test_https_links_go_as_reference_images_first_five_only_and_the_rest_are_named(stack):
    thread = ready_video(stack)
    urls = [f"https://cdn.example.com/ref{n}.png" for n in range(1, 8)]
    text = (
        f"Use these looks for scene 2: <{urls[0]}|mood board> <{urls[1]}> {urls[2]} "
        f"<{urls[3]}> <{urls[4]}|logo>, also <{urls[5]}> and <{urls[6]}>; not <http://old.example.com/x.png>"
    )
    stack.driver.reply(text, thread_ts=thread)
    accepted = stack.slack.wait_for(posted("Edit accepted", thread=True), timeout=10)[0]
    (call,) = edit_posts(stack)
    assert call.body["reference_image_urls"] == urls[:5]
    assert "mood board" in call.body["edit_request"] and "<" not in call.body["edit_request"]
    assert urls[5] in accepted.args["text"] and urls[6] in accepted.args["text"]
    assert "ignored" in accepted.args["text"]
    assert "http://old.example.com" not in accepted.args["text"]
    stack.slack.wait_for(posted("Edit applied"), timeout=10)


def test_a_link_with_a_query_string_reaches_knowlify_unescaped(stack):
    thread = ready_video(stack)
    # Slack escapes & as &amp; everywhere in message text, links included.
    stack.driver.reply("Match <https://cdn.example.com/a.png?w=1&amp;h=2|this>", thread_ts=thread)
    stack.slack.wait_for(posted("Edit accepted"), timeout=10)
    assert edit_posts(stack)[0].body["reference_image_urls"] == ["https://cdn.example.com/a.png?w=1&h=2"]


def test_slack_retries_of_one_reply_make_one_edit(stack):
    thread = ready_video(stack)
    event = stack.driver.message_event("Make scene 2 slower", thread_ts=thread)
    event_id = stack.driver.new_event_id()
    for retry in (None, 1, 2):
        assert stack.driver.event(event, event_id=event_id, retry_num=retry).status_code == 200
    stack.slack.wait_for(posted("Edit applied"), timeout=10)

    # The same message again under new event ids, delivered at the same moment: still one edit.
    second = stack.driver.message_event("Make scene 4 faster", thread_ts=thread)
    responses = []
    senders = [
        threading.Thread(target=lambda: responses.append(stack.driver.event(second).status_code))
        for _ in range(3)
    ]
    for t in senders:
        t.start()
    for t in senders:
        t.join()
    assert responses == [200, 200, 200]
    stack.slack.wait_for(posted("Edit applied"), count=2, timeout=10)

    assert [c.body["edit_request"] for c in edit_posts(stack)] == [
        "Make scene 2 slower",
        "Make scene 4 faster",
    ]
    assert len(stack.slack.wait_for(posted("Edit accepted"))) == 2
    assert len(stack.slack.wait_for(posted("Edit applied"))) == 2
    assert len(edits(stack)) == 2


def test_messages_that_are_not_edit_requests_are_ignored_with_200(stack):
    stack.slack.add_channel("C0OTHER01", name="other")
    thread = ready_video(stack)
    driver = stack.driver
    bot_post = stack.slack.calls_of("chat.postMessage")[-1].response["ts"]
    ignored = [
        # the bot's own message in the thread
        driver.message_event("Edit accepted", thread_ts=thread, user="U0KN0WBOT", bot_id="B0KN0WBOT"),
        # another bot
        driver.message_event(
            "Make scene 1 red",
            thread_ts=thread,
            user="U0OTHERBOT",
            bot_id="B0OTHERBOT",
            subtype="bot_message",
        ),
        # a person editing their message, or deleting one
        driver.message_event(
            "",
            thread_ts=thread,
            subtype="message_changed",
            hidden=True,
            message={"type": "message", "user": "U0ADA0001", "text": "Make scene 1 red", "ts": bot_post},
        ),
        driver.message_event(
            "", thread_ts=thread, subtype="message_deleted", hidden=True, deleted_ts=bot_post
        ),
        # a reply in some other thread, and a top-level message
        driver.message_event("Make scene 1 red", thread_ts=driver.next_ts()),
        driver.message_event("Make scene 1 red", thread_ts=None),
        # another channel quoting this video's thread_ts
        driver.message_event("Make scene 1 red", thread_ts=thread, channel="C0OTHER01"),
        # someone joining the channel
        driver.message_event(
            "<@U0BOB0002> has joined", thread_ts=None, subtype="channel_join", user="U0BOB0002"
        ),
    ]
    for event in ignored:
        assert driver.event(event).status_code == 200, event

    # A real reply afterwards is the only edit.
    driver.reply("Make scene 2 slower", thread_ts=thread)
    stack.slack.wait_for(posted("Edit applied"), timeout=10)
    assert [c.body["edit_request"] for c in edit_posts(stack)] == ["Make scene 2 slower"]
    assert len(edits(stack)) == 1
    assert not [c for c in stack.slack.calls_of("chat.postMessage") if c.args["channel"] == "C0OTHER01"]
    assert not stack.slack.calls_of("chat.postEphemeral")


def test_an_overlong_reply_is_answered_privately_and_not_sent(stack):
    thread = ready_video(stack)
    stack.driver.reply("Make it longer. " * 400, thread_ts=thread)  # 6400 characters
    note = stack.slack.wait_for(lambda c: c.method == "chat.postEphemeral", timeout=10)[0]
    assert "5000" in note.args["text"] and note.args["user"] == "U0ADA0001"
    assert note.args.get("thread_ts") == thread
    assert edit_posts(stack) == [] and edits(stack) == []


@pytest.mark.parametrize(
    ("reply", "says"),
    [
        ("Make scene 2 violent [unsafe]", "content-safety"),
        ("Use this picture <https://example.com/doc.txt>", "image/*"),
        ("Use this picture <https://10.0.0.1/x.png>", "public https"),
        ("Use this picture <https://example.com/huge.png>", "5 MB"),
    ],
    ids=["400-content-safety", "415-not-an-image", "422-private-address", "415-too-big"],
)
def test_a_refused_edit_says_why_in_the_thread(stack, reply, says):
    thread = ready_video(stack)
    stack.driver.reply(reply, thread_ts=thread)
    refused = stack.slack.wait_for(posted(says, thread=True), timeout=10)[0]
    assert refused.args["thread_ts"] == thread
    (call,) = edit_posts(stack)
    assert call.status in (400, 415, 422)
    wait_until(lambda: edits(stack)[0].state == "refused", 5, "edit stored as refused")
    assert not [c for c in stack.slack.calls if "Edit accepted" in (c.args.get("text") or "")]


def test_not_enough_credits_names_the_figures(stack):
    thread = ready_video(stack)
    stack.sim.set_credits(stack.config.api_key, 10)
    stack.driver.reply("Make scene 2 slower", thread_ts=thread)
    refused = stack.slack.wait_for(posted("credits", thread=True), timeout=10)[0]
    assert edit_posts(stack)[0].status == 402
    assert "up to 105 credits" in refused.args["text"] and "has 10" in refused.args["text"]
    # Topping up and replying again works.
    stack.sim.set_credits(stack.config.api_key, 1000)
    stack.driver.reply("Make scene 2 slower", thread_ts=thread)
    stack.slack.wait_for(posted("Edit applied"), timeout=10)


def test_knowlify_409_says_the_video_is_not_editable_yet(stack):
    thread = ready_video(stack)
    stack.sim.inject_fault(
        path_prefix="/v1/edits",
        method="POST",
        status=409,
        body=json.dumps(
            {
                "detail": "video is still being built (status=generating_frames); wait for the initial render to finish"
            }
        ),
    )
    stack.driver.reply("Make scene 2 slower", thread_ts=thread)
    refused = stack.slack.wait_for(posted("still building", thread=True), timeout=10)[0]
    assert "once the video is done" in refused.args["text"]
    assert len(edit_posts(stack)) == 1, "a 409 is not retried"


def test_an_ambiguous_edit_asks_to_rephrase(stack):
    thread = ready_video(stack)
    stack.driver.reply("Make it better somehow [ambiguous]", thread_ts=thread)
    stack.slack.wait_for(posted("Edit accepted"), timeout=10)
    failed = stack.slack.wait_for(posted("ambiguous", thread=True), timeout=10)[0]
    assert "Rephrase" in failed.args["text"]
    wait_until(lambda: edits(stack)[0].state == "error", 5, "edit stored as failed")
    assert not [c for c in stack.slack.calls_of("chat.update") if "edit applied" in c.args["text"]]


def test_replies_to_a_failed_video_are_told_they_cannot_be_applied(stack):
    stack.driver.command("Explain tides [fail]")
    thread = card_ts(stack)
    stack.driver.reply("Make scene 2 slower", thread_ts=thread)  # kept during the render…
    stack.slack.wait_for(posted("still rendering", thread=True), timeout=10)
    stack.slack.wait_for(posted("render failed, so this edit can't be applied", thread=True), timeout=20)
    stack.driver.reply("Make scene 3 slower", thread_ts=thread)  # …and one after the failure
    told = stack.slack.wait_for(posted("can't be applied", thread=True), count=2, timeout=10)
    assert all(c.args["thread_ts"] == thread for c in told)
    assert edit_posts(stack) == []
    wait_until(lambda: [e.state for e in edits(stack)] == ["refused", "refused"], 5, "both edits refused")


def test_knowlify_429_on_an_edit_is_waited_out_and_one_edit_is_created(stack):
    thread = ready_video(stack)
    stack.sim.inject_fault(path_prefix="/v1/edits", method="POST", status=429, retry_after=0.3)
    _, reply_ts = stack.driver.reply("Make scene 2 slower", thread_ts=thread)
    stack.slack.wait_for(posted("Edit applied"), timeout=10)
    calls = edit_posts(stack)
    assert [c.status for c in calls] == [429, 202]
    assert calls[1].at - calls[0].at >= 0.25, "Retry-After was honoured"
    key = edit_idempotency_key(TEAM, CHANNEL, reply_ts)
    assert [c.idempotency_key for c in calls] == [key, key]
    assert len(stack.sim.video(jobs(stack)[0].knowlify_uuid)["edit_ids"]) == 1
    assert len(stack.slack.wait_for(posted("Edit accepted"))) == 1


def test_a_lost_edit_answer_is_resent_with_the_same_key_and_replayed(stack):
    stack.stop_bot()
    stack.start_bot(knowlify_timeout_seconds=0.3)
    thread = ready_video(stack)
    # Knowlify creates the edit but its answer never reaches the bot.
    stack.sim.inject_fault(path_prefix="/v1/edits", method="POST", status=0, delay=1.0)
    _, reply_ts = stack.driver.reply("Make scene 2 slower", thread_ts=thread)
    stack.slack.wait_for(posted("Edit applied"), timeout=15)
    calls = edit_posts(stack)
    key = edit_idempotency_key(TEAM, CHANNEL, reply_ts)
    assert len(calls) == 2 and all(c.idempotency_key == key for c in calls)
    assert len(stack.sim.video(jobs(stack)[0].knowlify_uuid)["edit_ids"]) == 1, "the resend was a replay"
    assert len(stack.slack.wait_for(posted("Edit accepted"))) == 1
    assert len(stack.slack.wait_for(posted("Edit applied"))) == 1


def test_restart_while_an_edit_runs_posts_its_result_exactly_once(stack):
    thread = ready_video(stack)
    # The first poll of the edit is rate-limited, so the bot is sure to go down before it sees the end.
    stack.sim.inject_fault(path_prefix="/v1/edits/", method="GET", status=429, retry_after=1)
    stack.driver.reply("Make scene 2 slower", thread_ts=thread)
    stack.slack.wait_for(posted("Edit accepted"), timeout=10)
    stack.sim.wait_for_calls(lambda c: c.method == "GET" and c.path.startswith("/v1/edits/"), timeout=5)
    stack.stop_bot()
    edit = edits(stack)[0]
    assert edit.state == "submitted"
    wait_until(lambda: stack.sim.edit(edit.knowlify_edit_id)["status"] == "complete", 5, "edit to finish")

    stack.start_bot()
    stack.slack.wait_for(posted("Edit applied"), timeout=10)
    wait_until(lambda: edits(stack)[0].state == "complete", 5, "edit row to complete")
    stack.slack.wait_for(updated("1 edit applied"), timeout=5)
    assert len(stack.slack.wait_for(posted("Edit applied"))) == 1
    assert len(stack.slack.wait_for(posted("Edit accepted"))) == 1
    assert len(edit_posts(stack)) == 1

"""The create conversation end to end: signed HTTP in, real simulator, real Slack stand-in, real SQLite."""

from __future__ import annotations

import json
import time

from bot.ui.card import RETRY_ACTION
from bot.ui.modal import CALLBACK_ID
from sandbox.stack import SIGNING_SECRET
from tests.helpers import ack_text, card_ts, jobs, posted, sim_posts, updated, wait_until

COMMAND = "Explain how HTTPS works --duration 60 --aspect 9:16 --type explainer --primary #0066cc"


def test_command_posts_card_follows_render_and_posts_link_in_thread(stack):
    t0 = time.monotonic()
    response = stack.driver.command(COMMAND)
    ack_seconds = time.monotonic() - t0
    assert response.status_code == 200 and ack_seconds < 3
    assert "Explain how HTTPS works" in ack_text(response)

    done = stack.slack.wait_for(posted("Your video is ready", thread=True), timeout=20)[0]
    stack.slack.wait_for(updated("Done"), timeout=10)
    cards = [c for c in stack.slack.calls_of("chat.postMessage") if not c.args.get("thread_ts")]
    assert len(cards) == 1, "one status card per command"
    card = cards[0]
    assert "<@U0ADA0001>" in card.args["text"] and "Explain how HTTPS works" in card.args["text"]
    assert done.args["thread_ts"] == card.response["ts"]

    # The card moved through the render in words, stage by stage, and was only updated on change.
    texts = [
        c.args["text"] for c in stack.slack.calls_of("chat.update") if c.args["ts"] == card.response["ts"]
    ]
    assert any("recording the voiceover" in t for t in texts)
    assert any("generating frames" in t and "%" in t for t in texts)
    assert len(texts) == len(set(texts)), "no update repeats what the card already shows"

    # The link is the chat_url of the create response (the poll documents no link field).
    creates = sim_posts(stack, "/v1/videos")
    assert len(creates) == 1
    item = creates[0].body["videos"][0]
    assert item == {
        "task": "Explain how HTTPS works",
        "video_duration_seconds": 60,
        "aspect_ratio": "9:16",
        "video_type": "explainer",
        "color_palette": {"primary": "#0066cc"},
    }
    chat_url = jobs(stack)[0].chat_url
    assert chat_url and chat_url in done.args["text"]


def test_failed_render_posts_knowlifys_reason_and_card_says_failed(stack):
    stack.driver.command("Explain tides [fail]")
    failure = stack.slack.wait_for(posted(":x:", thread=True), timeout=20)[0]
    uuid = jobs(stack)[0].knowlify_uuid
    assert stack.sim.video(uuid)["error_message"] in failure.args["text"]
    stack.slack.wait_for(updated("Failed"), timeout=10)


def test_per_item_error_is_a_failure_like_any_other(stack):
    stack.driver.command("Explain tides [item-error]")
    failure = stack.slack.wait_for(posted("could not start this video", thread=True), timeout=15)[0]
    assert "Run the command again" in failure.args["text"]
    assert not [c for c in stack.sim.calls if c.method == "GET"], "nothing to poll for a failed item"


def test_bad_input_answers_with_usage_and_calls_nothing(stack):
    for text, problem in [
        ("--duration 10 Explain tides", "30 to 300"),
        ("Explain tides --aspect 4:3", "4:3"),
        ("Explain tides --colour #fff", "--colour"),
        ("--duration 60", "prompt"),
    ]:
        answer = ack_text(stack.driver.command(text))
        assert problem in answer and "Usage" in answer, (text, answer)
    assert stack.sim.calls == []
    assert not stack.slack.calls_of("chat.postMessage")
    assert jobs(stack) == []


def test_help_and_list_are_ephemeral_answers(stack):
    assert "rewind" in ack_text(stack.driver.command("help"))
    assert "No videos" in ack_text(stack.driver.command("list"))
    stack.driver.command("Explain tides")
    stack.slack.wait_for(posted("Your video is ready"), timeout=20)
    # The link is posted first and the state stored right after: list once it is stored.
    wait_until(lambda: jobs(stack)[0].state == "complete", what="the job stored as complete")
    listing = ack_text(stack.driver.command("list"))
    assert "Explain tides" in listing and "Done" in listing and jobs(stack)[0].chat_url in listing
    assert ack_text(stack.driver.command("list", channel="C0OTHER01")).startswith("No videos"), (
        "list is per channel"
    )


def test_bare_command_opens_modal_and_submission_creates_the_video(stack):
    response = stack.driver.command("")
    assert response.status_code == 200
    opened = stack.slack.wait_for(lambda c: c.method == "views.open", timeout=5)[0]
    view = opened.args["view"]
    view = json.loads(view) if isinstance(view, str) else view
    assert view["callback_id"] == CALLBACK_ID
    prompt_block = view["blocks"][0]
    values = {
        prompt_block["block_id"]: {
            prompt_block["element"]["action_id"]: {"type": "plain_text_input", "value": "How vaccines work"}
        }
    }
    submitted = stack.driver.view_submission(
        {
            "callback_id": CALLBACK_ID,
            "private_metadata": view.get("private_metadata", ""),
            "state": {"values": values},
        }
    )
    assert submitted.status_code == 200
    stack.slack.wait_for(posted("Your video is ready", thread=True), timeout=20)
    assert sim_posts(stack, "/v1/videos")[0].body["videos"][0]["task"] == "How vaccines work"
    assert jobs(stack)[0].channel_id == "C0DESIGN1"


def test_replayed_command_creates_one_video(stack):
    first = stack.driver.command("Explain tides", trigger_id="5550001.1.same")
    second = stack.driver.command("Explain tides", trigger_id="5550001.1.same")
    assert first.status_code == second.status_code == 200
    assert "already" in ack_text(second)
    stack.slack.wait_for(posted("Your video is ready"), timeout=20)
    assert len(sim_posts(stack, "/v1/videos")) == 1
    assert len(jobs(stack)) == 1


def test_unsigned_wrong_secret_and_stale_requests_get_401_and_do_nothing(stack):
    import httpx

    url = stack.driver.events_url
    assert httpx.post(url, data={"command": "/knowlify", "text": "x"}).status_code == 401
    assert stack.driver.command("Explain tides", sign_with="not-the-secret").status_code == 401
    assert stack.driver.command("Explain tides", timestamp=int(time.time()) - 6 * 60).status_code == 401
    assert SIGNING_SECRET  # the right secret still works:
    assert stack.driver.command("help").status_code == 200
    assert jobs(stack) == [] and stack.sim.calls == []


def test_url_verification_is_answered(stack):
    response = stack.driver.url_verification("c3VwZXI")
    assert response.status_code == 200 and "c3VwZXI" in response.text


def test_restart_mid_render_resumes_and_posts_completion_once(stack):
    stack.driver.command("Explain tides")
    wait_until(
        lambda: jobs(stack) and jobs(stack)[0].status in ("voiceover", "highlevel"), what="render under way"
    )
    stack.stop_bot()
    uuid = jobs(stack)[0].knowlify_uuid
    wait_until(
        lambda: stack.sim.video(uuid)["status"] == "complete", what="render to finish while the bot is down"
    )
    stack.start_bot()
    stack.slack.wait_for(posted("Your video is ready"), timeout=20)
    stack.slack.wait_for(updated("Done"), timeout=10)
    assert len(stack.slack.wait_for(posted("Your video is ready"))) == 1
    assert len(sim_posts(stack, "/v1/videos")) == 1
    assert jobs(stack)[0].state == "complete"


def test_parked_video_shows_its_position(stack):
    for n in range(4):
        stack.driver.command(f"Topic number {n}")
    parked = stack.slack.wait_for(lambda c: "Parked, position 1" in (c.args.get("text") or ""), timeout=15)
    assert parked
    stack.slack.wait_for(posted("Your video is ready"), count=4, timeout=30)
    assert len(sim_posts(stack, "/v1/videos")) == 4


def test_private_channel_without_the_bot_gets_an_invite_hint_and_no_call(stack):
    stack.slack.add_channel("C0SECRET1", private=True, member=False, name="secret")
    stack.driver.command("Explain tides", channel="C0SECRET1")
    hook = stack.slack.wait_for_hook(lambda h: "invite" in h["body"].get("text", "").lower(), timeout=10)[0]
    assert "/invite @knowlify" in hook["body"]["text"]
    assert hook["body"].get("response_type", "ephemeral") == "ephemeral"
    assert stack.sim.calls == []


def test_public_channel_without_the_bot_is_joined_first(stack):
    stack.slack.add_channel("C0PUBLIC1", private=False, member=False, name="general")
    stack.driver.command("Explain tides", channel="C0PUBLIC1")
    stack.slack.wait_for(posted("Your video is ready"), timeout=20)
    joins = stack.slack.calls_of("conversations.join")
    assert joins and joins[0].args["channel"] == "C0PUBLIC1"


def test_create_answer_lost_tells_user_and_retry_button_creates_once(stack):
    stack.stop_bot()
    stack.start_bot(knowlify_timeout_seconds=0.3)
    stack.sim.inject_fault(path_prefix="/v1/videos", method="POST", status=0, delay=1.0)
    stack.driver.command("Explain tides")
    notice = stack.slack.wait_for(posted("answer never arrived", thread=True), timeout=15)[0]
    assert len(sim_posts(stack, "/v1/videos")) == 1, "an unanswered create is not resent on its own"
    stack.slack.wait_for(updated("unknown"), timeout=5)
    job = jobs(stack)[0]
    assert job.state == "unknown"
    # Someone else cannot retry; the requester can, and a double click retries once.
    stack.driver.block_action(RETRY_ACTION, str(job.id), message_ts=notice.response["ts"], user="U0BOB0002")
    stack.driver.block_action(RETRY_ACTION, str(job.id), message_ts=notice.response["ts"])
    stack.driver.block_action(RETRY_ACTION, str(job.id), message_ts=notice.response["ts"])
    stack.slack.wait_for(posted("Your video is ready"), timeout=20)
    assert len(sim_posts(stack, "/v1/videos")) == 2


def test_knowlify_429_on_create_is_waited_out(stack):
    stack.sim.inject_fault(path_prefix="/v1/videos", method="POST", status=429, retry_after=0.3)
    stack.driver.command("Explain tides")
    stack.slack.wait_for(posted("Your video is ready"), timeout=20)
    statuses = [c.status for c in sim_posts(stack, "/v1/videos")]
    assert statuses == [429, 200]


def test_slack_429_on_card_update_is_retried_and_the_card_ends_done(stack):
    stack.slack.inject("chat.update", status=429, retry_after=1, times=1)
    stack.driver.command("Explain tides")
    stack.slack.wait_for(updated("Done"), timeout=25)
    assert any(c.status == 429 for c in stack.slack.calls_of("chat.update"))
    assert card_ts(stack)


def test_home_tab_shows_help_and_the_users_own_videos(stack):
    stack.driver.command("Explain tides")
    stack.slack.wait_for(posted("Your video is ready"), timeout=20)
    stack.driver.event(
        {"type": "app_home_opened", "user": "U0ADA0001", "channel": "D0ADA0001", "tab": "home"}
    )
    published = stack.slack.wait_for(lambda c: c.method == "views.publish", timeout=10)[0]
    text = json.dumps(published.args)
    assert "Explain tides" in text and "/knowlify" in text
    assert published.args["user_id"] == "U0ADA0001"


def test_a_request_from_another_workspace_uses_nothing_of_this_one(stack):
    other = stack.driver.command_payload("Explain tides")
    other["team_id"] = "T0THER999"
    from urllib.parse import urlencode

    response = stack.driver._post(urlencode(other).encode(), "application/x-www-form-urlencoded")
    assert response.status_code == 200 and "another Slack workspace" in response.text
    assert jobs(stack) == [] and stack.sim.calls == []


def test_card_says_so_when_the_bot_could_not_join_the_channel(stack):
    stack.slack.inject("conversations.join", error="restricted_action")
    stack.driver.command("Explain tides")
    card = stack.slack.wait_for(posted("Explain tides", thread=False), timeout=10)[0]
    assert "couldn't join this channel" in json.dumps(card.args["blocks"])
    assert "/invite @knowlify" in json.dumps(card.args["blocks"])

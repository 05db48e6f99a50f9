"""Markup injection, end to end: hostile prompts, option values, replies and Knowlify answers go through
the real bot over HTTP, then every call the Slack stand-in received (messages, card updates, ephemerals,
views, response_url posts) and every ack is scanned for live markup the bot did not mean to send."""

from __future__ import annotations

import json
import re
from typing import Any

from bot.core.texts import LINK_WITHHELD
from bot.ui.modal import CALLBACK_ID
from tests.helpers import ack_text, card_ts, edits, jobs, posted, wait_until
from tests.markup_scan import Meant, scan_standin, scan_text, sent_strings

CHANNEL = "C0DESIGN1"
ADA, BOB = "U0ADA0001", "U0BOB0002"
MEANT = Meant.of(users=[ADA], channels=[CHANNEL])

PROMPT = "Explain <!channel> <https://evil.example/phish|Q3 board deck> <@U0BOB> &lt;!here&gt; &amp;lt;x"
STYLE = '--style "<!everyone> <@U0BOB0002> <!subteam^S0123|@admins> &lt;!channel&gt;"'
# Knowlify's own texts, made hostile by the simulator's response hook.
EVIL_TEXT = "<!channel> <@U0BOB0002> <https://evil.example/phish|open the report> &lt;!here&gt;"
# Knowlify links that must never be linked nor shown: every one of them names this host.
WITHHELD_HOST = "withheld.example"
EVIL_LINKS = [
    f"javascript:alert(1)//{WITHHELD_HOST}",
    f"http://{WITHHELD_HOST}/x|Q3 board deck",
    f"https://{WITHHELD_HOST}/a b",
    f"https://{WITHHELD_HOST}/<!channel>",
    f"data:text/html,{WITHHELD_HOST}<script>alert(1)</script>",
]


class HostileKnowlify:
    """Rewrites the simulator's answers: hostile `detail`, `error_message`, `chat_url`, `link`, `result.link`."""

    def __init__(self) -> None:
        self.created = 0

    def __call__(self, method: str, path: str, status: int, body: Any) -> Any:
        if not isinstance(body, dict):
            return body
        if isinstance(body.get("detail"), str):
            body["detail"] = f"{EVIL_TEXT} {body['detail']}"  # keep Knowlify's words the bot matches on
        if method == "POST" and path == "/v1/videos" and status == 200:
            for row in body.get("results", []):
                row["chat_url"] = EVIL_LINKS[self.created % len(EVIL_LINKS)]
                self.created += 1
        elif method == "GET" and path.startswith("/v1/videos/"):
            if body.get("status") == "failed":
                body["error_message"] = EVIL_TEXT
            if body.get("status") == "complete" and "[poll-link]" in (body.get("task") or ""):
                body["link"] = f"https://{WITHHELD_HOST}/poll|<!here>"
        elif method == "GET" and path.startswith("/v1/edits/"):
            if body.get("status") == "error":
                body["error_message"] = EVIL_TEXT
            if isinstance(body.get("result"), dict):
                body["result"]["link"] = f"http://{WITHHELD_HOST}/edit|<!here>"
        return body


def hooked(stack) -> HostileKnowlify:
    hook = HostileKnowlify()
    stack.sim.set_response_hook(hook)
    return hook


def in_thread(fragment: str, thread: str):
    def match(c) -> bool:
        return (
            c.method == "chat.postMessage" and c.args.get("thread_ts") == thread and fragment in c.args["text"]
        )

    match.__name__ = f"in_thread({fragment!r})"
    return match


def final_card_update(c, ts: str | None) -> bool:
    return c.method == "chat.update" and c.args["ts"] == ts and bool(re.search("Done|Failed", c.args["text"]))


def assert_no_live_markup(stack, acks: list[str]) -> None:
    findings = scan_standin(stack.slack, MEANT)
    for n, text in enumerate(acks):
        findings += scan_text(text, MEANT, f"ack#{n}")
    assert not findings, "\n".join(str(f) for f in findings[:20])
    sent = sent_strings(stack.slack) + acks
    leaked = [s for s in sent if WITHHELD_HOST in s]
    assert not leaked, f"a withheld link was shown: {leaked[:3]}"


def test_hostile_people_and_a_hostile_knowlify_never_produce_live_markup(stack):
    hooked(stack)
    acks: list[str] = []

    # A hostile prompt with hostile option values: the command's answer echoes it as text.
    answer = ack_text(stack.driver.command(f"{PROMPT} {STYLE}"))
    acks.append(answer)
    assert "Explain &lt;!channel&gt; &lt;https://evil.example/phish|Q3 board deck&gt;" in answer
    refused_options = ack_text(stack.driver.command('Explain --aspect "<!channel>" --primary "<@U0BOB0002>" --x<!here>'))
    acks.append(refused_options)
    assert "&lt;!channel&gt;" in refused_options
    thread = card_ts(stack)
    ready = stack.slack.wait_for(in_thread("Your video is ready", thread), timeout=20)[0]
    assert LINK_WITHHELD in ready.args["text"]

    # A render that fails with a hostile error_message.
    stack.driver.command("Explain tides [fail]")
    failed_thread = card_ts(stack, 1)
    failed = stack.slack.wait_for(in_thread("The render failed", failed_thread), timeout=20)[0]
    assert "&lt;!channel&gt; &lt;@U0BOB0002&gt;" in failed.args["text"]

    # A completion that can only reach the requester through the command's response_url.
    stack.driver.command(f"{PROMPT} [poll-link]")
    card_ts(stack, 2)
    stack.slack.inject("chat.postMessage", error="not_in_channel")
    hook_post = stack.slack.wait_for_hook(lambda h: "Your video is ready" in json.dumps(h["body"]), timeout=20)
    assert LINK_WITHHELD in hook_post[0]["body"]["text"]

    # Replies: six links (the sixth hides "<!channel>" as Slack entities), an edit Knowlify fails with a
    # hostile error_message, and one it refuses with a hostile detail.
    links = " ".join(f"https://img.example/{n}.png" for n in range(1, 6))
    reply = f"Make scene 2 <!here> brighter {links} https://img.example/&lt;!channel&gt;.png"
    _, first = stack.driver.reply(reply, thread_ts=thread, user=ADA)
    accepted = stack.slack.wait_for(in_thread("Edit accepted", thread), timeout=10)[0]
    assert "https://img.example/&lt;!channel&gt;.png" in accepted.args["text"]
    applied = stack.slack.wait_for(in_thread("Edit applied", thread), timeout=15)[0]
    assert LINK_WITHHELD in applied.args["text"]
    wait_until(lambda: any(e.reply_ts == first and e.result_ts for e in edits(stack)), 5, "result stored")

    stack.driver.reply("Make scene 3 calmer [ambiguous]", thread_ts=thread, user=ADA)
    failed_edit = stack.slack.wait_for(in_thread("The edit failed", thread), timeout=15)[0]
    assert "&lt;!channel&gt;" in failed_edit.args["text"]
    stack.driver.reply("Use this image https://127.0.0.1/x.png", thread_ts=thread, user=ADA)
    refused = stack.slack.wait_for(in_thread("Knowlify refused", thread), timeout=15)[0]
    assert "&lt;!channel&gt;" in refused.args["text"]

    # A revert by someone who may not (the answer mentions the requester), then by the requester.
    stack.driver.reaction(first, user=BOB)
    stack.slack.wait_for(lambda c: c.method == "chat.postEphemeral" and c.args["user"] == BOB, timeout=10)
    stack.driver.reaction(first, user=ADA)
    reverted = stack.slack.wait_for(in_thread("Edit reverted", thread), timeout=15)[0]
    assert LINK_WITHHELD in reverted.args["text"]

    # A create Knowlify refuses with a hostile detail.
    stack.sim.inject_fault(
        path_prefix="/v1/videos",
        method="POST",
        status=402,
        body=json.dumps({"detail": f"{EVIL_TEXT} insufficient credits"}),
    )
    stack.driver.command("Explain the moon")
    refused_thread = card_ts(stack, 3)
    stack.slack.wait_for(in_thread("credits", refused_thread), timeout=15)

    # The form, filled in with hostile values.
    stack.driver.command("")
    opened = stack.slack.wait_for(lambda c: c.method == "views.open", timeout=5)[0]
    view = opened.args["view"]
    view = json.loads(view) if isinstance(view, str) else view
    values = {
        "prompt": {"prompt_input": {"type": "plain_text_input", "value": PROMPT}},
        "style": {"style_input": {"type": "plain_text_input", "value": EVIL_TEXT}},
    }
    invalid = {**values, "color_primary": {"color_primary_input": {"type": "plain_text_input", "value": "<!here>"}}}
    rejected = stack.driver.view_submission(
        {"callback_id": CALLBACK_ID, "private_metadata": view["private_metadata"], "state": {"values": invalid}}
    )
    errors = rejected.json()["errors"]
    assert "&lt;!here&gt;" in errors["color_primary"]
    acks += list(errors.values())
    submitted = stack.driver.view_submission(
        {"callback_id": CALLBACK_ID, "private_metadata": view["private_metadata"], "state": {"values": values}}
    )
    assert submitted.status_code == 200
    modal_thread = card_ts(stack, 4)
    stack.slack.wait_for(in_thread("Your video is ready", modal_thread), timeout=20)

    # /knowlify list and App Home show every one of these videos.
    listed = ack_text(stack.driver.command("list"))
    acks.append(listed)
    assert "Explain &lt;!channel&gt;" in listed and "link withheld" in listed
    stack.driver.event({"type": "app_home_opened", "user": ADA, "channel": "D0ADA0001", "tab": "home"})
    home = stack.slack.wait_for(lambda c: c.method == "views.publish", timeout=10)[0]
    assert "Explain &lt;!channel&gt;" in json.dumps(home.args)

    # Every card has reached its final state, so every update it will get has been sent.
    wait_until(lambda: all(j.card_shown and not j.card_stale for j in jobs(stack)), 10, "cards current")
    for ts in [j.card_ts for j in jobs(stack)]:
        stack.slack.wait_for(lambda c, ts=ts: final_card_update(c, ts), timeout=10)
    assert any(LINK_WITHHELD in c.args["text"] for c in stack.slack.calls_of("chat.update"))
    assert_no_live_markup(stack, acks)


def test_the_scanner_catches_what_the_bot_would_have_sent_before(stack):
    """The scan is not vacuous: a live mention or a disguised link in any call is reported."""
    stack.driver.command("Explain tides")
    stack.slack.wait_for(posted("Your video is ready"), timeout=20)
    assert not scan_standin(stack.slack, MEANT)
    from slack_sdk import WebClient

    client = WebClient(token=stack.slack.bot_token, base_url=f"{stack.slack_server.url}/api/")
    client.chat_postMessage(
        channel=CHANNEL,
        text="ok",
        blocks=[{"type": "section", "text": {"type": "mrkdwn", "text": "<https://evil.example|deck> <!here>"}}],
    )
    client.chat_postEphemeral(channel=CHANNEL, user=ADA, text="hi <@U0BOB0002>")
    found = {f.markup for f in scan_standin(stack.slack, MEANT)}
    assert found == {"<https://evil.example|deck>", "<!here>", "<@U0BOB0002>"}

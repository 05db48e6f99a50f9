"""The status card's Block Kit: inside Slack's limits whatever the input, and a fallback text that
says the state (notifications and screen readers see only that)."""

from __future__ import annotations

import json

import pytest

from bot.core import lifecycle as lc
from bot.core.lifecycle import Progress
from bot.ui.card import RETRY_ACTION, card, retry_blocks

LINK = "https://create.knowlify.com/p/chat/0b6f"


VOICEOVER = Progress("voiceover", 10)


def make(state=lc.RENDERING, progress=VOICEOVER, **kw):
    values = dict(prompt="Explain how HTTPS works", user_id="U0ADA0001", options="60 s · 9:16", state=state)
    values.update(kw)
    return card(progress=progress, **values)


def texts_of(blocks):
    for block in blocks:
        if "text" in block:
            yield block["type"], block["text"]["text"]
        for element in block.get("elements", []):
            if "text" in element and isinstance(element["text"], str):
                yield block["type"], element["text"]


def assert_within_slack_limits(view):
    assert len(view.blocks) <= 50
    for block in view.blocks:
        if block["type"] == "context":
            assert len(block["elements"]) <= 10
    for _, text in texts_of(view.blocks):
        assert 0 < len(text) <= 3000
    total = len(json.dumps(view.blocks))
    assert total < 12_000, "msg_blocks_too_long has been seen at about 13k"
    assert 0 < len(view.text) <= 4000


@pytest.mark.parametrize(
    ("state", "progress", "extra", "says"),
    [
        (lc.READY, Progress(None), {}, "Sending to Knowlify"),
        (lc.RENDERING, Progress("queued"), {}, "Queued at Knowlify"),
        (lc.RENDERING, Progress("parked", queue_position=2), {}, "Parked, position 2"),
        (lc.RENDERING, Progress("generating_frames", 88, 4, 5), {}, "generating frames"),
        (lc.COMPLETE, Progress("complete", 100), {"link": LINK}, "Done"),
        (
            lc.FAILED,
            Progress("failed"),
            {"error": "The render failed: scene 3."},
            "Failed: The render failed",
        ),
        (lc.UNKNOWN, Progress(None), {}, "unknown whether"),
        (lc.NEEDS_INVITE, Progress(None), {}, "invite me"),
    ],
)
def test_the_fallback_text_names_the_state(state, progress, extra, says):
    view = make(state, progress, **extra)
    assert says in view.text
    assert "<@U0ADA0001>" in view.text and "Explain how HTTPS works" in view.text
    assert ":clapper:" not in view.text and ":white_check_mark:" not in view.text, "no emoji codes"
    assert any(says in text for _, text in texts_of(view.blocks))
    assert_within_slack_limits(view)


def test_a_done_card_links_the_current_version_and_counts_edits():
    assert "<https://v2.test/v.mp4|watch the video>" in make(lc.COMPLETE, link="https://v2.test/v.mp4").text
    one = make(lc.COMPLETE, link="https://v2.test/v.mp4", edits_applied=1)
    assert "version 2 (1 edit applied)" in one.text
    assert "version 3 (2 edits applied)" in make(lc.COMPLETE, link=LINK, edits_applied=2).text
    assert "version" not in make(lc.COMPLETE, link=LINK, edits_applied=0).text


def test_rendering_and_done_cards_invite_edits_by_reply():
    def hint(view):
        return any("Reply in this thread" in t for _, t in texts_of(view.blocks))

    assert hint(make(lc.RENDERING)) and hint(make(lc.COMPLETE, link=LINK))
    assert not hint(make(lc.FAILED, error="x")) and not hint(make(lc.READY))


def test_huge_inputs_stay_within_slack_limits():
    view = make(
        lc.FAILED,
        Progress("failed"),
        prompt="word " * 1000,
        options="60 s · style " + '"' + "very long style " * 320 + '"',
        error="The render failed: " + "x" * 10_000,
        note="I could not join this channel.",
    )
    assert_within_slack_limits(view)
    assert "Failed" in view.text


def test_user_text_cannot_inject_markup_or_mentions():
    view = make(prompt="Announce <!channel> & <https://evil.test|click>", options='style "<b>"')
    for _, text in texts_of(view.blocks):
        assert "<!channel>" not in text and "<https://evil.test" not in text and "<b>" not in text
    assert "<!channel>" not in view.text and "&lt;!channel&gt;" in view.text


def test_the_fingerprint_changes_only_with_what_the_card_shows():
    a = make(lc.RENDERING, Progress("voiceover", 10))
    assert a.fingerprint() == make(lc.RENDERING, Progress("voiceover", 10)).fingerprint()
    assert a.fingerprint() != make(lc.RENDERING, Progress("highlevel", 25)).fingerprint()


def test_retry_blocks_offer_a_confirmed_retry_button():
    blocks = retry_blocks("The answer never arrived.", 42)
    button = blocks[1]["elements"][0]
    assert button["action_id"] == RETRY_ACTION and button["value"] == "42"
    assert "confirm" in button and "second video" in button["confirm"]["text"]["text"]
    assert blocks[0]["text"]["text"] == ":warning: The answer never arrived."

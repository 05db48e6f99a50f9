"""`knowlify-slack demo` plays the whole conversation and ends on the channel as it finally looks."""

from __future__ import annotations

from sandbox.demo import run_demo


def test_demo_prints_the_channel_after_the_card_shows_the_revert():
    lines: list[str] = []
    assert run_demo(out=lines.append) == 0
    text = "\n".join(lines)
    assert "Edit reverted" in text
    channel = text.split("The channel as a Slack user sees it now:")[1]
    card = next(line for line in channel.splitlines() if "Knowlify video for @ada" in line)
    # The reverted edit is no longer the current version on the card.
    assert "Done" in card and "edit applied" not in card

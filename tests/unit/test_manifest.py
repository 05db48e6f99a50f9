"""manifest.yml is what a user pastes into Slack: it must be valid for Slack and match the code."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
MANIFEST = yaml.safe_load((ROOT / "manifest.yml").read_text())


def test_manifest_respects_slacks_limits():
    info = MANIFEST["display_information"]
    assert len(info["name"]) <= 35 and len(info["description"]) <= 140
    bot = MANIFEST["features"]["bot_user"]
    assert len(bot["display_name"]) <= 80 and re.fullmatch(r"[a-z0-9\-_.]+", bot["display_name"])
    (command,) = MANIFEST["features"]["slash_commands"]
    assert command["command"] == "/knowlify" and len(command["command"]) <= 32
    assert len(command["usage_hint"]) <= 1000
    assert command["should_escape"] is False, "the parser expects raw text (#hex colours, quotes)"


def test_manifest_subscribes_what_the_bot_listens_to_with_the_scopes_it_needs():
    events = set(MANIFEST["settings"]["event_subscriptions"]["bot_events"])
    assert {"message.channels", "message.groups", "reaction_added", "app_home_opened"} <= events
    scopes = set(MANIFEST["oauth_config"]["scopes"]["bot"])
    needed = {
        "commands",  # /knowlify
        "chat:write",  # card, replies, ephemerals
        "channels:join",  # joining a public channel on first use
        "channels:history",  # message.channels
        "groups:history",  # message.groups
        "reactions:read",  # reaction_added
        "users:read",  # users.info before a revert by someone else
    }
    assert needed <= scopes
    if "message.im" in events:
        assert "im:history" in scopes
    assert MANIFEST["settings"]["interactivity"]["is_enabled"] is True  # modal and retry button
    assert MANIFEST["settings"]["socket_mode_enabled"] is True


def test_every_subscribed_event_has_a_listener():
    """An event without a listener is answered 404, which Slack retries and counts as failure."""
    source = "\n".join(p.read_text() for p in (ROOT / "bot" / "listeners").glob("*.py"))
    for event in MANIFEST["settings"]["event_subscriptions"]["bot_events"]:
        name = event.split(".")[0]
        assert f'app.event("{name}")' in source, event

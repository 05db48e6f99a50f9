"""Which Slack message events are edit requests (docs/architecture.md, "Edit"). Pure, and fast: it runs on
every message in every channel the bot is in."""

from __future__ import annotations

from typing import Any

# Subtypes a person's thread reply can carry; everything else (edits, deletions, joins, bot posts) is noise.
HUMAN_SUBTYPES = (None, "file_share", "thread_broadcast")


def is_thread_reply_by_a_person(event: dict[str, Any]) -> bool:
    if event.get("subtype") not in HUMAN_SUBTYPES:
        return False
    if event.get("bot_id") or event.get("bot_profile") or event.get("hidden"):
        return False
    thread_ts, ts = event.get("thread_ts"), event.get("ts")
    if not isinstance(thread_ts, str) or not isinstance(ts, str) or thread_ts == ts:
        return False
    return isinstance(event.get("user"), str) and isinstance(event.get("channel"), str)

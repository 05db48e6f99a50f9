"""Block Kit for the status card and the thread replies. Pure: values in, dicts out."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from bot.core import lifecycle
from bot.core.mrkdwn import escape, mention
from bot.core.texts import LINK_WITHHELD, WHO_EDITS, knowlify_link, shorten

RETRY_ACTION = "knowlify_retry_create"
MAX_ERROR_CHARS = 500
MAX_OPTIONS_CHARS = 300


@dataclass(frozen=True)
class CardView:
    text: str
    blocks: list[dict[str, Any]]

    def fingerprint(self) -> str:
        """What the card shows; an update is sent only when this changes."""
        return json.dumps([self.text, self.blocks], sort_keys=True)


def card(
    *,
    prompt: str,
    user_id: str,
    options: str,
    state: str,
    progress: lifecycle.Progress,
    error: str | None = None,
    link: str | None = None,
    edits_applied: int = 0,
    note: str | None = None,
) -> CardView:
    # Knowlify's error text and the user's option values are unbounded: keep every block under 3,000.
    # `error` is the bot's own message (from texts, already escaped); `<`/`>` are neutralised again
    # so that no stored text can become markup, without escaping `&` a second time.
    status = lifecycle.status_line(state, progress, _no_markup(shorten(error, MAX_ERROR_CHARS)) if error else None)
    if state == lifecycle.COMPLETE and link:
        status += f": {knowlify_link(link, 'watch the video') or LINK_WITHHELD}"
        if edits_applied:
            status += f" · version {edits_applied + 1} ({edits_applied} edit{'s' if edits_applied != 1 else ''} applied)"
    title = shorten(prompt, 280)
    meta = f"Requested by {mention(user_id)}" + (
        f" · {escape(shorten(options, MAX_OPTIONS_CHARS))}" if options else ""
    )
    blocks: list[dict[str, Any]] = [
        {"type": "section", "text": {"type": "mrkdwn", "text": f":movie_camera: *{escape(title)}*"}},
        {"type": "context", "elements": [{"type": "mrkdwn", "text": meta}]},
        {"type": "section", "text": {"type": "mrkdwn", "text": status}},
    ]
    if state in (lifecycle.COMPLETE, lifecycle.RENDERING):
        blocks.append(
            {
                "type": "context",
                "elements": [{"type": "mrkdwn", "text": WHO_EDITS}],
            }
        )
    if note:
        blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": _no_markup(note)}]})
    text = f"Knowlify video for {mention(user_id)}: {escape(shorten(prompt, 120))} — {_plain(status)}"
    return CardView(text=text, blocks=blocks)


def retry_blocks(text: str, job_id: int) -> list[dict[str, Any]]:
    return [
        {"type": "section", "text": {"type": "mrkdwn", "text": f":warning: {text}"}},
        {
            "type": "actions",
            "elements": [
                {
                    "type": "button",
                    "action_id": RETRY_ACTION,
                    "text": {"type": "plain_text", "text": "Retry anyway"},
                    "value": str(job_id),
                    "style": "danger",
                    "confirm": {
                        "title": {"type": "plain_text", "text": "Start it again?"},
                        "text": {
                            "type": "plain_text",
                            "text": "If Knowlify did receive the first request, this makes a second video and uses credits twice.",
                        },
                        "confirm": {"type": "plain_text", "text": "Retry"},
                        "deny": {"type": "plain_text", "text": "Cancel"},
                    },
                }
            ],
        },
    ]


def _no_markup(text: str) -> str:
    return text.replace("<", "&lt;").replace(">", "&gt;")


def _plain(mrkdwn: str) -> str:
    """The status line without emoji codes, for the notification text."""
    import re

    return re.sub(r":[a-z0-9_+\-]+: ?", "", mrkdwn).strip()

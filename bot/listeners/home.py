"""The App Home tab: how to use the bot, and the viewer's own recent videos."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from slack_bolt import BoltContext
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.core import lifecycle as lc
from bot.core.mrkdwn import channel_link, escape
from bot.core.parse import help_text
from bot.core.texts import link_or_withheld, shorten
from bot.services import services_of
from storage.models import VideoJob

log = logging.getLogger(__name__)

SECTION_MAX = 3000


def home_view(jobs: Sequence[VideoJob], revert_emoji: str) -> dict[str, Any]:
    """The Home tab: pure, so what it shows of a prompt or a Knowlify link is tested without Slack."""
    lines = []
    for job in jobs:
        progress = lc.Progress(
            job.status, job.percent, job.current_scene, job.total_scenes, job.queue_position
        )
        link = job.link or job.chat_url
        tail = f" · {link_or_withheld(link)}" if link and job.state == lc.COMPLETE else ""
        lines.append(
            f"• {channel_link(job.channel_id)} {escape(shorten(job.prompt, 70))}: "
            f"{lc.status_line(job.state, progress)}{tail}"
        )
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": "Knowlify explainer videos"}},
        {
            "type": "section",
            "text": {"type": "mrkdwn", "text": help_text(revert_emoji)[:2900]},
        },
        {"type": "divider"},
    ]
    # Escaped prompts and long links can outgrow one section's 3,000 characters: start another one.
    text = "*Your recent videos*"
    for line in lines or ["None yet."]:
        if len(text) + 1 + len(line) > SECTION_MAX:
            blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": text}})
            text = ""
        text = f"{text}\n{line}" if text else line[:SECTION_MAX]
    blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": text}})
    return {"type": "home", "blocks": blocks}


def on_home(event: dict[str, Any], client: WebClient, context: BoltContext) -> None:
    services = services_of(context)
    if event.get("tab") not in (None, "home"):
        return
    user = event.get("user")
    if not isinstance(user, str):
        return
    view = home_view(services.store.videos_of_user(user, 10), services.settings.knowlify_revert_emoji)
    try:
        client.views_publish(user_id=user, view=view)
    except SlackApiError as exc:
        log.warning("home tab of %s not published: %s", user, exc.response.get("error"))

"""The App Home tab: how to use the bot, and the viewer's own recent videos."""

from __future__ import annotations

import logging
from typing import Any

from slack_bolt import App
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.core import lifecycle as lc
from bot.core.parse import help_text
from bot.core.texts import shorten
from bot.listeners import connect
from bot.services import Services

log = logging.getLogger(__name__)


def register(app: App, services: Services) -> None:
    @app.event("app_home_opened")
    def on_home(event: dict[str, Any], body: dict[str, Any], client: WebClient) -> None:
        if event.get("tab") not in (None, "home"):
            return
        user = event.get("user")
        if not isinstance(user, str):
            return
        publish(client, str(body.get("team_id") or ""), user)

    def publish(client: WebClient, team: str, user: str) -> None:
        jobs = services.store.videos_of_user(user, 10)
        if services.workspaces is not None:  # several workspaces: only this one's videos
            jobs = [job for job in jobs if job.team_id == team]
        lines = []
        for job in jobs:
            progress = lc.Progress(
                job.status, job.percent, job.current_scene, job.total_scenes, job.queue_position
            )
            link = job.link or job.chat_url
            tail = f" · <{link}|link>" if link and job.state == lc.COMPLETE else ""
            lines.append(
                f"• <#{job.channel_id}> {shorten(job.prompt, 70)}: {lc.status_line(job.state, progress)}{tail}"
            )
        blocks: list[dict[str, Any]] = [
            {"type": "header", "text": {"type": "plain_text", "text": "Knowlify explainer videos"}},
            *(connect.home_blocks(services.workspaces, services, team, user) if services.workspaces else []),
            {
                "type": "section",
                "text": {"type": "mrkdwn", "text": help_text(services.settings.knowlify_revert_emoji)[:2900]},
            },
            {"type": "divider"},
            {
                "type": "section",
                "text": {
                    "type": "mrkdwn",
                    "text": "*Your recent videos*\n" + ("\n".join(lines) or "None yet."),
                },
            },
        ]
        try:
            client.views_publish(user_id=user, view={"type": "home", "blocks": blocks})
        except SlackApiError as exc:
            log.warning("home tab of %s not published: %s", user, exc.response.get("error"))

    services.publish_home = publish

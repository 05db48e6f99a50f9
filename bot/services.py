"""What the listeners and the worker share, built once from settings."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from bot.settings import Settings
from bot.slack_ops import SlackOps
from storage.repo import Store


@dataclass
class Services:
    settings: Settings
    store: Store
    slack: SlackOps  # for listeners: fails fast, never sleeps on a 429 (slack_ops.make_client)
    key_id: str  # fingerprint of the Knowlify key: jobs are stamped with it
    team_id: str | None = None  # the workspace the bot token (and so the Knowlify key) belongs to
    bot_user_id: str | None = None  # `<@bot_user_id>` in a thread reply asks for an edit
    kick: Callable[[], None] = field(default=lambda: None)  # wake the worker now
    # Several workspaces (bot.workspaces.Workspaces), or None for the single-workspace set-up.
    workspaces: Any = None
    publish_home: Callable[[Any, str, str], None] | None = None  # (client, team, user), set by home

    def job_key_id(self, team_id: str) -> str:
        """What a new job is stamped with: the key's fingerprint, or its workspace when several."""
        if self.workspaces is not None:
            from bot.workspaces import job_key_id

            return job_key_id(team_id)
        return self.key_id

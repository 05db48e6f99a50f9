"""What the listeners and the worker share, built once from settings."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

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

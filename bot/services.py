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
    slack: SlackOps
    key_id: str  # fingerprint of the Knowlify key: jobs are stamped with it
    team_id: str | None = None  # the workspace the bot token (and so the Knowlify key) belongs to
    kick: Callable[[], None] = field(default=lambda: None)  # wake the worker now

"""What the listeners and the worker share, built once from settings."""

from __future__ import annotations

from collections.abc import Callable, Mapping
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


SERVICES_KEY = "services"


def services_of(context: Mapping[str, Any]) -> Services:
    """The services a listener works with, put into Bolt's context by the first middleware."""
    services = context[SERVICES_KEY]
    assert isinstance(services, Services)
    return services

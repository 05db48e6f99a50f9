"""Every listener is registered here, once, for both `serve` and `socket`."""

from __future__ import annotations

import re

from slack_bolt import App

from bot.listeners import actions, commands, events, home
from bot.services import Services


def register_listeners(app: App, services: Services) -> None:
    commands.register(app, services)
    actions.register(app, services)
    events.register(app, services)
    home.register(app, services)

    # Anything else Slack sends is acknowledged with 200: a 404 would make Slack retry it.
    @app.event(re.compile(".*"))
    def _ignore(event: dict) -> None:
        return None

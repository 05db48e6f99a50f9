"""Send the bot what Slack would send: signed slash commands, events and interactivity payloads.

Requests are signed over the exact bytes sent (as Slack does), commands and interactivity go
form-encoded, events as JSON (see docs §8/§9). Pure builders (`command_payload`, `message_event`,
`reaction_event`, `envelope`, …) return the same payloads for Socket Mode tests, which deliver them
through `SlackStandIn.send_envelope` instead of HTTP.

With `hooks_base` (the stand-in's URL) set, response_urls point at the stand-in, and each command /
human message / reaction is mirrored to it first, so its transcript shows both sides of the
conversation.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import secrets
import threading
import time
import uuid
from typing import Any
from urllib.parse import urlencode

import httpx
from slack_sdk.signature import SignatureVerifier

LEGACY_TOKEN = "0bsoleteT0ken"
_KNOWN_NAMES = {
    "C0DESIGN1": "design",
    "U0ADA0001": "ada",
    "U0BOB0002": "bob",
    "U0ADM0003": "admin",
}


def _channel_type(channel: str) -> str:
    return {"D": "im", "G": "group"}.get(channel[:1], "channel")


def _ts_to_us(ts: str) -> int:
    secs, _, frac = ts.partition(".")
    return int(secs) * 1_000_000 + int((frac + "000000")[:6])


class SlackDriver:
    """Plays Slack's part towards the bot's HTTP endpoint (`events_url`, e.g. .../slack/events)."""

    def __init__(
        self,
        events_url: str,
        signing_secret: str,
        *,
        team_id: str = "T0KN0W001",
        api_app_id: str = "A0KN0WAPP",
        bot_user_id: str = "U0KN0WBOT",
        hooks_base: str | None = None,
        team_domain: str = "acme",
        timeout: float = 10.0,
    ) -> None:
        self.events_url = events_url
        self.signing_secret = signing_secret
        self.team_id = team_id
        self.api_app_id = api_app_id
        self.bot_user_id = bot_user_id
        self.hooks_base = hooks_base.rstrip("/") if hooks_base else None
        self.team_domain = team_domain
        self.client = httpx.Client(timeout=timeout)
        self._counter = itertools.count(5550001)
        self._lock = threading.Lock()
        self._last_ts_us = 0

    def close(self) -> None:
        self.client.close()

    def for_team(self, team_id: str, *, bot_user_id: str, team_domain: str | None = None) -> SlackDriver:
        """A driver for another workspace of the same app: same endpoint, same signing secret
        (one app has one), that workspace's team id and bot user in every payload."""
        return SlackDriver(
            self.events_url,
            self.signing_secret,
            team_id=team_id,
            api_app_id=self.api_app_id,
            bot_user_id=bot_user_id,
            hooks_base=self.hooks_base,
            team_domain=team_domain or team_id.lower(),
        )

    def __enter__(self) -> SlackDriver:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ ids

    def _next(self) -> int:
        with self._lock:
            return next(self._counter)

    def next_ts(self, after: str | None = None) -> str:
        """A message ts that is strictly increasing and later than `after` (e.g. the thread's ts)."""
        with self._lock:
            us = max(int(time.time() * 1_000_000), self._last_ts_us + 1)
            if after:
                us = max(us, _ts_to_us(after) + 100)
            self._last_ts_us = us
        return f"{us // 1_000_000}.{us % 1_000_000:06d}"

    def _trigger_id(self) -> str:
        return f"{self._next()}.{int(time.time())}.{secrets.token_hex(8)}"

    @staticmethod
    def new_event_id() -> str:
        return "Ev" + uuid.uuid4().hex[:12].upper()

    def _user_obj(self, user: str) -> dict[str, Any]:
        name = _KNOWN_NAMES.get(user, user.lower())
        return {"id": user, "username": name, "name": name, "team_id": self.team_id}

    # ------------------------------------------------------------------ pure builders

    def command_payload(
        self,
        text: str,
        *,
        user: str = "U0ADA0001",
        channel: str = "C0DESIGN1",
        trigger_id: str | None = None,
        command: str = "/knowlify",
    ) -> dict[str, str]:
        """A slash-command payload (all values are strings, as in the form body)."""
        n = self._next()
        base = f"{self.hooks_base}/hooks" if self.hooks_base else "https://hooks.slack.com"
        return {
            "token": LEGACY_TOKEN,
            "team_id": self.team_id,
            "team_domain": self.team_domain,
            "channel_id": channel,
            "channel_name": _KNOWN_NAMES.get(channel, channel.lower()),
            "user_id": user,
            "user_name": _KNOWN_NAMES.get(user, user.lower()),
            "command": command,
            "text": text,
            "api_app_id": self.api_app_id,
            "is_enterprise_install": "false",
            "response_url": f"{base}/commands/{self.team_id}/{n}/{secrets.token_hex(12)}",
            "trigger_id": trigger_id or self._trigger_id(),
        }

    def message_event(
        self,
        text: str,
        *,
        thread_ts: str | None,
        user: str = "U0ADA0001",
        channel: str = "C0DESIGN1",
        ts: str | None = None,
        subtype: str | None = None,
        bot_id: str | None = None,
        **kw: Any,
    ) -> dict[str, Any]:
        """A `message` event; with `thread_ts` it is a thread reply (ts auto-generated after it)."""
        ts = ts or self.next_ts(after=thread_ts)
        event: dict[str, Any] = {"type": "message"}
        if subtype:
            event["subtype"] = subtype
        event.update(user=user, text=text, ts=ts)
        if bot_id:
            event["bot_id"] = bot_id
        else:
            event["client_msg_id"] = str(uuid.uuid4())
        if thread_ts:
            event.update(thread_ts=thread_ts, parent_user_id=self.bot_user_id)
        event.update(
            channel=channel,
            channel_type=_channel_type(channel),
            team=self.team_id,
            event_ts=ts,
        )
        event.update(kw)
        return event

    def reaction_event(
        self,
        item_ts: str,
        *,
        reaction: str = "rewind",
        user: str = "U0ADA0001",
        channel: str = "C0DESIGN1",
        item_user: str | None = None,
    ) -> dict[str, Any]:
        """A `reaction_added` event (note: no thread_ts, just the item's channel and ts)."""
        return {
            "type": "reaction_added",
            "user": user,
            "reaction": reaction,
            "item_user": item_user or self.bot_user_id,
            "item": {"type": "message", "channel": channel, "ts": item_ts},
            "event_ts": self.next_ts(after=item_ts),
        }

    def envelope(self, event: dict[str, Any], event_id: str | None = None) -> dict[str, Any]:
        """The `event_callback` wrapper Slack puts around every event."""
        return {
            "token": LEGACY_TOKEN,
            "team_id": self.team_id,
            "api_app_id": self.api_app_id,
            "event": event,
            "type": "event_callback",
            "event_id": event_id or self.new_event_id(),
            "event_time": int(time.time()),
            "authorizations": [
                {
                    "enterprise_id": None,
                    "team_id": self.team_id,
                    "user_id": self.bot_user_id,
                    "is_bot": True,
                    "is_enterprise_install": False,
                }
            ],
            "is_ext_shared_channel": False,
            "event_context": f"4-{event.get('type', 'event')}-{self.team_id}-{event.get('channel', '')}",
        }

    def view_submission_payload(self, view: dict[str, Any], *, user: str = "U0ADA0001") -> dict[str, Any]:
        """A `view_submission` payload; `view` needs at least callback_id and state.values."""
        full_view = {
            "id": "V" + uuid.uuid4().hex[:10].upper(),
            "team_id": self.team_id,
            "type": "modal",
            "private_metadata": "",
            "callback_id": "",
            "state": {"values": {}},
            "hash": f"{time.time():.6f}.{secrets.token_hex(4)}",
            "app_id": self.api_app_id,
            "bot_id": "B0KN0WBOT",
            **view,
        }
        return {
            "type": "view_submission",
            "team": {"id": self.team_id, "domain": self.team_domain},
            "user": self._user_obj(user),
            "api_app_id": self.api_app_id,
            "token": LEGACY_TOKEN,
            "trigger_id": self._trigger_id(),
            "view": full_view,
            "response_urls": [],
            "is_enterprise_install": False,
            "enterprise": None,
        }

    def block_action_payload(
        self,
        action_id: str,
        value: str,
        *,
        user: str = "U0ADA0001",
        channel: str = "C0DESIGN1",
        message_ts: str,
        block_id: str = "actions",
    ) -> dict[str, Any]:
        """A `block_actions` payload for a button click on a message."""
        base = f"{self.hooks_base}/hooks" if self.hooks_base else "https://hooks.slack.com"
        return {
            "type": "block_actions",
            "user": self._user_obj(user),
            "api_app_id": self.api_app_id,
            "token": LEGACY_TOKEN,
            "container": {
                "type": "message",
                "message_ts": message_ts,
                "channel_id": channel,
                "is_ephemeral": False,
            },
            "trigger_id": self._trigger_id(),
            "team": {"id": self.team_id, "domain": self.team_domain},
            "enterprise": None,
            "is_enterprise_install": False,
            "channel": {"id": channel, "name": _KNOWN_NAMES.get(channel, channel.lower())},
            "message": {"type": "message", "ts": message_ts, "user": self.bot_user_id, "text": ""},
            "response_url": f"{base}/actions/{self.team_id}/{self._next()}/{secrets.token_hex(12)}",
            "actions": [
                {
                    "type": "button",
                    "action_id": action_id,
                    "block_id": block_id,
                    "value": value,
                    "action_ts": f"{time.time():.6f}",
                }
            ],
        }

    def home_action_payload(
        self, action_id: str, value: str = "", *, user: str = "U0ADA0001", view_id: str = "VHOME0001"
    ) -> dict[str, Any]:
        """A `block_actions` payload for a button in the App Home tab (no channel, no message)."""
        return {
            "type": "block_actions",
            "user": self._user_obj(user),
            "api_app_id": self.api_app_id,
            "token": LEGACY_TOKEN,
            "container": {"type": "view", "view_id": view_id},
            "trigger_id": self._trigger_id(),
            "team": {"id": self.team_id, "domain": self.team_domain},
            "enterprise": None,
            "is_enterprise_install": False,
            "view": {"id": view_id, "type": "home", "team_id": self.team_id, "callback_id": ""},
            "actions": [
                {
                    "type": "button",
                    "action_id": action_id,
                    "block_id": "home",
                    "value": value,
                    "action_ts": f"{time.time():.6f}",
                }
            ],
        }

    # ------------------------------------------------------------------ transport

    def _post(
        self,
        body: bytes,
        content_type: str,
        *,
        sign_with: str | None = None,
        timestamp: str | int | None = None,
        headers: dict[str, str] | None = None,
    ) -> httpx.Response:
        ts = str(int(time.time()) if timestamp is None else timestamp)
        signature = SignatureVerifier(sign_with or self.signing_secret).generate_signature(
            timestamp=ts, body=body
        )
        all_headers = {
            "Content-Type": content_type,
            "X-Slack-Request-Timestamp": ts,
            "X-Slack-Signature": signature or "",
            **(headers or {}),
        }
        return self.client.post(self.events_url, content=body, headers=all_headers)

    def _mirror(self, path: str, body: dict[str, Any]) -> None:
        """Tell the stand-in what the human did, so its transcript shows it; best effort."""
        if not self.hooks_base:
            return
        with contextlib.suppress(httpx.HTTPError):
            self.client.post(f"{self.hooks_base}/_sandbox/{path}", json=body)

    # ------------------------------------------------------------------ requests to the bot

    def command(
        self,
        text: str,
        *,
        user: str = "U0ADA0001",
        channel: str = "C0DESIGN1",
        trigger_id: str | None = None,
        command: str = "/knowlify",
        sign_with: str | None = None,
        timestamp: str | int | None = None,
    ) -> httpx.Response:
        payload = self.command_payload(
            text, user=user, channel=channel, trigger_id=trigger_id, command=command
        )
        self._mirror("commands", payload)
        body = urlencode(payload).encode()
        return self._post(body, "application/x-www-form-urlencoded", sign_with=sign_with, timestamp=timestamp)

    def event(
        self,
        event: dict[str, Any],
        *,
        event_id: str | None = None,
        retry_num: int | None = None,
        retry_reason: str = "http_timeout",
        sign_with: str | None = None,
        timestamp: str | int | None = None,
    ) -> httpx.Response:
        self._mirror("events", event)
        body = json.dumps(self.envelope(event, event_id)).encode()
        headers = {}
        if retry_num is not None:
            headers = {"X-Slack-Retry-Num": str(retry_num), "X-Slack-Retry-Reason": retry_reason}
        return self._post(body, "application/json", sign_with=sign_with, timestamp=timestamp, headers=headers)

    def reply(
        self,
        text: str,
        *,
        thread_ts: str | None,
        user: str = "U0ADA0001",
        channel: str = "C0DESIGN1",
        ts: str | None = None,
        subtype: str | None = None,
        bot_id: str | None = None,
        event_id: str | None = None,
        retry_num: int | None = None,
        **kw: Any,
    ) -> tuple[httpx.Response, str]:
        """Post a (thread) message as a user; returns (response, the message ts)."""
        ev = self.message_event(
            text, thread_ts=thread_ts, user=user, channel=channel, ts=ts, subtype=subtype, bot_id=bot_id, **kw
        )
        return self.event(ev, event_id=event_id, retry_num=retry_num), ev["ts"]

    def reaction(
        self,
        item_ts: str,
        *,
        reaction: str = "rewind",
        user: str = "U0ADA0001",
        channel: str = "C0DESIGN1",
        event_id: str | None = None,
        retry_num: int | None = None,
    ) -> httpx.Response:
        ev = self.reaction_event(item_ts, reaction=reaction, user=user, channel=channel)
        return self.event(ev, event_id=event_id, retry_num=retry_num)

    def interaction(
        self, payload: dict[str, Any], *, sign_with: str | None = None, timestamp: str | int | None = None
    ) -> httpx.Response:
        body = urlencode({"payload": json.dumps(payload)}).encode()
        return self._post(body, "application/x-www-form-urlencoded", sign_with=sign_with, timestamp=timestamp)

    def view_submission(self, view: dict[str, Any], *, user: str = "U0ADA0001") -> httpx.Response:
        return self.interaction(self.view_submission_payload(view, user=user))

    def block_action(
        self,
        action_id: str,
        value: str,
        *,
        user: str = "U0ADA0001",
        channel: str = "C0DESIGN1",
        message_ts: str,
    ) -> httpx.Response:
        return self.interaction(
            self.block_action_payload(action_id, value, user=user, channel=channel, message_ts=message_ts)
        )

    def url_verification(self, challenge: str) -> httpx.Response:
        body = json.dumps(
            {"token": LEGACY_TOKEN, "challenge": challenge, "type": "url_verification"}
        ).encode()
        return self._post(body, "application/json")


def ack_text(response: httpx.Response) -> str:
    """What the user sees of an ack: Bolt answers a text-only ack as text/plain, a richer one as JSON."""
    try:
        return str(response.json().get("text", ""))
    except ValueError:
        return response.text

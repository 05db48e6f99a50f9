"""The Slack Web API calls the bot makes, each one line for its callers.

slack_sdk raises SlackApiError for `ok: false`; here that becomes SlackFailure(error) so callers
branch on Slack's error code. Nothing here sleeps: no client has a retry handler. A 429 becomes
SlackFailure("ratelimited", retry_after), which the worker turns into the row's next run; a connection
failure becomes SlackFailure("connection_error"). The few calls a listener makes (users.info before a revert, an ephemeral answer, a short thread note)
run before Slack gets its answer, so listeners get their own client (`make_client(fast=True)`): no
retry handler that would sleep, and a short timeout, so the ack stays within Slack's 3 seconds.
"""

from __future__ import annotations

import logging
from typing import Any

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.webhook import WebhookClient

log = logging.getLogger(__name__)

# Errors that mean "this channel is closed to the bot": nothing to retry, tell the user another way.
NO_ACCESS = {"not_in_channel", "channel_not_found", "is_archived", "access_denied", "restricted_action"}


class SlackFailure(Exception):
    """Slack said no: ``error`` is its error code; ``retry_after`` is set on a 429 (ratelimited)."""

    def __init__(self, error: str, retry_after: float | None = None) -> None:
        super().__init__(error)
        self.error = error
        self.retry_after = retry_after


# Per call, for a listener's client: two calls (users.info, then an answer) fit in Slack's 3 s.
LISTENER_TIMEOUT_SECONDS = 1.0


def make_client(token: str, base_url: str, *, fast: bool = False) -> WebClient:
    """A client that never sleeps: a listener's (`fast`) also has a short timeout."""
    client = WebClient(token=token, base_url=base_url, timeout=LISTENER_TIMEOUT_SECONDS if fast else 10)  # type: ignore[arg-type]
    client.retry_handlers.clear()  # slack_sdk adds a connection-error handler (it sleeps) by default
    return client


def retry_after_of(headers: Any) -> float | None:
    """Slack's Retry-After (seconds) of a 429 answer; 1 s if it is missing or unreadable."""
    for name, value in dict(headers or {}).items():
        if str(name).lower() == "retry-after":
            raw = value[0] if isinstance(value, list | tuple) and value else value
            try:
                return max(float(raw), 0.0)
            except (TypeError, ValueError):
                break
    return 1.0


class PermissionUnknown(Exception):
    """users.info failed, timed out or was rate-limited: nobody may be told "you may not"."""


class SlackOps:
    def __init__(self, client: WebClient) -> None:
        self.client = client
        self._workspace_url: str | None = None

    def _call(self, method: str, **kwargs: Any) -> dict[str, Any]:
        try:
            # slack_sdk's own method wrappers pick the encoding each method accepts.
            response = getattr(self.client, method.replace(".", "_"))(**kwargs)
        except SlackApiError as exc:
            response = exc.response
            error = str(response.get("error", "unknown_error")) if response is not None else "unknown_error"
            if response is not None and response.status_code == 429:
                raise SlackFailure(error or "ratelimited", retry_after_of(response.headers)) from None
            raise SlackFailure(error) from None
        except OSError as exc:  # refused, reset, timed out: nothing to wait for here
            raise SlackFailure("connection_error") from exc
        return dict(response.data) if isinstance(response.data, dict) else {}

    def post(
        self,
        channel: str,
        text: str,
        blocks: list[dict[str, Any]] | None = None,
        thread_ts: str | None = None,
    ) -> str:
        args: dict[str, Any] = {"channel": channel, "text": text, "unfurl_links": False}
        if blocks:
            args["blocks"] = blocks
        if thread_ts:
            args["thread_ts"] = thread_ts
        return str(self._call("chat.postMessage", **args)["ts"])

    def update(self, channel: str, ts: str, text: str, blocks: list[dict[str, Any]] | None = None) -> None:
        args: dict[str, Any] = {"channel": channel, "ts": ts, "text": text}
        if blocks is not None:
            args["blocks"] = blocks
        self._call("chat.update", **args)

    def ephemeral(self, channel: str, user: str, text: str, thread_ts: str | None = None) -> None:
        args: dict[str, Any] = {"channel": channel, "user": user, "text": text}
        if thread_ts:
            args["thread_ts"] = thread_ts
        self._call("chat.postEphemeral", **args)

    def join(self, channel: str) -> str | None:
        """Join a public channel; returns Slack's error code when joining is not possible."""
        try:
            self._call("conversations.join", channel=channel)
            return None
        except SlackFailure as exc:
            return exc.error

    def is_admin(self, user: str, team_id: str | None) -> bool:
        """Whether `user` is an admin or owner of the workspace `team_id` (the bot's own).

        A member of another workspace (Slack Connect: a different `team_id`, or `is_stranger`) is
        never this workspace's admin, whatever their flags say. Raises PermissionUnknown when Slack
        could not answer, so the caller says "try again" rather than "not allowed".
        """
        try:
            info = self._call("users.info", user=user).get("user")
        except SlackFailure as exc:
            if exc.error == "user_not_found":
                return False
            raise PermissionUnknown(exc.error) from None
        except Exception as exc:  # timeout, connection refused, 429 without a retry handler
            raise PermissionUnknown(type(exc).__name__) from None
        if not isinstance(info, dict):
            raise PermissionUnknown("no user in users.info")
        if info.get("is_stranger") or (team_id and info.get("team_id") != team_id):
            return False
        if info.get("deleted") or info.get("is_restricted") or info.get("is_ultra_restricted"):
            return False
        return bool(info.get("is_admin") or info.get("is_owner") or info.get("is_primary_owner"))

    def respond(self, response_url: str, text: str) -> bool:
        """Post an ephemeral answer through a command's response_url (works without membership)."""
        try:
            result = WebhookClient(response_url, timeout=10).send(text=text, response_type="ephemeral")
        except Exception:  # a dead response_url must not stop the job
            log.warning("response_url post failed")
            return False
        return result.status_code == 200

    def permalink(self, channel: str, ts: str) -> str | None:
        """A link to a message, built from the workspace URL (no extra API call per message)."""
        if self._workspace_url is None:
            try:
                self._workspace_url = str(self._call("auth.test").get("url", ""))
            except SlackFailure:
                return None
        if not self._workspace_url:
            return None
        return f"{self._workspace_url.rstrip('/')}/archives/{channel}/p{ts.replace('.', '')}"

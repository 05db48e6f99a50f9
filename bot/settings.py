"""Every setting in README.md's Settings tables, read from the environment and a `.env` file.

A missing or malformed value stops start-up with one line that names the variable (exit status 2),
never a traceback: `load_settings()` turns pydantic's errors into a `SettingsError` the CLI prints.
Secrets are `SecretStr`, so they never show in a repr or a log line.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Literal
from urllib.parse import urlparse

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

KEY_PATTERN = re.compile(r"^kn_[0-9a-fA-F]{64}$")

Mode = Literal["serve", "socket", "demo"]

# Which variables each mode cannot run without (README.md, "`socket` or `serve`").
REQUIRED = {
    "serve": ("slack_bot_token", "slack_signing_secret", "knowlify_api_key"),
    "socket": ("slack_bot_token", "slack_app_token", "knowlify_api_key"),
    "demo": (),
}


def is_loopback_host(host: str | None) -> bool:
    """127.0.0.0/8, ::1 or the name localhost: the only hosts plain http:// may be used with."""
    if not host:
        return False
    if host.lower().rstrip(".") == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


PER_DAY_RULE = "must be a whole number, 0 (no limit) or more"


class SettingsError(Exception):
    """One line naming the setting that is missing or malformed and what it should look like."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", extra="ignore", case_sensitive=False)

    slack_bot_token: SecretStr | None = None
    slack_signing_secret: SecretStr | None = None
    slack_app_token: SecretStr | None = None
    slack_api_url: str = "https://slack.com/api/"
    knowlify_api_key: SecretStr | None = None
    knowlify_api_base: str = "https://api.knowlify.com"
    database_url: str = "sqlite:///knowlify-slack.db"
    knowlify_poll_seconds: float = 5.0
    knowlify_revert_emoji: str = "rewind"
    # Not in the contract's table: the length of Knowlify's rate-limit window. Only the simulator,
    # whose windows scale down for tests, makes this anything but 60.
    knowlify_window_seconds: float = Field(default=60.0)
    # How long one Knowlify request may take before its outcome counts as unknown.
    knowlify_timeout_seconds: float = Field(default=15.0)
    # A stable name for this replica (a pod or host name). After a restart under the same name the
    # worker takes its unfinished rows back at once; without it they wait for their lease to expire.
    knowlify_worker_id: str | None = None
    # `json`: one JSON object per log line (bot.log_setup).
    knowlify_log_format: str = "text"
    # How often the worker looks for due work; each job keeps its own poll interval on top.
    worker_tick_seconds: float = Field(default=0.5)
    # Per person, in any 24 hours (0 = no limit): videos created and edits requested.
    knowlify_user_videos_per_day: int = 20
    knowlify_user_edits_per_day: int = 50

    @field_validator("slack_bot_token")
    @classmethod
    def _bot_token(cls, v: SecretStr | None) -> SecretStr | None:
        if v is not None and not v.get_secret_value().startswith("xoxb-"):
            raise ValueError("must be a bot token starting with xoxb-")
        return v

    @field_validator("slack_app_token")
    @classmethod
    def _app_token(cls, v: SecretStr | None) -> SecretStr | None:
        if v is not None and not v.get_secret_value().startswith("xapp-"):
            raise ValueError("must be an app-level token starting with xapp-")
        return v

    @field_validator("slack_signing_secret")
    @classmethod
    def _secret(cls, v: SecretStr | None) -> SecretStr | None:
        if v is not None and not v.get_secret_value().strip():
            raise ValueError("must not be empty")
        return v

    @field_validator("knowlify_api_key")
    @classmethod
    def _key(cls, v: SecretStr | None) -> SecretStr | None:
        if v is not None and not KEY_PATTERN.match(v.get_secret_value()):
            raise ValueError("must be kn_ followed by 64 hexadecimal characters")
        return v

    @field_validator("slack_api_url", "knowlify_api_base")
    @classmethod
    def _url(cls, v: str) -> str:
        parsed = urlparse(v)
        if parsed.scheme not in ("http", "https") or not parsed.netloc:
            raise ValueError("must be an http(s) URL such as https://slack.com/api/")
        if parsed.scheme == "http" and not is_loopback_host(parsed.hostname):
            # Tokens and keys travel in these requests' headers: plain http only where no network sees it.
            raise ValueError(
                "must use https://; plain http:// is accepted only for a loopback host "
                "(127.0.0.0/8, localhost, ::1)"
            )
        return v

    @field_validator("database_url")
    @classmethod
    def _db(cls, v: str) -> str:
        from sqlalchemy.engine import make_url
        from sqlalchemy.exc import ArgumentError

        try:
            make_url(v)
        except ArgumentError as exc:
            raise ValueError("must be an SQLAlchemy URL such as sqlite:///knowlify-slack.db") from exc
        return v

    @field_validator(
        "knowlify_poll_seconds", "knowlify_window_seconds", "worker_tick_seconds", "knowlify_timeout_seconds"
    )
    @classmethod
    def _positive(cls, v: float) -> float:
        if not v > 0:
            raise ValueError("must be a number greater than 0")
        return v

    @field_validator("knowlify_log_format")
    @classmethod
    def _log_format(cls, v: str) -> str:
        v = v.strip().lower()
        if v not in ("text", "json"):
            raise ValueError("must be text or json")
        return v

    @field_validator("knowlify_revert_emoji")
    @classmethod
    def _emoji(cls, v: str) -> str:
        v = v.strip().strip(":")
        if not re.fullmatch(r"[a-z0-9_+\-']+", v):
            raise ValueError("must be an emoji name such as rewind (no colons)")
        return v

    @field_validator("knowlify_user_videos_per_day", "knowlify_user_edits_per_day", mode="before")
    @classmethod
    def _per_day(cls, v: object) -> int:
        text = str(v).strip()
        if isinstance(v, bool) or not text.isdigit():
            raise ValueError(PER_DAY_RULE)
        return int(text)

    @property
    def slack_api_base(self) -> str:
        """slack_sdk joins method names onto the base, so it needs the trailing slash."""
        return self.slack_api_url if self.slack_api_url.endswith("/") else self.slack_api_url + "/"

    def secret(self, name: str) -> str:
        value = getattr(self, name)
        return value.get_secret_value() if value is not None else ""

    def secrets(self) -> list[str]:
        """Every secret value, for the log filter that scrubs them."""
        names = ("slack_bot_token", "slack_signing_secret", "slack_app_token", "knowlify_api_key")
        return [s for s in (self.secret(n) for n in names) if s]


def load_settings(mode: Mode, **overrides: object) -> Settings:
    """Build settings for `mode` or raise SettingsError with one line naming the culprit."""
    try:
        settings = Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        err = exc.errors()[0]
        name = str(err["loc"][0]).upper() if err["loc"] else "settings"
        message = str(err["msg"]).removeprefix("Value error, ")
        if err["type"] in ("float_parsing", "int_parsing"):
            message = "must be a number greater than 0"
        raise SettingsError(f"{name} {message}") from None
    for name in REQUIRED[mode]:
        if getattr(settings, name) is None:
            raise SettingsError(f"{name.upper()} is not set; `knowlify-slack {mode}` needs it")
    return settings

"""Logging that can never carry a secret, a request body or a forged line.

One filter, `RedactSecrets`, sits on every root handler and sees every record before any
formatter does:
  - it renders the message with its arguments and scrubs the configured tokens and keys (and
    anything shaped like one) from it and from the traceback;
  - it escapes CR, LF and every other control character in the message (`\\n`, `\\r`, `\\x1b`…),
    and indents every line of a traceback, so text from a request can never start a line of its
    own that looks like a record;
  - it drops the records of libraries that put whole payloads into a message (PAYLOAD_LOGGERS),
    whatever level the operator chose.
A formatter therefore gets `record.msg` as one safe line with `record.args` None, and
`record.exc_text` already scrubbed.

`KNOWLIFY_LOG_FORMAT=json` makes every line the process writes one JSON object (`time`, `level`,
`logger`, `message`, and `exception` when there is one): the bot's own records, uvicorn's access and
error lines (routed through the root handler and so through the same filter), warnings, uncaught
exceptions in any thread, and the one-line start-up error.
"""

from __future__ import annotations

import json
import logging
import os
import re
import sys
import threading
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

_SHAPES = re.compile(r"(xox[abposr]-[A-Za-z0-9-]+|xapp-[A-Za-z0-9-]+|kn_[0-9A-Fa-f]{16,})")

# C0 and C1 controls, DEL, and the Unicode line/paragraph separators some viewers break lines on.
_CONTROLS = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}

# Loggers that write a message body into a record; below the given level they are dropped.
# slack_bolt.RequestVerification logs the whole body of every request that fails the signature
# check at INFO; slack_sdk's and Bolt's DEBUG lines carry every Web API request and response body
# (the prompts and replies people wrote) and every response Bolt sends back to Slack.
PAYLOAD_LOGGERS: dict[str, int] = {
    "slack_bolt.RequestVerification": logging.WARNING,
    "slack_bolt": logging.INFO,
    "slack_sdk": logging.INFO,
}
TRACEBACK_INDENT = "  | "


def escape_controls(text: str) -> str:
    """The text on one line: every control character written as a visible escape."""
    return _CONTROLS.sub(_escape_one, text)


def _escape_one(match: re.Match[str]) -> str:
    char = match.group()
    if char in _NAMED:
        return _NAMED[char]
    return f"\\x{ord(char):02x}" if ord(char) <= 0xFF else f"\\u{ord(char):04x}"


def escape_block(text: str) -> str:
    """A multi-line text (a traceback) with each line escaped and indented, so none of its lines,
    whatever an exception message holds, can pass for the start of a record."""
    return "\n".join(TRACEBACK_INDENT + escape_controls(line) for line in text.split("\n"))


def _quiet_below(name: str) -> int:
    """The level a record of logger `name` needs to be kept (the most specific PAYLOAD_LOGGERS entry)."""
    while name:
        if name in PAYLOAD_LOGGERS:
            return PAYLOAD_LOGGERS[name]
        name = name.rpartition(".")[0]
    return logging.NOTSET


class RedactSecrets(logging.Filter):
    """Scrub secrets, escape control characters, drop payload-carrying records (see module doc)."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        super().__init__()
        self.secrets = sorted({s for s in secrets if s}, key=len, reverse=True)

    def scrub(self, text: str) -> str:
        for secret in self.secrets:
            text = text.replace(secret, "[redacted]")
        return _SHAPES.sub("[redacted]", text)

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < _quiet_below(record.name):
            return False
        if getattr(record, "_knowlify_safe", False):  # several handlers share one record
            return True
        try:
            message = record.getMessage()
        except Exception:  # a bad format string must not lose the record (nor raise in a handler)
            message = f"{record.msg!r} % {record.args!r}"
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        record.msg, record.args = escape_controls(self.scrub(message)), None
        if record.exc_text:
            record.exc_text = escape_block(self.scrub(record.exc_text))
        if record.stack_info:
            record.stack_info = escape_block(self.scrub(record.stack_info))
        record._knowlify_safe = True
        return True


FORMATS = ("text", "json")


class JsonFormatter(logging.Formatter):
    """One JSON object per record; json.dumps escapes newlines, so a record is always one line."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            line["exception"] = record.exc_text
        http = getattr(record, "http", None)
        if isinstance(http, dict):
            line["http"] = http
        return json.dumps(line, ensure_ascii=False)


class AccessLine(logging.Filter):
    """uvicorn's access records without the query string (it may carry an OAuth code), with the
    request's parts as fields."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple) and len(args) == 5:
            client, method, path, version, status = args
            path = str(path).split("?", 1)[0]
            record.args = (client, method, path, version, status)
            record.http = {"client": str(client), "method": str(method), "path": path, "status": status}
        return True


def json_line(message: str, level: str = "ERROR") -> str:
    """A record written outside logging (the start-up error), in the same shape."""
    now = datetime.now(UTC).isoformat(timespec="milliseconds")
    return json.dumps({"time": now, "level": level, "logger": "knowlify-slack", "message": message})


def requested_format() -> str:
    """KNOWLIFY_LOG_FORMAT from the environment or `.env`, readable before the settings are (so a
    settings error is written in the format asked for); anything unknown reads as text."""
    value = os.environ.get("KNOWLIFY_LOG_FORMAT")
    if value is None and os.path.exists(".env"):
        try:
            from dotenv import dotenv_values

            found = {k.upper(): v for k, v in dotenv_values(".env").items()}
            value = found.get("KNOWLIFY_LOG_FORMAT")
        except Exception:
            value = None
    value = (value or "text").strip().lower()
    return value if value in FORMATS else "text"


def startup_error(message: str, fmt: str | None = None) -> None:
    """The one stderr line of a process that cannot start."""
    fmt = fmt or requested_format()
    print(json_line(message) if fmt == "json" else message, file=sys.stderr, flush=True)


def uvicorn_options(fmt: str) -> dict[str, Any]:
    """How `serve` runs uvicorn. JSON: no logging config of its own, so its error and access lines
    reach the root handler (and the secret filter) like every other record."""
    if fmt == "json":
        return {"log_config": None, "log_level": "info", "access_log": True}
    # Text too: uvicorn's own handlers would bypass the filter that escapes what a request carries.
    return {"log_config": None, "log_level": "warning"}


def _route_everything_to_logging() -> None:
    """Warnings and uncaught exceptions (main thread or any other) become records, not raw stderr."""
    logging.captureWarnings(True)
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access", "uvicorn.asgi"):
        logger = logging.getLogger(name)
        logger.handlers = []
        logger.propagate = True
    access = logging.getLogger("uvicorn.access")
    if not any(isinstance(f, AccessLine) for f in access.filters):
        access.addFilter(AccessLine())

    def excepthook(kind: type[BaseException], exc: BaseException, tb: Any) -> None:
        logging.getLogger("knowlify-slack").critical("uncaught exception", exc_info=(kind, exc, tb))

    def thread_excepthook(args: threading.ExceptHookArgs) -> None:
        if args.exc_type is SystemExit or args.exc_value is None:
            return
        logging.getLogger("knowlify-slack").error(
            "uncaught exception in thread %s",
            args.thread.name if args.thread else "?",
            exc_info=(args.exc_type, args.exc_value, args.exc_traceback),
        )

    sys.excepthook = excepthook
    threading.excepthook = thread_excepthook


def install(secrets: Iterable[str], level: int = logging.INFO, fmt: str = "text") -> RedactSecrets:
    """Attach the filter to every root handler (creating one if there is none)."""
    root = logging.getLogger()
    if fmt == "json":
        for old in list(root.handlers):
            root.removeHandler(old)
        handler = logging.StreamHandler()
        handler.setFormatter(JsonFormatter())
        root.addHandler(handler)
        _route_everything_to_logging()
    elif not root.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        root.addHandler(handler)
    root.setLevel(level)
    redactor = RedactSecrets(secrets)
    for each in root.handlers:
        for stale in [f for f in each.filters if isinstance(f, RedactSecrets)]:
            each.removeFilter(stale)
        each.addFilter(redactor)
    return redactor

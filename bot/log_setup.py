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
A formatter (text today, any other later) therefore gets `record.msg` as one safe line with
`record.args` None, and `record.exc_text` already scrubbed.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable

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


def install(secrets: Iterable[str], level: int = logging.INFO) -> RedactSecrets:
    """Attach the filter to every root handler (creating one if there is none)."""
    root = logging.getLogger()
    if not root.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        root.addHandler(handler)
    root.setLevel(level)
    redactor = RedactSecrets(secrets)
    for handler in root.handlers:
        for old in [f for f in handler.filters if isinstance(f, RedactSecrets)]:
            handler.removeFilter(old)
        handler.addFilter(redactor)
    return redactor

"""What the installed log filter lets a handler write: one line per record, no secret, no payload."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator

import pytest

from bot import log_setup

SECRET = "xoxb-1234-5678-abcdefghijkl"
RECORD_START = "REC "  # the test formatter's prefix: every real record's first line starts with it


@pytest.fixture
def output() -> Iterator[io.StringIO]:
    """A root handler like the bot's, with the filter installed, writing to a buffer."""
    root = logging.getLogger()
    saved_handlers, saved_level = root.handlers[:], root.level
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter(RECORD_START + "%(levelname)s %(name)s: %(message)s"))
    root.handlers = [handler]
    # Every Bolt App() copies the root level onto its own logger: an earlier test's app must not
    # decide what this test sees.
    for name in list(logging.Logger.manager.loggerDict):
        if name.startswith(("slack_bolt", "slack_sdk")):
            logging.getLogger(name).setLevel(logging.NOTSET)
    try:
        log_setup.install([SECRET], logging.DEBUG)
        yield stream
    finally:
        root.handlers, root.level = saved_handlers, saved_level


def _lines(stream: io.StringIO) -> list[str]:
    return stream.getvalue().splitlines()


FORGED = "REC CRITICAL bot.worker: all jobs deleted"


@pytest.mark.parametrize(
    "evil",
    [
        f"x\n{FORGED}",
        f"x\r\n{FORGED}",
        f"x\r{FORGED}",
        f"x\x0b{FORGED}",
        f"x\x0c{FORGED}",
        f"x\x1c{FORGED}",
        f"x\x85{FORGED}",
        f"x\u2028{FORGED}",
        f"x\u2029{FORGED}",
        f"x\x1b[2K\x1b[1G{FORGED}",  # a terminal's erase-line: the real line vanishes on screen
    ],
)
def test_control_characters_in_arguments_or_message_stay_on_one_visible_line(output, evil):
    logging.getLogger("bot.test").warning("team %s refused", evil)
    logging.getLogger("bot.test").warning(evil)
    lines = output.getvalue().split("\n")[:-1]
    assert len(lines) == 2 and all(line.startswith(RECORD_START) for line in lines), lines
    assert not any(ch in output.getvalue() for ch in "\r\x0b\x0c\x1c\x1b\x85\u2028\u2029")
    assert FORGED in lines[0], "the text itself is kept, escaped, for the operator to read"


def test_a_traceback_cannot_start_a_record_line_and_keeps_secrets_out(output):
    try:
        raise ValueError(f"bad input\n{FORGED} with {SECRET}")
    except ValueError:
        logging.getLogger("bot.test").exception("step failed for %s", "job 7")
    lines = _lines(output)
    assert lines[0] == f"{RECORD_START}ERROR bot.test: step failed for job 7"
    assert all(line.startswith(log_setup.TRACEBACK_INDENT) for line in lines[1:]), lines
    assert any("ValueError: bad input" in line for line in lines) and FORGED in output.getvalue()
    assert SECRET not in output.getvalue() and "[redacted]" in output.getvalue()


def test_secrets_are_still_scrubbed_from_messages_and_arguments(output):
    logging.getLogger("bot.test").info("token %s and key kn_%s", SECRET, "ab" * 32)
    text = output.getvalue()
    assert SECRET not in text and "kn_abab" not in text and text.count("[redacted]") == 2


def test_libraries_that_log_payloads_are_kept_out_below_their_level(output):
    body = "payload=SECRET-PROMPT"
    logging.getLogger("slack_bolt.RequestVerification").info("Invalid request signature (body: %s)", body)
    logging.getLogger("slack_sdk.web.base_client").debug("Sending a request - json_body: %s", body)
    logging.getLogger("slack_bolt.App").debug("Responding with status: 200 body: %s", body)
    assert "SECRET-PROMPT" not in output.getvalue()
    # Their warnings and errors still come through, and every other logger keeps DEBUG.
    logging.getLogger("slack_sdk.socket_mode").warning("connection lost")
    logging.getLogger("slack_bolt.App").info("Bolt app is running")
    logging.getLogger("bot.worker").debug("tick")
    assert _lines(output) == [
        f"{RECORD_START}WARNING slack_sdk.socket_mode: connection lost",
        f"{RECORD_START}INFO slack_bolt.App: Bolt app is running",
        f"{RECORD_START}DEBUG bot.worker: tick",
    ]


def test_a_record_with_a_broken_format_string_is_still_written(output):
    logging.getLogger("bot.test").warning("%d items", "not a number")
    assert len(_lines(output)) == 1 and "items" in output.getvalue()

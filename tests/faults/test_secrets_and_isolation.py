"""Secrets never reach a log line or a Slack message; a thread or a reaction never reaches across
channels or onto messages the bot does not know."""

from __future__ import annotations

import json
import logging

from sandbox.bot_process import BotProcess
from sandbox.stack import API_KEY, APP_TOKEN, BOT_TOKEN, SIGNING_SECRET, LocalStack
from tests.faults.conftest import make_stack
from tests.faults.conversation import full_conversation
from tests.faults.invariants import Ledger, check, edit_rows, job_for, posts

SECRETS = {
    "Knowlify key": API_KEY,
    "Knowlify key (hex part)": API_KEY.removeprefix("kn_"),
    "bot token": BOT_TOKEN,
    "app token": APP_TOKEN,
    "signing secret": SIGNING_SECRET,
}


def _slack_side(stack: LocalStack) -> str:
    """Everything Slack saw from the bot: every Web API call and answer, response_url posts, views."""
    seen = [(c.method, c.args, c.response) for c in stack.slack.calls]
    return json.dumps([seen, stack.slack.hooks(), stack.slack.ephemerals(), stack.slack.views()], default=str)


def _leaks(text: str) -> list[str]:
    return [name for name, secret in SECRETS.items() if secret in text]


def test_no_secret_in_debug_logs_or_slack_messages_in_process(fstack, caplog):
    stack, ledger = fstack, Ledger()
    caplog.set_level(logging.DEBUG)
    assert stack.driver is not None
    full_conversation(stack, stack.driver, ledger, "secret-inproc")
    check(stack, ledger)
    lines = []
    for r in caplog.records:
        lines.append(r.getMessage())
        if r.exc_info:
            lines.append(logging.Formatter().formatException(r.exc_info))
    assert len(lines) > 50, "DEBUG logging was on"
    leaked = {(name, line[:160]) for line in lines for name in _leaks(line)}
    assert not leaked, f"secrets in log records: {sorted(leaked)[:5]}"
    assert not _leaks(_slack_side(stack)), f"secrets in Slack messages: {_leaks(_slack_side(stack))}"


def test_no_secret_in_the_served_bots_debug_log(tmp_path, db_url):
    stack = make_stack(database_url=db_url).start(bot=False)
    bot = BotProcess(stack, tmp_path / "bot-debug.log", log_level="DEBUG")
    try:
        bot.start()
        assert bot.driver is not None
        ledger = Ledger()
        full_conversation(stack, bot.driver, ledger, "secret-served")
        check(stack, ledger)
    finally:
        bot.stop()
        stack.stop()
    log = bot.log_text()
    assert log.count("\n") > 50 and "DEBUG" in log, "the bot logged at DEBUG"
    leaked = {(name, line[:160]) for line in log.splitlines() for name in _leaks(line)}
    assert not leaked, f"secrets in the bot's log: {sorted(leaked)[:5]}"
    assert not _leaks(_slack_side(stack))


def test_threads_and_reactions_never_reach_across_channels_or_onto_unknown_messages(fstack):
    stack, ledger = fstack, Ledger()
    driver = stack.driver
    assert driver is not None
    stack.slack.add_channel("C0OTHER01", name="other")
    full_conversation(stack, driver, ledger, "isolation")
    check(stack, ledger)
    job = job_for(stack, "isolation explain how tides work")
    reply_ts = edit_rows(stack)[0]["reply_ts"]
    before = (len(stack.sim.calls), len(posts(stack)), len(stack.slack.ephemerals()), len(edit_rows(stack)))

    # Channel B quotes channel A's thread (same ts): not a video's thread there.
    response, _ = driver.reply(
        "isolation: make scene 1 purple", thread_ts=job["card_ts"], channel="C0OTHER01"
    )
    assert response.status_code == 200
    # The revert emoji on channel B's message with the ts of A's edit reply, on A's card, and on a
    # message in A the bot never saw.
    for channel, ts in (
        ("C0OTHER01", reply_ts),
        ("C0OTHER01", job["card_ts"]),
        ("C0DESIGN1", "1700000000.000100"),
    ):
        assert driver.reaction(ts, channel=channel).status_code == 200
    assert stack.runtime is not None
    stack.runtime.app._listener_runner.listener_executor.shutdown(wait=True)  # every handler has run

    after = (len(stack.sim.calls), len(posts(stack)), len(stack.slack.ephemerals()), len(edit_rows(stack)))
    assert after == before, "a message from another channel, or on an unknown message, had an effect"

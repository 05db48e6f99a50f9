"""`KNOWLIFY_LOG_FORMAT=json` on the real `knowlify-slack serve` process: every line it writes, on
stdout and stderr, is one JSON object with time, level and message, and none carries a secret."""

from __future__ import annotations

import json
import subprocess
import sys

import httpx

from sandbox.bot_process import BotProcess
from sandbox.stack import API_KEY, APP_TOKEN, BOT_TOKEN, SIGNING_SECRET, LocalStack, StackConfig
from tests.helpers import card_ts, posted

SECRETS = (BOT_TOKEN, APP_TOKEN, SIGNING_SECRET, API_KEY)


def records(text: str) -> list[dict]:
    lines = [line for line in text.splitlines() if not line.startswith("--- ")]  # the harness's markers
    parsed = []
    for line in lines:
        record = json.loads(line)  # raises on any line that is not JSON
        assert isinstance(record, dict) and {"time", "level", "message"} <= record.keys(), line
        parsed.append(record)
    return parsed


def test_every_line_of_the_served_bot_is_json_and_secret_free(tmp_path):
    stack = LocalStack(
        StackConfig(stage_seconds=0.15, poll_seconds=0.05, tick_seconds=0.02, window_seconds=1.0)
    ).start(bot=False)
    bot = BotProcess(stack, tmp_path / "bot.log", env={"KNOWLIFY_LOG_FORMAT": "json"})
    try:
        bot.start()
        assert bot.driver is not None
        bot.driver.command("Explain how HTTPS works")
        bot.driver.command("help")
        stack.slack.wait_for(posted("Your video is ready", thread=True), timeout=30)
        bot.driver.reply("Make scene 2 more dramatic", thread_ts=card_ts(stack))
        stack.slack.wait_for(posted("Edit applied", thread=True), timeout=30)
        with httpx.Client(base_url=bot.url) as client:
            assert client.post("/slack/events", content=b"token=x", headers={}).status_code == 401
            client.post(
                "/slack/events?code=oauth-code-must-not-be-logged",
                content=b'{"not": "signed"\n, "forged": "line"}',
                headers={"content-type": "application/json"},
            )
            client.get("/metrics")
            client.get("/readyz")
            client.get("/no-such-page")
    finally:
        bot.stop()
        stack.stop()

    text = bot.log_text()
    for secret in SECRETS:
        assert secret not in text
    assert "oauth-code-must-not-be-logged" not in text
    found = records(text)
    access = [r for r in found if r.get("logger") == "uvicorn.access"]
    assert {r["http"]["path"] for r in access} >= {"/slack/events", "/metrics", "/readyz", "/no-such-page"}
    assert any(r["http"]["status"] == 401 for r in access)
    assert any(r.get("logger") == "uvicorn.error" for r in found), "uvicorn's own lines are JSON too"


def run_cli(env: dict[str, str], cwd) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bot.cli", "serve", "--port", "0"],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_the_start_up_error_is_one_json_line(tmp_path):
    stack = LocalStack(StackConfig())
    env = stack.bot_env()
    env["KNOWLIFY_LOG_FORMAT"] = "json"
    del env["SLACK_BOT_TOKEN"]
    result = run_cli(env, tmp_path)
    assert result.returncode == 2 and result.stdout == ""
    [line] = result.stderr.splitlines()
    record = json.loads(line)
    assert record["level"] == "ERROR" and "SLACK_BOT_TOKEN" in record["message"]

    # Slack unreachable at start: exit 1, still one JSON line, and no token in it.
    env = stack.bot_env()
    env.update(KNOWLIFY_LOG_FORMAT="json", SLACK_API_URL="http://127.0.0.1:9/api/")
    result = run_cli(env, tmp_path)
    assert result.returncode == 1 and BOT_TOKEN not in result.stderr
    *_, last = records(result.stderr)
    assert "could not start" in last["message"]


def test_a_bad_log_format_stops_start_up_naming_it(tmp_path):
    env = LocalStack(StackConfig()).bot_env()
    env["KNOWLIFY_LOG_FORMAT"] = "xml"
    result = run_cli(env, tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip() == "knowlify-slack: KNOWLIFY_LOG_FORMAT must be text or json"

"""A missing or malformed setting stops start-up with exit 2 and one line naming it."""

from __future__ import annotations

import pytest

from bot.settings import SettingsError, load_settings
from tests.helpers import run_cli_start

KEY = "kn_" + "ab" * 32
GOOD = {
    "SLACK_BOT_TOKEN": "xoxb-1-2-abc",
    "SLACK_SIGNING_SECRET": "s3cret",
    "SLACK_APP_TOKEN": "xapp-1-A-abc",
    "KNOWLIFY_API_KEY": KEY,
}


def env(monkeypatch: pytest.MonkeyPatch, **values: str) -> None:
    for name, value in {**GOOD, **values}.items():
        if value is None:
            monkeypatch.delenv(name, raising=False)
        else:
            monkeypatch.setenv(name, value)


def test_defaults_match_the_contract(monkeypatch):
    env(monkeypatch)
    s = load_settings("serve")
    assert s.slack_api_url == "https://slack.com/api/"
    assert s.knowlify_api_base == "https://api.knowlify.com"
    assert s.database_url == "sqlite:///knowlify-slack.db"
    assert s.knowlify_poll_seconds == 5.0 and s.knowlify_revert_emoji == "rewind"


@pytest.mark.parametrize(
    ("mode", "missing"),
    [
        ("serve", "SLACK_SIGNING_SECRET"),
        ("serve", "KNOWLIFY_API_KEY"),
        ("socket", "SLACK_APP_TOKEN"),
        ("socket", "SLACK_BOT_TOKEN"),
    ],
)
def test_each_mode_names_the_setting_it_lacks(monkeypatch, mode, missing):
    env(monkeypatch, **{missing: None})
    with pytest.raises(SettingsError, match=missing):
        load_settings(mode)


@pytest.mark.parametrize(
    ("name", "value", "says"),
    [
        ("SLACK_BOT_TOKEN", "xoxp-user-token", "xoxb-"),
        ("SLACK_APP_TOKEN", "xoxb-not-an-app-token", "xapp-"),
        ("KNOWLIFY_API_KEY", "kn_123", "64 hexadecimal"),
        ("KNOWLIFY_POLL_SECONDS", "0", "greater than 0"),
        ("KNOWLIFY_POLL_SECONDS", "-1.5", "greater than 0"),
        ("KNOWLIFY_POLL_SECONDS", "soon", "number"),
        ("SLACK_API_URL", "not a url", "URL"),
        ("KNOWLIFY_API_BASE", "ftp://x", "URL"),
        ("DATABASE_URL", "nonsense", "SQLAlchemy URL"),
        ("KNOWLIFY_REVERT_EMOJI", "re wind", "emoji"),
    ],
)
def test_malformed_settings_are_named(monkeypatch, name, value, says):
    env(monkeypatch, **{name: value})
    with pytest.raises(SettingsError) as err:
        load_settings("socket" if "APP" in name else "serve")
    assert name in str(err.value) and says in str(err.value)
    assert "\n" not in str(err.value)


def test_secrets_never_show_in_a_repr(monkeypatch):
    env(monkeypatch)
    text = repr(load_settings("serve"))
    for secret in GOOD.values():
        assert secret not in text


def test_cli_exits_2_with_one_line_and_no_traceback(tmp_path):
    code, lines, stderr = run_cli_start(tmp_path, {**GOOD, "KNOWLIFY_API_KEY": "kn_short"})
    assert code == 2
    assert len(lines) == 1 and "KNOWLIFY_API_KEY" in lines[0]
    assert "Traceback" not in stderr and "kn_short" not in stderr

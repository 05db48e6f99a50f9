"""Plain http:// is a malformed KNOWLIFY_API_BASE or SLACK_API_URL unless the host is loopback:
tokens and keys ride in those requests' headers."""

from __future__ import annotations

import pytest

from bot.settings import SettingsError, load_settings
from tests.helpers import run_cli_start
from tests.unit.test_settings import GOOD, env

LOOPBACK = [
    "http://127.0.0.1:8400",
    "http://127.8.9.10/knowlify",
    "http://localhost:3001/api/",
    "http://LOCALHOST/api/",
    "http://[::1]:8080/",
]
NOT_LOOPBACK = [
    "http://api.knowlify.com",
    "http://slack.com/api/",
    "http://10.0.0.5:8400",
    "http://128.0.0.1/",
    "http://0.0.0.0:8400",
    "http://localhost.evil.example/",
    "http://127.0.0.1.nip.io/",
    "http://[::2]/",
    "http://[::ffff:10.0.0.1]/",
]


@pytest.mark.parametrize("name", ["KNOWLIFY_API_BASE", "SLACK_API_URL"])
@pytest.mark.parametrize("url", LOOPBACK)
def test_plain_http_to_a_loopback_host_is_accepted(monkeypatch, name, url):
    env(monkeypatch, **{name: url})
    settings = load_settings("serve")
    assert getattr(settings, name.lower()) == url


@pytest.mark.parametrize("name", ["KNOWLIFY_API_BASE", "SLACK_API_URL"])
@pytest.mark.parametrize("url", NOT_LOOPBACK)
def test_plain_http_to_any_other_host_is_a_malformed_setting(monkeypatch, name, url):
    env(monkeypatch, **{name: url})
    with pytest.raises(SettingsError) as err:
        load_settings("serve")
    message = str(err.value)
    assert message.startswith(name) and "https://" in message and "loopback" in message
    assert "\n" not in message


@pytest.mark.parametrize("name", ["KNOWLIFY_API_BASE", "SLACK_API_URL"])
def test_https_to_any_host_is_accepted(monkeypatch, name):
    env(monkeypatch, **{name: "https://knowlify.internal.example:8443/api/"})
    assert load_settings("serve")


def test_cli_exits_2_naming_the_plain_http_url(tmp_path):
    code, lines, stderr = run_cli_start(tmp_path, {**GOOD, "KNOWLIFY_API_BASE": "http://api.knowlify.com"})
    assert code == 2
    assert len(lines) == 1 and lines[0].startswith("knowlify-slack: KNOWLIFY_API_BASE must use https://")
    assert "Traceback" not in stderr

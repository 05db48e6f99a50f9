"""The OAuth stores on the bot's database: tokens encrypted and team-bound, reinstall replaces,
states single-use, and installation look-ups never wait behind the worker's write lock on SQLite."""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path

import pytest
import yaml
from cryptography.fernet import Fernet
from slack_sdk.oauth.installation_store import Installation

from bot.installs import BOT_SCOPES, CookieOptionalStateUtils, Installs
from bot.vault import Vault
from storage.db import init_schema, make_engine

ROOT = Path(__file__).resolve().parents[2]
KEY = Fernet.generate_key().decode()


@pytest.fixture
def installs(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'bot.db'}")
    init_schema(engine)
    made = Installs(
        client_id="111.222",
        client_secret="shh",
        database_url=f"sqlite:///{tmp_path / 'bot.db'}",
        slack_api_base="http://127.0.0.1:9/api/",
        vault=Vault(KEY),
    )
    yield made, engine, tmp_path / "bot.db"
    made.close()
    engine.dispose()


def installation(team: str, token: str, at: float | None = None) -> Installation:
    return Installation(
        app_id="A1",
        enterprise_id=None,
        team_id=team,
        bot_token=token,
        bot_id="B1",
        bot_user_id="UBOT",
        bot_scopes=BOT_SCOPES,
        user_id="UINSTALLER",
        installed_at=at,
    )


def test_the_install_scopes_are_the_manifests():
    manifest = yaml.safe_load((ROOT / "manifest.yml").read_text())
    assert sorted(BOT_SCOPES) == sorted(manifest["oauth_config"]["scopes"]["bot"])
    events = set(manifest["settings"]["event_subscriptions"]["bot_events"])
    assert {"app_uninstalled", "tokens_revoked"} <= events


def test_tokens_are_stored_encrypted_and_come_back_for_their_workspace(installs):
    made, _, path = installs
    token = "xoxb-T1-" + "9" * 40
    made.store.save(installation("T1", token))
    assert made.bot_token("T1") == token and made.installer("T1") == "UINSTALLER"
    assert made.bot_token("T2") is None
    with sqlite3.connect(path) as raw:
        cells = [str(v) for table in ("slack_bots", "slack_installations") for row in raw.execute(f"select * from {table}") for v in row]
    assert token not in " ".join(cells)
    assert any(len(c) > 150 for c in cells)  # the ciphertext fits (TEXT column)


def test_a_token_row_copied_to_another_workspace_does_not_decrypt(installs):
    made, _, path = installs
    made.store.save(installation("T1", "xoxb-T1-secret"))
    made.store.save(installation("T2", "xoxb-T2-secret"))
    with sqlite3.connect(path) as raw:
        (stolen,) = raw.execute("select bot_token from slack_bots where team_id='T1'").fetchone()
        raw.execute("update slack_bots set bot_token=? where team_id='T2'", (stolen,))
    assert made.bot_token("T2") is None


def test_reinstalling_replaces_the_token(installs):
    made, _, path = installs
    made.store.save(installation("T1", "xoxb-T1-old", at=time.time() - 60))
    made.store.save(installation("T1", "xoxb-T1-new"))
    assert made.bot_token("T1") == "xoxb-T1-new"
    with sqlite3.connect(path) as raw:
        assert raw.execute("select count(*) from slack_bots where team_id='T1'").fetchone() == (1,)
        assert raw.execute("select count(*) from slack_installations where team_id='T1'").fetchone() == (1,)
    made.forget("T1")
    assert made.bot_token("T1") is None and made.store.teams() == []


def test_a_state_is_accepted_once(installs):
    made, _, _ = installs
    state = made.states.issue()
    assert made.states.consume(state) is True
    assert made.states.consume(state) is False
    assert made.states.consume("made-up") is False
    assert made.states.consume("") is False


def test_an_expired_state_is_refused(installs):
    made, _, _ = installs
    made.states.expiration_seconds = -1
    assert made.states.consume(made.states.issue()) is False


def test_the_browser_cookie_is_checked_when_sent():
    utils = CookieOptionalStateUtils()
    assert utils.is_valid_browser("s1", {})
    assert utils.is_valid_browser("s1", {"cookie": [f"{utils.cookie_name}=s1"]})
    assert not utils.is_valid_browser("s1", {"cookie": [f"other=1; {utils.cookie_name}=s2"]})
    assert not utils.is_valid_browser(None, {})


def test_finding_an_installation_does_not_wait_for_the_workers_write(installs):
    """The bot's engine takes SQLite's write lock at BEGIN; Bolt's look-up before every ack must not
    queue behind it (it would fail after the 2 s busy timeout)."""
    made, engine, _ = installs
    made.store.save(installation("T1", "xoxb-T1-token"))
    holding, release = threading.Event(), threading.Event()

    def worker_write() -> None:
        with engine.begin() as conn:  # BEGIN IMMEDIATE: the write lock, held
            holding.set()
            release.wait(10)
            del conn

    thread = threading.Thread(target=worker_write)
    thread.start()
    try:
        assert holding.wait(10)
        started = time.monotonic()
        assert made.bot_token("T1") == "xoxb-T1-token"
        assert time.monotonic() - started < 1.0
    finally:
        release.set()
        thread.join()

"""One deployment, several workspaces, end to end over real HTTP: installed through the real OAuth
flow against the Slack stand-in, each workspace connecting its own Knowlify key from App Home, and
every Slack and Knowlify call checked for whose token and key it carried."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import httpx
import pytest

from bot.listeners.connect import (
    CONNECT_ACTION,
    CONNECT_MODAL,
    KEY_BLOCK,
    KEY_INPUT,
    REMOVE_BLOCK,
    REMOVE_INPUT,
)
from sandbox.slack_driver import SlackDriver
from sandbox.stack import CLIENT_SECRET, ENCRYPTION_KEY, LocalStack, StackConfig
from tests.helpers import ack_text, jobs, posted, wait_until

ALPHA, BETA = "T0KN0W001", "T0BETA002"
KEY_A, KEY_B = "kn_" + "a1" * 32, "kn_" + "b2" * 32
ADA, BOB, BEA = "U0ADA0001", "U0BOB0002", "U0BEA0001"  # ada installs alpha, bea installs beta


def submission(key: str, *, remove: bool = False) -> dict:
    values: dict = {KEY_BLOCK: {KEY_INPUT: {"type": "plain_text_input", "value": key}}}
    if remove:
        values[REMOVE_BLOCK] = {REMOVE_INPUT: {"type": "checkboxes", "selected_options": [{"value": "remove"}]}}
    return {"callback_id": CONNECT_MODAL, "state": {"values": values}}


@pytest.fixture
def multi() -> Iterator[LocalStack]:
    s = LocalStack(
        StackConfig(
            distributed=True, stage_seconds=0.15, poll_seconds=0.05, tick_seconds=0.02, window_seconds=2.0
        )
    ).start()
    s.slack.add_workspace(BETA, "beta")
    s.slack.add_user(BEA, name="bea", team_id=BETA)
    s.slack.add_channel("C0BETA001", name="beta-general", team_id=BETA)
    try:
        yield s
    finally:
        s.stop()


def connect(driver: SlackDriver, key: str, user: str):
    return driver.view_submission(submission(key), user=user)


@pytest.fixture
def two(multi: LocalStack) -> tuple[LocalStack, SlackDriver, SlackDriver]:
    """Both workspaces installed and connected, each by its installer."""
    assert multi.install(ALPHA, ADA).status_code == 200
    assert multi.install(BETA, BEA).status_code == 200
    alpha, beta = multi.driver_for(ALPHA), multi.driver_for(BETA)
    assert "errors" not in connect(alpha, KEY_A, ADA).text
    assert "errors" not in connect(beta, KEY_B, BEA).text
    return multi, alpha, beta


def test_each_workspace_uses_only_its_own_token_and_its_own_key(two):
    stack, alpha, beta = two
    assert "Got it" in ack_text(alpha.command("Explain TLS"))
    assert "Got it" in ack_text(beta.command("Explain DNS", user=BEA, channel="C0BETA001"))
    stack.slack.wait_for(posted("Your video is ready", thread=True), count=2, timeout=30)

    tokens = {ALPHA: stack.slack.tokens_of(ALPHA), BETA: stack.slack.tokens_of(BETA)}
    assert all(len(t) == 1 for t in tokens.values())
    bot_calls = [c for c in stack.slack.calls if c.method != "oauth.v2.access"]
    assert {c.team for c in bot_calls} == {ALPHA, BETA}
    for call in bot_calls:
        assert call.status == 200 and call.response.get("ok"), (call.method, call.response)
    alpha_channels = {c.args.get("channel") for c in bot_calls if c.team == ALPHA} - {None}
    beta_channels = {c.args.get("channel") for c in bot_calls if c.team == BETA} - {None}
    assert alpha_channels == {"C0DESIGN1"} and beta_channels == {"C0BETA001"}

    creates = [c for c in stack.sim.calls if c.method == "POST" and c.path == "/v1/videos"]
    assert sorted((c.key, c.body["videos"][0]["task"]) for c in creates) == [
        (KEY_A[-6:], "Explain TLS"),
        (KEY_B[-6:], "Explain DNS"),
    ]
    by_job = {j.team_id: j.knowlify_uuid for j in jobs(stack)}
    for call in stack.sim.calls:
        if call.method == "GET" and call.path.startswith("/v1/videos/") and call.status == 200:
            uuid = call.path.rsplit("/", 1)[1]
            assert call.key == (KEY_A if uuid == by_job[ALPHA] else KEY_B)[-6:]

    # `list` and App Home show only the asking workspace's videos.
    assert "Explain DNS" not in ack_text(alpha.command("list"))
    beta.event({"type": "app_home_opened", "user": BEA, "tab": "home", "channel": "DBEA"})
    home = str(stack.slack.home_view(BEA))
    assert "Explain DNS" in home and "Explain TLS" not in home


def test_install_redirects_to_slack_with_the_manifest_scopes_and_a_single_use_state(multi):
    with httpx.Client(base_url=multi.bot_server.url) as browser:  # type: ignore[union-attr]
        start = browser.get("/slack/install")
        assert start.status_code == 302
        target = urlparse(start.headers["location"])
        assert f"{target.scheme}://{target.netloc}{target.path}" == "https://slack.com/oauth/v2/authorize"
        query = parse_qs(target.query)
        assert query["client_id"] == ["1111111111.2222222222"] and "chat:write" in query["scope"][0]
        state = query["state"][0]
        code = multi.slack.approve(ALPHA, ADA)
        assert browser.get("/slack/oauth_redirect", params={"code": code, "state": state}).status_code == 200
        first_token = multi.slack.tokens_of(ALPHA)

        again = browser.get(
            "/slack/oauth_redirect", params={"code": multi.slack.approve(ALPHA, ADA), "state": state}
        )
        assert 400 <= again.status_code < 500
        for params in ({"code": "x", "state": "forged"}, {"code": "x"}):
            assert 400 <= browser.get("/slack/oauth_redirect", params=params).status_code < 500
        # A failed exchange (a code Slack did not issue) stores nothing either.
        state2 = parse_qs(urlparse(browser.get("/slack/install").headers["location"]).query)["state"][0]
        bad = browser.get("/slack/oauth_redirect", params={"code": "never-issued", "state": state2})
        assert 400 <= bad.status_code < 500
    assert multi.slack.tokens_of(ALPHA) == first_token  # no second exchange happened
    assert len(multi.slack.calls_of("oauth.v2.access")) == 2  # the good one and the never-issued code
    assert multi.runtime.installs.store.teams() == [ALPHA]  # type: ignore[union-attr]


def test_a_state_issued_by_one_replica_is_consumed_by_another(multi):
    with httpx.Client(base_url=multi.bot_server.url) as browser:  # type: ignore[union-attr]
        state = parse_qs(urlparse(browser.get("/slack/install").headers["location"]).query)["state"][0]
    multi.stop_bot()
    multi.start_bot()  # another process on the same database
    with httpx.Client(base_url=multi.bot_server.url) as browser:  # type: ignore[union-attr]
        done = browser.get("/slack/oauth_redirect", params={"code": multi.slack.approve(BETA, BEA), "state": state})
    assert done.status_code == 200 and multi.runtime.installs.bot_token(BETA)  # type: ignore[union-attr]


def test_reinstall_replaces_the_token(two):
    stack, alpha, _ = two
    old = stack.slack.tokens_of(ALPHA)
    assert stack.install(ALPHA, ADA).status_code == 200
    new = stack.slack.tokens_of(ALPHA)
    assert new != old
    alpha.command("Explain reinstalls")
    card = stack.slack.wait_for(posted("Explain reinstalls", thread=False), timeout=20)[0]
    assert [card.token] == new


def test_until_a_key_is_connected_the_command_says_who_can_connect_it_and_calls_nothing(multi):
    multi.install(BETA, BEA)
    beta = multi.driver_for(BETA)
    answer = ack_text(beta.command("Explain DNS", user=BEA, channel="C0BETA001"))
    assert "isn't connected" in answer and f"<@{BEA}>" in answer
    assert jobs(multi) == [] and multi.sim.calls == []


def test_only_admins_and_the_installer_see_the_button_and_a_forged_press_or_submission_changes_nothing(two):
    stack, alpha, _ = two
    for user, sees in ((ADA, True), ("U0ADM0003", True), (BOB, False)):
        alpha.event({"type": "app_home_opened", "user": user, "tab": "home", "channel": "D" + user})
        assert (CONNECT_ACTION in str(stack.slack.home_view(user))) is sees, user
    assert "a1a1" in str(stack.slack.home_view(ADA)) and KEY_A not in str(stack.slack.home_view(ADA))

    opened = len(stack.slack.calls_of("views.open"))
    alpha.interaction(alpha.home_action_payload(CONNECT_ACTION, user=BOB))
    assert len(stack.slack.calls_of("views.open")) == opened
    sim_calls = len(stack.sim.calls)
    forged = alpha.view_submission(submission("kn_" + "c3" * 32), user=BOB)
    assert forged.json()["response_action"] == "errors"
    removal = alpha.view_submission(submission("", remove=True), user=BOB)
    assert removal.json()["response_action"] == "errors"
    assert len(stack.sim.calls) == sim_calls
    assert stack.runtime.workspaces.connected(ALPHA).last4 == KEY_A[-4:]  # type: ignore[union-attr]

    # The admin (not the installer) may open it, replace the key and remove it.
    alpha.interaction(alpha.home_action_payload(CONNECT_ACTION, user="U0ADM0003"))
    assert len(stack.slack.calls_of("views.open")) == opened + 1
    replaced = alpha.view_submission(submission("kn_" + "c3" * 32), user="U0ADM0003")
    assert replaced.json()["response_action"] == "update"
    assert stack.runtime.workspaces.connected(ALPHA).last4 == "c3c3"  # type: ignore[union-attr]
    alpha.view_submission(submission("", remove=True), user="U0ADM0003")
    assert stack.runtime.workspaces.connected(ALPHA) is None  # type: ignore[union-attr]


def test_a_bad_key_is_refused_in_the_modal_and_not_stored(multi):
    multi.install(ALPHA, ADA)
    alpha = multi.driver_for(ALPHA)
    malformed = connect(alpha, "kn_123", ADA).json()
    assert malformed["response_action"] == "errors" and "64 hexadecimal" in malformed["errors"][KEY_BLOCK]
    assert multi.sim.calls == []  # the format is checked before anything is sent
    multi.sim.revoked_keys.add(KEY_B)
    refused = connect(alpha, KEY_B, ADA).json()
    assert refused["response_action"] == "errors" and "did not accept" in refused["errors"][KEY_BLOCK]
    assert [(c.method, c.status) for c in multi.sim.calls] == [("GET", 401)]  # one request, then refused
    assert multi.runtime.workspaces.connected(ALPHA) is None  # type: ignore[union-attr]


def test_uninstall_deletes_token_and_key_and_stops_polling_only_that_workspace(two):
    stack, alpha, beta = two
    stack.sim.config.stage_seconds = 30.0  # beta's render will still be running when beta leaves
    beta.command("Explain a long thing", user=BEA, channel="C0BETA001")
    uuid = wait_until(lambda: jobs(stack) and jobs(stack)[0].knowlify_uuid, what="beta's render started")
    wait_until(lambda: any(c.path == f"/v1/videos/{uuid}" for c in stack.sim.calls), what="beta polled")
    for event in (
        {"type": "tokens_revoked", "tokens": {"bot": ["UBOT"]}},
        {"type": "app_uninstalled"},
        {"type": "app_uninstalled"},
    ):
        assert beta.event(event).status_code == 200
    runtime = stack.runtime
    assert runtime.installs.bot_token(BETA) is None and runtime.workspaces.connected(BETA) is None  # type: ignore[union-attr]
    stack.slack.revoke(BETA)

    stack.sim.config.stage_seconds = 0.15
    alpha.command("Explain after")
    stack.slack.wait_for(posted("Your video is ready", thread=True), timeout=30)
    # (a tick already under way when the event came may have polled once more; none after it)
    beta_calls = sum(1 for c in stack.sim.calls if c.key == KEY_B[-6:])
    alpha.command("Explain after that")
    stack.slack.wait_for(posted("Your video is ready", thread=True), count=2, timeout=30)
    assert sum(1 for c in stack.sim.calls if c.key == KEY_B[-6:]) == beta_calls
    assert runtime.installs.bot_token(ALPHA) and runtime.workspaces.connected(ALPHA)  # type: ignore[union-attr]


def test_database_wal_and_logs_never_hold_a_token_a_key_or_the_client_secret(two, caplog):
    caplog.set_level(logging.DEBUG)
    stack, alpha, beta = two
    alpha.command("Explain secrets")
    beta.command("Explain more secrets", user=BEA, channel="C0BETA001")
    stack.slack.wait_for(posted("Your video is ready", thread=True), count=2, timeout=30)
    secrets = [*stack.slack.tokens_of(ALPHA), *stack.slack.tokens_of(BETA), KEY_A, KEY_B, CLIENT_SECRET, ENCRYPTION_KEY]
    assert len(secrets) == 6
    path = Path(stack.config.database_path)  # type: ignore[arg-type]
    files = [p for p in (path, Path(f"{path}-wal")) if p.exists()]
    assert files and any(p.name.endswith("-wal") for p in files)
    for file in files:
        data = file.read_bytes()
        for secret in secrets:
            assert secret.encode() not in data, f"{secret[:6]}… found in {file.name}"
    text = "\n".join(r.getMessage() + (r.exc_text or "") for r in caplog.records)
    for secret in secrets:
        assert secret not in text, f"{secret[:6]}… found in the log"

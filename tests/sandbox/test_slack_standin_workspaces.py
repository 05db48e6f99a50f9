"""The Slack stand-in as several workspaces: oauth.v2.access, a token per workspace, and every
call recorded with the token it carried."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from sandbox.servers import ServerThread
from sandbox.slack_standin import SlackStandIn

CLIENT_ID, CLIENT_SECRET = "111.222", "app-secret"


@pytest.fixture(scope="module")
def _served() -> Iterator[tuple[SlackStandIn, ServerThread]]:
    standin = SlackStandIn()
    with ServerThread(standin.app) as srv:
        yield standin, srv


@pytest.fixture
def standin(_served: tuple[SlackStandIn, ServerThread]) -> SlackStandIn:
    s = _served[0]
    s.reset()
    s.configure_oauth(CLIENT_ID, CLIENT_SECRET)
    s.add_workspace("T0BETA002", "beta")
    s.add_user("U0BEA0001", name="bea", team_id="T0BETA002")
    s.add_channel("C0BETA001", name="beta-general", team_id="T0BETA002")
    return s


@pytest.fixture
def api(_served: tuple[SlackStandIn, ServerThread], standin: SlackStandIn) -> str:
    return f"{_served[1].url}/api/"


def install(api: str, standin: SlackStandIn, team: str, user: str) -> str:
    code = standin.approve(team, user, scope="commands,chat:write")
    response = WebClient(base_url=api).oauth_v2_access(client_id=CLIENT_ID, client_secret=CLIENT_SECRET, code=code)
    assert response["team"]["id"] == team and response["authed_user"]["id"] == user
    return str(response["access_token"])


def test_each_workspace_gets_its_own_token_and_auth_test_answers_for_it(api, standin):
    beta = install(api, standin, "T0BETA002", "U0BEA0001")
    assert beta.startswith("xoxb-") and standin.tokens_of("T0BETA002") == [beta]
    who = WebClient(token=beta, base_url=api).auth_test()
    assert who["team_id"] == "T0BETA002" and who["user_id"] == standin.workspace("T0BETA002")["bot_user_id"]
    call = standin.calls_of("auth.test")[-1]
    assert (call.token, call.team) == (beta, "T0BETA002")


def test_a_code_works_once_and_only_with_the_apps_credentials(api, standin):
    code = standin.approve("T0BETA002", "U0BEA0001")
    client = WebClient(base_url=api)
    with pytest.raises(SlackApiError, match="bad_client_secret"):
        client.oauth_v2_access(client_id=CLIENT_ID, client_secret="wrong", code=code)
    client.oauth_v2_access(client_id=CLIENT_ID, client_secret=CLIENT_SECRET, code=code)
    with pytest.raises(SlackApiError, match="invalid_code"):
        client.oauth_v2_access(client_id=CLIENT_ID, client_secret=CLIENT_SECRET, code=code)


def test_reinstall_revokes_the_old_token_and_uninstall_every_token(api, standin):
    first = install(api, standin, "T0BETA002", "U0BEA0001")
    second = install(api, standin, "T0BETA002", "U0BEA0001")
    assert first != second
    with pytest.raises(SlackApiError, match="invalid_auth"):
        WebClient(token=first, base_url=api).auth_test()
    standin.revoke("T0BETA002")
    with pytest.raises(SlackApiError, match="invalid_auth"):
        WebClient(token=second, base_url=api).auth_test()


def test_a_token_reaches_only_its_own_workspaces_users_and_channels(api, standin):
    beta = WebClient(token=install(api, standin, "T0BETA002", "U0BEA0001"), base_url=api)
    assert beta.users_info(user="U0BEA0001")["user"]["team_id"] == "T0BETA002"
    with pytest.raises(SlackApiError, match="user_not_found"):
        beta.users_info(user="U0ADM0003")  # the default workspace's admin
    with pytest.raises(SlackApiError, match="channel_not_found"):
        beta.chat_postMessage(channel="C0DESIGN1", text="hi")
    posted = beta.chat_postMessage(channel="C0BETA001", text="hi")
    assert posted["message"]["team"] == "T0BETA002"

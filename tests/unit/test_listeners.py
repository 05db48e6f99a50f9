"""The listeners as plain functions: called with a mock ack, a mock store and Slack, and a context
holding the services — what each one writes, says and acks, without Bolt or HTTP."""

from __future__ import annotations

import time
from typing import Any
from unittest.mock import MagicMock

import pytest

from bot.core import texts
from bot.listeners import actions, commands, events, home, only_our_workspace
from bot.services import SERVICES_KEY, Services
from bot.settings import Settings
from bot.slack_ops import PermissionUnknown
from storage.admission import Admission
from storage.models import EditJob, ThreadMessage, VideoJob

TEAM, CHANNEL, THREAD = "T0KN0W001", "C0DESIGN1", "1700000000.000100"
ADA, BOB, BOT = "U0ADA0001", "U0BOB0002", "U0KN0WBOT"


def make_services(**settings: Any) -> Services:
    store, slack = MagicMock(name="store"), MagicMock(name="slack")
    store.record_delivery.return_value = True
    store.take_video.return_value = Admission(job_id=1)
    store.edit_times.return_value = []
    store.thread_message.return_value = None
    return Services(
        Settings(_env_file=None, **settings),  # type: ignore[call-arg]
        store,
        slack,
        key_id="k",
        team_id=TEAM,
        bot_user_id=BOT,
        kick=MagicMock(name="kick"),
    )


def context_of(services: Services) -> dict[str, Any]:
    return {SERVICES_KEY: services}


def video(**kw: Any) -> VideoJob:
    values: dict[str, Any] = dict(
        id=7, request_key="cmd:x", team_id=TEAM, channel_id=CHANNEL, user_id=ADA, key_id="k",
        prompt="Explain tides", state="complete", card_ts=THREAD,
    )
    values.update(kw)
    return VideoJob(**values)


def reply_event(text: str, user: str = ADA, ts: str = "1700000000.000200") -> dict[str, Any]:
    return {"type": "message", "user": user, "text": text, "ts": ts, "thread_ts": THREAD, "channel": CHANNEL}


BODY = {"team_id": TEAM, "event_id": "Ev1"}


# --- thread replies -------------------------------------------------------------------------


def test_chatter_from_someone_else_writes_nothing_and_hints_once():
    services = make_services()
    services.store.video_for_thread.return_value = video()
    events.on_message(reply_event("looks great!", user=BOB), BODY, context_of(services))
    services.store.add_edit.assert_not_called()
    (call,) = services.slack.ephemeral.call_args_list
    assert call.args[:2] == (CHANNEL, BOB) and f"<@{BOT}>" in call.args[2]
    services.store.record_delivery.return_value = False  # the hint was given in this thread already
    events.on_message(reply_event("agreed", user=BOB, ts="1700000000.000300"), BODY, context_of(services))
    assert services.slack.ephemeral.call_count == 1


def test_a_mention_makes_an_edit_of_the_words_around_it():
    services = make_services()
    services.store.video_for_thread.return_value = video()
    services.store.add_edit.return_value = EditJob(id=1, video_id=7, key_id="k", team_id=TEAM,
                                                   channel_id=CHANNEL, reply_ts="1", user_id=BOB, text="x")
    events.on_message(reply_event(f"<@{BOT}> make scene 2 slower", user=BOB), BODY, context_of(services))
    edit = services.store.add_edit.call_args.args[0]
    assert edit.text == "make scene 2 slower" and edit.user_id == BOB and edit.state == "pending"
    services.kick.assert_called_once()


def test_an_edit_over_the_daily_limit_is_refused_in_the_thread_without_a_row():
    services = make_services(knowlify_user_edits_per_day=2)
    services.store.video_for_thread.return_value = video()
    services.store.edit_times.return_value = [time.time()] * 2  # two just now
    events.on_message(reply_event("make it blue"), BODY, context_of(services))
    services.store.add_edit.assert_not_called()
    channel, text, _blocks, thread = services.slack.post.call_args.args
    assert (channel, thread) == (CHANNEL, THREAD) and "2 edits in the last 24 hours" in text


def test_a_retried_reply_is_not_counted_or_refused_again():
    services = make_services(knowlify_user_edits_per_day=1)
    services.store.video_for_thread.return_value = video()
    services.store.thread_message.return_value = ThreadMessage(
        team_id=TEAM, channel_id=CHANNEL, ts="1700000000.000200", video_id=7, edit_id=1, kind="edit_request"
    )
    services.store.edit_times.return_value = [time.time()]
    events.on_message(reply_event("make it blue"), BODY, context_of(services))
    services.store.add_edit.assert_not_called()
    services.slack.post.assert_not_called()


def test_deleting_a_kept_reply_cancels_it_and_says_so():
    services = make_services()
    services.store.cancel_kept_edit.return_value = EditJob(id=3, video_id=7, key_id="k", team_id=TEAM,
                                                           channel_id=CHANNEL, reply_ts="5.5", user_id=ADA, text="x")
    services.store.get_video.return_value = video(state="rendering")
    event = {"type": "message", "subtype": "message_deleted", "channel": CHANNEL, "deleted_ts": "5.5",
             "previous_message": {"ts": "5.5", "thread_ts": THREAD}}
    events.on_message(event, BODY, context_of(services))
    services.store.cancel_kept_edit.assert_called_once_with(TEAM, CHANNEL, "5.5")
    assert texts.EDIT_CANCELLED in services.slack.post.call_args.args


# --- reactions ------------------------------------------------------------------------------


def reaction_setup(services: Services) -> None:
    services.store.thread_message.return_value = ThreadMessage(
        team_id=TEAM, channel_id=CHANNEL, ts="9.9", video_id=7, edit_id=3, kind="edit_request"
    )
    services.store.get_video.return_value = video()
    services.store.get_edit.return_value = EditJob(id=3, video_id=7, key_id="k", team_id=TEAM,
                                                   channel_id=CHANNEL, reply_ts="9.9", user_id=BOB, text="x",
                                                   state="complete")


REACTION = {"type": "reaction_added", "user": "U0ADM0003", "reaction": "rewind",
            "item": {"type": "message", "channel": CHANNEL, "ts": "9.9"}}


def test_a_permission_lookup_that_fails_asks_to_try_again_and_reverts_nothing():
    services = make_services()
    reaction_setup(services)
    services.slack.is_admin.side_effect = PermissionUnknown("ratelimited")
    events.on_reaction(REACTION, BODY, context_of(services))
    services.slack.is_admin.assert_called_once_with("U0ADM0003", TEAM)
    assert texts.PERMISSION_UNKNOWN in services.slack.ephemeral.call_args.args
    services.store.request_revert.assert_not_called()


@pytest.mark.parametrize(("admin", "reverted"), [(True, True), (False, False)])
def test_an_admin_reverts_and_anyone_else_is_told_who_may(admin, reverted):
    services = make_services()
    reaction_setup(services)
    services.slack.is_admin.return_value = admin
    services.store.request_revert.return_value = True
    events.on_reaction(REACTION, BODY, context_of(services))
    assert services.store.request_revert.called is reverted
    assert services.slack.ephemeral.called is not reverted


# --- commands, the form, the button, the Home tab -------------------------------------------


def command(text: str, user: str = ADA) -> dict[str, Any]:
    return {"team_id": TEAM, "channel_id": CHANNEL, "user_id": user, "text": text,
            "trigger_id": "1.2.3", "response_url": "https://hooks.example/x"}


def test_help_is_acked_with_who_may_edit():
    services = make_services()
    ack = MagicMock()
    commands.on_command(ack, command("help"), MagicMock(), context_of(services))
    assert "mentions me" in ack.call_args.kwargs["text"]


def test_a_create_writes_the_row_and_wakes_the_worker():
    services = make_services()
    ack = MagicMock()
    commands.on_command(ack, command("Explain tides"), MagicMock(), context_of(services))
    job = services.store.take_video.call_args.args[0]
    assert job["prompt"] == "Explain tides" and job["request_key"] == f"cmd:{TEAM}:1.2.3"
    services.kick.assert_called_once()
    assert "Got it" in ack.call_args.kwargs["text"]


def test_a_create_over_the_limit_is_refused_with_the_next_time_and_no_row():
    services = make_services(knowlify_user_videos_per_day=1)
    services.store.take_video.return_value = Admission(refused_until=time.time() + 3600)
    ack = MagicMock()
    commands.on_command(ack, command("Explain tides"), MagicMock(), context_of(services))
    limit = services.store.take_video.call_args.args[1]
    assert limit.refuse_until([time.time()], time.time()) is not None  # the setting's 1 a day
    services.kick.assert_not_called()
    assert "1 video in the last 24 hours" in ack.call_args.kwargs["text"] and "<!date^" in ack.call_args.kwargs["text"]


def test_retry_by_someone_else_whose_permissions_cannot_be_checked_is_asked_to_try_again():
    services = make_services()
    services.store.get_video.return_value = video(state="unknown")
    services.slack.is_admin.side_effect = PermissionUnknown("timeout")
    ack = MagicMock()
    body = {"user": {"id": BOB}, "channel": {"id": CHANNEL}}
    actions.on_retry(ack, body, {"value": "7"}, context_of(services))
    ack.assert_called_once()
    services.store.transition.assert_not_called()
    assert texts.PERMISSION_UNKNOWN in services.slack.ephemeral.call_args.args


def test_the_home_tab_is_published_for_the_viewer():
    services = make_services()
    services.store.videos_of_user.return_value = [video()]
    client = MagicMock()
    home.on_home({"type": "app_home_opened", "user": ADA, "tab": "home"}, client, context_of(services))
    kwargs = client.views_publish.call_args.kwargs
    assert kwargs["user_id"] == ADA and kwargs["view"]["type"] == "home"


def test_a_request_from_another_workspace_is_answered_without_reaching_a_listener():
    services = make_services()
    nxt = MagicMock()
    response = only_our_workspace({"team_id": "T0OTHER01", "command": "/knowlify"}, context_of(services), nxt)
    nxt.assert_not_called()
    assert response is not None and "another Slack workspace" in response.body

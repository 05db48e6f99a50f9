"""The video machine, transition by transition: (job, what was observed) → decision."""

from __future__ import annotations

import pytest

from bot.core import texts
from bot.core import videos as rules
from bot.core.decision import NEVER, CardChange, Decision, KeptReplies, Post, Schedule
from bot.core.retry import MAX_CREATE_ATTEMPTS, Failure, Fault
from bot.core.states import VideoState
from bot.knowlify.models import CreatedItem, VideoStatus
from storage.models import VideoJob

NOW, POLL = 1000.0, 5.0


def job(**values) -> VideoJob:
    base = {
        "request_key": "k",
        "team_id": "T1",
        "channel_id": "C1",
        "user_id": "U1",
        "key_id": "key",
        "prompt": "how tides work",
        "card_ts": "1.1",
        "state": VideoState.RENDERING,
        "chat_url": "https://knowlify.com/chat/1",
    }
    return VideoJob(**{**base, **values})


def status(**values) -> VideoStatus:
    return VideoStatus.model_validate({"uuid": "u1", **values})


# --- the card -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("join_error", "note"),
    [
        (None, None),
        ("already_in_channel", None),
        ("method_not_supported_for_channel_type", None),
        ("missing_scope", texts.could_not_join("missing_scope")),
    ],
)
def test_join_note(join_error, note):
    assert rules.join_note(join_error) == note


def test_card_posted_stores_ready_with_the_card_ts_and_goes_on():
    d = rules.card_posted("text", [{"type": "section"}], "fp", None, NOW)
    assert d.post == Post("text", kind="card", ts_field="card_ts", blocks=[{"type": "section"}], card=True)
    assert d.store == {"state": VideoState.READY, "card_shown": "fp", "card_updated_at": NOW, "joined_note": None}
    assert d.next_run is None  # the step goes on to the create


@pytest.mark.parametrize(
    ("error", "retry_after", "expected"),
    [
        (
            "not_in_channel",
            None,
            Decision(store={"state": VideoState.NEEDS_INVITE}, tell_requester=texts.NEEDS_INVITE, next_run=NEVER),
        ),
        (
            "channel_not_found",
            None,
            Decision(store={"state": VideoState.NEEDS_INVITE}, tell_requester=texts.NEEDS_INVITE, next_run=NEVER),
        ),
        ("ratelimited", 7.0, Decision(next_run=NOW + 7.0)),
        ("internal_error", None, Decision(store={"attempts": 3}, next_run=NOW + rules.SLACK_RETRY_SECONDS)),
    ],
)
def test_card_not_posted(error, retry_after, expected):
    assert rules.card_not_posted(job(attempts=2, state=VideoState.NEW), error, retry_after, NOW) == expected


# --- the create -----------------------------------------------------------------------------------


def test_create_queues_behind_an_older_waiting_request():
    assert rules.create_queued_behind(NOW + 4, NOW) == Decision(next_run=NOW + 4)
    assert rules.create_queued_behind(NOW - 4, NOW) == Decision(next_run=NOW)


def test_submitting_is_stored_before_the_call_and_keeps_the_lease():
    assert Decision(store={"state": VideoState.SUBMITTING}) == rules.SUBMITTING


@pytest.mark.parametrize(
    ("item", "status"),
    [
        ({"index": 0, "uuid": "u1", "status": "queued"}, "queued"),
        ({"index": 0, "uuid": "u1", "status": "parked", "queue_position": 2}, "parked"),
        ({"index": 0, "uuid": "u1", "status": "pending"}, "pending"),
    ],
)
def test_create_answered_starts_rendering(item, status):
    d = rules.created(job(state=VideoState.SUBMITTING), CreatedItem.model_validate(item))
    assert d.store["state"] == VideoState.RENDERING and d.store["status"] == status
    assert d.store["knowlify_uuid"] == "u1" and d.store["attempts"] == 0
    assert d.store["queue_position"] == item.get("queue_position")
    assert (d.card, d.next_run, d.post) == (CardChange.FINAL, Schedule.VIDEO_POLL, None)


@pytest.mark.parametrize(
    "item",
    [
        {"index": 0, "status": "error", "code": "unsafe", "message": "prompt rejected"},
        {"index": 0, "status": "queued"},  # no uuid: nothing to follow
    ],
)
def test_create_answered_with_an_item_error_fails_in_the_thread(item):
    d = rules.created(job(state=VideoState.SUBMITTING), CreatedItem.model_validate(item))
    message = texts.item_failed(item.get("message"))
    assert d.store == {"state": VideoState.FAILED, "error_message": message}
    assert d.post == Post(
        f":x: {message}", kind="final", ts_field="final_ts", requester_text=message, deferrable=False
    )
    assert (d.next_run, d.card, d.kept_replies) == (NEVER, CardChange.FINAL, KeptReplies.SETTLE)
    assert d.frees_render_slot


@pytest.mark.parametrize(
    ("failure", "attempts", "outcome"),
    [
        (Failure(Fault.BUDGET, None, "budget", 3.0), 0, ("retry", NOW + 3.0, 0)),
        (Failure(Fault.RATE_LIMITED, 429, "slow", 20.0), 1, ("retry", NOW + 20.0, 1)),
        (Failure(Fault.SERVER, 500, "oops"), 0, ("retry", NOW + 2.0, 1)),
        (Failure(Fault.UNREACHABLE, None, "not sent"), 2, ("retry", NOW + 8.0, 3)),
        (Failure(Fault.SERVER, 503, "down"), MAX_CREATE_ATTEMPTS - 1, ("failed", 503, "down")),
        (Failure(Fault.REFUSED, 400, "bad org"), 0, ("failed", 400, "bad org")),
        (Failure(Fault.UNAUTHORIZED, 401, "Invalid API key"), 0, ("failed", 401, "Invalid API key")),
        (Failure(Fault.GONE, 403, "forbidden"), 0, ("failed", 403, "forbidden")),
        (Failure(Fault.NO_ANSWER, None, "read timeout"), 0, ("unknown",)),
        (Failure(Fault.GATEWAY, 504, "upstream"), 0, ("unknown",)),
    ],
)
def test_create_failed(failure, attempts, outcome):
    j = job(state=VideoState.SUBMITTING, attempts=attempts)
    d = rules.create_failed(j, failure, NOW)
    if outcome[0] == "retry":
        assert d == Decision(store={"state": VideoState.READY, "attempts": outcome[2]}, next_run=outcome[1])
    elif outcome[0] == "failed":
        # The refusal answered a create: a Slack 429 must not make the step ask again.
        assert d == rules.failed(j, texts.create_refused(outcome[1], outcome[2]), deferrable=False)
    else:
        assert d == rules.outcome_unknown(j)


def test_outcome_unknown_offers_a_retry_in_the_thread_and_ends_kept_replies():
    d = rules.outcome_unknown(job(state=VideoState.SUBMITTING))
    assert d.post == Post(
        texts.UNKNOWN_OUTCOME,
        ts_field="unknown_notice_ts",
        retry_button=True,
        requester_text=texts.UNKNOWN_OUTCOME,
    )
    assert d.store == {"state": VideoState.UNKNOWN}
    assert (d.next_run, d.card, d.kept_replies) == (NEVER, CardChange.FINAL, KeptReplies.SETTLE)
    # Without a card there is no thread: the state is stored all the same.
    assert rules.outcome_unknown(job(card_ts=None)).post is None


@pytest.mark.parametrize(
    ("card_ts", "final_ts", "posts", "tells"),
    [
        ("1.1", None, True, False),  # the usual case: the reason goes in the thread
        (None, None, False, True),  # no card: the requester hears it directly
        ("1.1", "2.2", False, False),  # posted before a crash: not again
    ],
)
def test_failed_is_told_once(card_ts, final_ts, posts, tells):
    d = rules.failed(job(card_ts=card_ts, final_ts=final_ts), "boom")
    assert (d.post is not None, d.tell_requester == "boom") == (posts, tells)
    assert d.store == {"state": VideoState.FAILED, "error_message": "boom"}


@pytest.mark.parametrize(
    ("card_ts", "final_ts", "posts", "tells"),
    [("1.1", None, True, False), (None, None, False, True), ("1.1", "2.2", False, False)],
)
def test_completed_is_told_once_and_releases_kept_replies(card_ts, final_ts, posts, tells):
    d = rules.completed(job(card_ts=card_ts, final_ts=final_ts), "https://v/1")
    done = texts.video_done("https://v/1", "how tides work")
    assert (d.post is not None, d.tell_requester == done) == (posts, tells)
    assert (d.store, d.kept_replies, d.next_run) == ({"state": VideoState.COMPLETE}, KeptReplies.RELEASE, NEVER)


# --- polls ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("iso", "expected"),
    [
        (None, None),
        ("not a time", None),
        ("1970-01-01T00:10:00Z", 600.0),
        ("1970-01-01T00:10:00", 600.0),  # no zone: UTC
        ("1970-01-01T01:00:00+00:00", NOW),  # a server clock ahead of ours: never later than now
    ],
)
def test_knowlify_times(iso, expected):
    assert rules.knowlify_time(iso, NOW) == expected


def test_the_poll_policy_sees_the_job_as_a_render():
    render = rules.render_of(job(status="voiceover", knowlify_updated_at="1970-01-01T00:10:00Z"), 2, NOW)
    assert (render.status, render.stage_started, render.parked_ahead) == ("voiceover", 600.0, 2)


@pytest.mark.parametrize(
    ("answer", "was", "status", "position_kept"),
    [
        ({"status": "voiceover", "progress": {"percent": 10}}, "queued", "voiceover", False),
        ({"status": "pending"}, "parked", "parked", True),  # still parked: keep the position
        ({"status": "pending"}, "queued", "pending", True),
        ({"status": "something_new"}, "queued", "something_new", False),
    ],
)
def test_a_progress_poll_updates_the_card_when_due(answer, was, status, position_kept):
    d = rules.polled(job(status=was, queue_position=2), status_of(answer), NOW)
    assert d.store["status"] == status and d.store["attempts"] == 0
    assert ("queue_position" not in d.store) is position_kept
    assert (d.card, d.next_run, d.post) == (CardChange.IF_DUE, Schedule.VIDEO_POLL, None)


def status_of(answer: dict) -> VideoStatus:
    return status(**answer)


def test_poll_complete_posts_the_create_link_unless_the_poll_has_one():
    j = job()
    d = rules.polled(j, status(status="complete"), NOW)
    assert d.store["state"] == VideoState.COMPLETE and d.store["link"] is None
    assert d.post is not None and "https://knowlify.com/chat/1" in d.post.text
    assert d.post.link_seen_at == NOW  # the link lag is measured from the poll that saw it
    d = rules.polled(j, status(status="complete", link="https://cdn/v.mp4"), NOW)
    assert d.store["link"] == "https://cdn/v.mp4" and d.post is not None and "https://cdn/v.mp4" in d.post.text


def test_poll_failed_status_fails_with_knowlifys_reason():
    j = job()
    d = rules.polled(j, status(status="failed", error_message="render crashed"), NOW)
    assert d == rules.failed(j, texts.render_failed("render crashed")).storing(d.store)
    assert d.store["state"] == VideoState.FAILED and d.store["status"] == "failed"


@pytest.mark.parametrize(
    ("failure", "attempts", "expected"),
    [
        (Failure(Fault.RATE_LIMITED, 429, "slow", 12.0), 0, Decision(store={"attempts": 0}, next_run=NOW + 12.0)),
        (Failure(Fault.SERVER, 500, "oops"), 1, Decision(store={"attempts": 2}, next_run=NOW + 4.0)),
        (Failure(Fault.UNREACHABLE, None, "timeout"), 0, Decision(store={"attempts": 1}, next_run=NOW + 2.0)),
        (Failure(Fault.UNAUTHORIZED, 401, "Invalid API key"), 3, Decision(store={"attempts": 3}, next_run=NOW + 60)),
        (Failure(Fault.REFUSED, 422, "bad uuid"), 0, Decision(store={"attempts": 1}, next_run=NOW + 2.0)),
        (Failure(Fault.BUDGET, None, "budget", 0.0), 0, Decision(store={"attempts": 0}, next_run=NOW + 0.01)),
    ],
)
def test_poll_failed_waits(failure, attempts, expected):
    assert rules.poll_failed(job(attempts=attempts), failure, NOW) == expected


def test_poll_gone_ends_the_job_once():
    j = job()
    d = rules.poll_failed(j, Failure(Fault.GONE, 404, "video not found"), NOW)
    assert d == rules.failed(j, texts.video_gone("video not found"))
    # Made under an earlier key, which the current one does not know: ended once, saying why.
    d = rules.poll_failed(j, Failure(Fault.GONE, 404, "video not found"), NOW, key_changed=True)
    assert d == rules.failed(j, texts.KEY_CHANGED_VIDEO)


@pytest.mark.parametrize(
    ("key", "state", "adopted"),
    [
        ("old", VideoState.NEW, True),
        ("old", VideoState.READY, True),
        ("old", VideoState.RENDERING, False),  # already at Knowlify under the old key: it stays there
        ("key", VideoState.NEW, False),
    ],
)
def test_an_unsent_job_of_an_earlier_key_goes_under_the_current_one(key, state, adopted):
    d = rules.adopt_key(job(key_id=key, state=state), "key")
    assert d == (Decision(store={"key_id": "key"}) if adopted else None)

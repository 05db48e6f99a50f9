"""The edit and revert machines, transition by transition: (edit, what was observed) → decision."""

from __future__ import annotations

import pytest

from bot.core import edits as rules
from bot.core import reverts, texts
from bot.core.decision import NEVER, CardChange, Decision, Post, Schedule
from bot.core.retry import Failure, Fault
from bot.core.states import EditState, RevertState, VideoState
from bot.core.versions import EditView
from bot.knowlify.models import EditAccepted, EditStatus
from storage.models import EditJob

NOW, POLL = 1000.0, 5.0


def edit(**values) -> EditJob:
    base = {
        "video_id": 1,
        "key_id": "key",
        "team_id": "T1",
        "channel_id": "C1",
        "reply_ts": "5.5",
        "user_id": "U1",
        "text": "make it blue",
        "state": EditState.SUBMITTED,
        "knowlify_edit_id": "e1",
    }
    return EditJob(**{**base, **values})


def answer(**values) -> EditStatus:
    return EditStatus.model_validate({"edit_id": "e1", **values})


def test_idempotency_key_is_stable_per_reply():
    a = rules.idempotency_key("T1", "C1", "5.5")
    assert a == rules.idempotency_key("T1", "C1", "5.5") and a.startswith("slack-edit-")
    assert a != rules.idempotency_key("T1", "C1", "5.6")


# --- kept replies ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("state", "video", "expected"),
    [
        (EditState.WAITING, VideoState.COMPLETE, Decision(store={"state": EditState.PENDING}, next_run=NOW)),
        (
            EditState.HELD,
            VideoState.FAILED,
            Decision(
                store={"state": EditState.REFUSED, "error_message": texts.EDIT_VIDEO_FAILED},
                post=Post(texts.EDIT_VIDEO_FAILED, kind="edit_refused"),
                next_run=NEVER,
            ),
        ),
        (
            EditState.WAITING,
            VideoState.NEEDS_INVITE,
            Decision(
                store={"state": EditState.REFUSED, "error_message": texts.EDIT_VIDEO_FAILED},
                post=Post(texts.EDIT_VIDEO_FAILED, kind="edit_refused"),
                next_run=NEVER,
            ),
        ),
        (
            EditState.WAITING,
            VideoState.UNKNOWN,
            Decision(
                store={"state": EditState.REFUSED, "error_message": texts.EDIT_UNKNOWN_VIDEO},
                post=Post(texts.EDIT_UNKNOWN_VIDEO, kind="edit_refused"),
                next_run=NEVER,
            ),
        ),
        (
            EditState.HELD,
            VideoState.RENDERING,
            Decision(
                store={"state": EditState.WAITING},
                post=Post(texts.EDIT_KEPT, kind="edit_notice", ts_field="notice_ts"),
                next_run=NOW + 20.0,
            ),
        ),
        (EditState.WAITING, VideoState.RENDERING, Decision(store={"state": EditState.WAITING}, next_run=NOW + 20.0)),
    ],
)
def test_kept_reply(state, video, expected):
    assert rules.kept(edit(state=state), video, NOW, POLL) == expected


def test_kept_reply_rechecks_at_least_every_second():
    assert rules.kept(edit(state=EditState.WAITING), VideoState.RENDERING, NOW, 0.05).next_run == NOW + 1.0


def test_replies_go_in_the_order_written():
    assert rules.waits_for_earlier(NOW, POLL) == Decision(next_run=NOW + 1.0)
    assert rules.waits_for_earlier(NOW, 0.2) == Decision(next_run=NOW + 0.2)
    assert Decision(store={"state": EditState.SUBMITTING}) == rules.SUBMITTING


# --- submit ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("accepted", "ignored", "says"),
    [
        ({"edit_id": "e9", "status": "processing"}, "[]", texts.edit_accepted("processing", None)),
        ({"edit_id": "e9", "status": "queued", "queue_position": 2}, "[]", texts.edit_accepted("queued", 2)),
        ({"edit_id": "e9", "status": "processing"}, '["https://a/6.png"]', texts.ignored_links(["https://a/6.png"])),
    ],
)
def test_edit_accepted(accepted, ignored, says):
    d = rules.accepted(edit(state=EditState.SUBMITTING, ignored_urls_json=ignored), EditAccepted(**accepted))
    assert d.store == {
        "state": EditState.SUBMITTED,
        "knowlify_edit_id": "e9",
        "status": accepted["status"],
        "queue_position": accepted.get("queue_position"),
        "attempts": 0,
    }
    assert d.post is not None and says in d.post.text
    assert (d.post.kind, d.post.ts_field, d.next_run) == ("edit_ack", "notice_ts", Schedule.EDIT_POLL)


@pytest.mark.parametrize(
    ("failure", "attempts", "retry_at", "new_attempts"),
    [
        (Failure(Fault.RATE_LIMITED, 429, "slow", 30.0), 2, NOW + 30.0, 2),
        (Failure(Fault.SERVER, 500, "oops"), 0, NOW + 2.0, 1),
        (Failure(Fault.GATEWAY, 502, "bad gateway"), 1, NOW + 4.0, 2),
        (Failure(Fault.NO_ANSWER, None, "read timeout"), 0, NOW + 2.0, 1),  # the key makes a resend a replay
        (Failure(Fault.UNREACHABLE, None, "refused"), 20, NOW + 300.0, 21),
    ],
)
def test_edit_create_failed_is_retried(failure, attempts, retry_at, new_attempts):
    d = rules.create_failed(edit(state=EditState.SUBMITTING, attempts=attempts), failure, NOW)
    assert d == Decision(store={"attempts": new_attempts}, next_run=retry_at)


@pytest.mark.parametrize(
    "failure",
    [
        Failure(Fault.REFUSED, 402, "INSUFFICIENT_CREDITS: edit could cost up to 145, have 20"),
        Failure(Fault.REFUSED, 409, "video is still being built"),
        Failure(Fault.UNAUTHORIZED, 401, "Invalid API key"),
        Failure(Fault.GONE, 404, "video not found"),
    ],
)
def test_edit_create_refused_says_why(failure):
    d = rules.create_failed(edit(state=EditState.SUBMITTING), failure, NOW)
    message = texts.edit_refused(failure.status, failure.detail)
    assert d == Decision(
        store={"state": EditState.REFUSED, "error_message": message},
        post=Post(f":no_entry_sign: {message}", kind="edit_refused", deferrable=False),
        next_run=NEVER,
    )


# --- poll -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("status", ["queued", "processing", "brand_new_status"])
def test_edit_still_running_is_polled_again(status):
    d = rules.polled(edit(attempts=3), answer(status=status))
    assert d == Decision(store={"status": status, "attempts": 0}, next_run=Schedule.EDIT_POLL)


def test_edit_complete_posts_the_new_link_and_scenes_and_updates_the_card():
    result = {"link": "https://v/2", "changed_scene_numbers": [2], "added_scene_numbers": [4]}
    d = rules.polled(edit(), answer(status="complete", result=result))
    assert d.store["state"] == EditState.COMPLETE and '"https://v/2"' in d.store["result_json"]
    assert d.post is not None and d.post.text == texts.edit_done("https://v/2", [2], [4], [], None)
    assert (d.post.kind, d.post.ts_field, d.card, d.next_run) == ("edit_result", "result_ts", CardChange.FINAL, NEVER)
    bare = rules.polled(edit(), answer(status="complete"))
    assert bare.store["result_json"] == "{}" and bare.post == Post(
        texts.edit_done(None, [], [], [], None), kind="edit_result", ts_field="result_ts"
    )


@pytest.mark.parametrize("body", [{"status": "error", "error_message": "no scenes"}, {"status": "x", "is_failed": True}])
def test_edit_error_posts_knowlifys_reason(body):
    d = rules.polled(edit(), answer(**body))
    message = texts.edit_failed(body.get("error_message"))
    assert d == Decision(
        store={"state": EditState.ERROR, "error_message": message, "status": body["status"]},
        post=Post(f":x: {message}", kind="edit_result", ts_field="result_ts"),
        next_run=NEVER,
    )


def test_a_key_change_ends_an_edit_once_saying_why():
    gone = Failure(Fault.GONE, 404, "video not found")
    refused = rules.create_failed(edit(state=EditState.SUBMITTING), gone, NOW, key_changed=True)
    assert refused.store == {"state": EditState.REFUSED, "error_message": texts.KEY_CHANGED_EDIT}
    polled = rules.poll_failed(edit(), gone, NOW, key_changed=True)
    assert polled.store == {"state": EditState.ERROR, "error_message": texts.KEY_CHANGED_EDIT}
    revert = reverts.revert_failed(edit(state=EditState.COMPLETE), gone, NOW, key_changed=True)
    assert revert.post == Post(f":warning: {texts.KEY_CHANGED_EDIT}", kind="revert_result", deferrable=False)


def test_edit_poll_failures():
    gone = rules.poll_failed(edit(), Failure(Fault.GONE, 404, "edit not found"), NOW)
    assert gone.store == {"state": EditState.ERROR, "error_message": texts.edit_gone("edit not found")}
    assert gone.next_run == NEVER and gone.post is not None and gone.post.kind == "edit_result"
    assert rules.poll_failed(edit(attempts=1), Failure(Fault.SERVER, 500, "x"), NOW) == Decision(
        store={"attempts": 2}, next_run=NOW + 4.0
    )


# --- reverts --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("values", "reason"),
    [
        ({"state": EditState.ERROR}, texts.REVERT_NOTHING),
        ({"state": EditState.REFUSED, "knowlify_edit_id": None}, texts.REVERT_NOTHING),
        ({"state": EditState.WAITING, "knowlify_edit_id": None}, texts.REVERT_NOT_SUBMITTED),
        ({"state": EditState.SUBMITTING}, texts.REVERT_NOT_SUBMITTED),
        ({"state": EditState.COMPLETE, "knowlify_edit_id": None}, texts.REVERT_NOT_SUBMITTED),
        ({"state": EditState.SUBMITTED, "status": "queued"}, texts.revert_refused(409, "status=queued not in a revertable state")),
        ({"state": EditState.SUBMITTED}, texts.revert_refused(409, "status=processing not in a revertable state")),
        ({"state": EditState.COMPLETE}, None),
    ],
)
def test_revert_refused_without_a_call(values, reason):
    assert reverts.refused_here(edit(revert_state=RevertState.REQUESTED, **values)) == reason


@pytest.mark.parametrize(("state", "next_run"), [(EditState.COMPLETE, NEVER), (EditState.SUBMITTED, NOW)])
def test_a_refused_revert_leaves_a_running_edit_to_its_machine(state, next_run):
    d = reverts.refused(edit(state=state), "no", NOW)
    assert d == Decision(
        store={"revert_state": RevertState.REFUSED, "revert_detail": "no"},
        post=Post(":warning: no", kind="revert_result"),
        next_run=next_run,
    )


def test_a_revert_found_running_is_looked_up_first():
    assert reverts.needs_lookup(edit(revert_state=RevertState.RUNNING))
    assert not reverts.needs_lookup(edit(revert_state=RevertState.REQUESTED))
    assert Decision(store={"revert_state": RevertState.RUNNING}) == reverts.RUNNING


def test_revert_lookup_failures():
    e = edit(state=EditState.COMPLETE, revert_state=RevertState.RUNNING)
    assert reverts.lookup_failed(e, Failure(Fault.UNREACHABLE, None, "t"), NOW) == Decision(
        store={"attempts": 1}, next_run=NOW + 2.0
    )
    gone = reverts.lookup_failed(e, Failure(Fault.GONE, 404, "edit not found"), NOW)
    assert gone.store["revert_state"] == RevertState.REFUSED and gone.next_run == NEVER


@pytest.mark.parametrize(
    ("failure", "newer"),
    [
        (Failure(Fault.REFUSED, 409, "a newer edit exists"), True),
        (Failure(Fault.REFUSED, 409, "another edit is running"), False),
        (Failure(Fault.SERVER, 500, "newer"), False),
    ],
)
def test_only_a_newer_edit_refusal_asks_for_its_link(failure, newer):
    assert reverts.wants_newer_link(failure) is newer


@pytest.mark.parametrize(
    ("failure", "state", "retry_at"),
    [
        (Failure(Fault.NO_ANSWER, None, "read timeout"), RevertState.RUNNING, NOW + 2.0),
        (Failure(Fault.GATEWAY, 504, "upstream"), RevertState.RUNNING, NOW + 2.0),
        (Failure(Fault.SERVER, 500, "oops"), RevertState.REQUESTED, NOW + 2.0),
        (Failure(Fault.UNREACHABLE, None, "refused"), RevertState.REQUESTED, NOW + 2.0),
        (Failure(Fault.RATE_LIMITED, 429, "slow", 9.0), RevertState.REQUESTED, NOW + 9.0),
    ],
)
def test_revert_failures_that_are_tried_again(failure, state, retry_at):
    d = reverts.revert_failed(edit(state=EditState.COMPLETE), failure, NOW)
    assert d.store["revert_state"] == state and d.next_run == retry_at


@pytest.mark.parametrize(
    ("failure", "newer"),
    [
        (Failure(Fault.REFUSED, 409, "a newer edit exists"), "https://slack/p1"),
        (Failure(Fault.REFUSED, 409, "edited in the Knowlify editor"), None),
        (Failure(Fault.GONE, 403, "API key does not own this edit"), None),
    ],
)
def test_revert_refused_by_knowlify_says_which_guard(failure, newer):
    d = reverts.revert_failed(edit(state=EditState.COMPLETE), failure, NOW, newer)
    message = texts.revert_refused(failure.status, failure.detail, newer)
    assert d == Decision(
        store={"revert_state": RevertState.REFUSED, "revert_detail": failure.detail},
        post=Post(f":warning: {message}", kind="revert_result", deferrable=False),
        next_run=NEVER,
    )


def test_revert_done_posts_the_diff_and_the_version_that_is_current_again():
    views = [
        EditView("5.5", EditState.COMPLETE, '{"link": "https://v/2"}'),
        EditView("4.4", EditState.COMPLETE, '{"link": "https://v/1"}'),
    ]
    assert reverts.link_after("https://v/0", views, "5.5") == "https://v/1"
    assert reverts.link_after("https://v/0", views[:1], "5.5") == "https://v/0"
    st = answer(status="reverted", result={"revert_diff": {"changed_scene_numbers": [3]}})
    d = reverts.done(st, "https://v/1")
    assert d.store == {"state": EditState.REVERTED, "revert_state": RevertState.DONE, "status": "reverted", "attempts": 0}
    assert d.post == Post(texts.revert_done([3], [], [], "https://v/1"), kind="revert_result", ts_field="revert_result_ts")
    assert (d.card, d.next_run) == (CardChange.FINAL, NEVER)
    assert reverts.done(answer(status="reverted"), None).post == Post(
        texts.revert_done([], [], [], None), kind="revert_result", ts_field="revert_result_ts"
    )

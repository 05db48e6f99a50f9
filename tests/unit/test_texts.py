"""What the bot says about edits and reverts: each Knowlify answer gets its own, actionable words."""

from __future__ import annotations

import pytest

from bot.core import texts

# Every revert refusal Knowlify documents, verbatim (docs/knowlify-api-notes.md).
REVERT_DETAILS = {
    "not-found": (404, "edit not found"),
    "not-owner": (403, "API key does not own this edit"),
    "running": (409, "edit is not in a revertable state (status=processing)"),
    "already": (409, "edit is not in a revertable state (status=reverted)"),
    "errored": (409, "edit is not in a revertable state (status=error)"),
    "another": (409, "cannot revert while another edit is processing or queued"),
    "newer": (409, "a newer external edit exists on this video; revert the most recent edit first"),
    "frontend": (
        409,
        "snapshot at the top of planner_history was not saved by this edit; cannot safely revert",
    ),
    "no-snapshot": (409, "no snapshot available to revert"),
}


def test_each_revert_guard_gets_its_own_advice():
    answers = {
        name: texts.revert_refused(status, detail) for name, (status, detail) in REVERT_DETAILS.items()
    }
    assert len(set(answers.values())) == len(answers), answers
    assert "no longer knows this edit" in answers["not-found"]
    assert "does not own" in answers["not-owner"]
    assert "still running" in answers["running"] and "React again" in answers["running"]
    assert "already reverted" in answers["already"]
    assert "failed" in answers["errored"] and "nothing to revert" in answers["errored"]
    assert answers["another"].startswith("Another edit") and "finished" in answers["another"]
    assert "newer edit" in answers["newer"] and "revert that one first" in answers["newer"]
    assert "Knowlify editor" in answers["frontend"]
    assert "no saved snapshot" in answers["no-snapshot"]
    # None of them just echoes Knowlify's wording back.
    for name, (_, detail) in REVERT_DETAILS.items():
        assert detail not in answers[name]


@pytest.mark.parametrize("status", ["processing", "applying", "queued"])
def test_every_unfinished_status_means_still_running(status):
    answer = texts.revert_refused(409, f"edit is not in a revertable state (status={status})")
    assert "still running" in answer


def test_the_newer_edit_guard_links_the_newer_edit_when_known():
    detail = REVERT_DETAILS["newer"][1]
    link = "https://acme.slack.com/archives/C0DESIGN1/p1767225712000300"
    assert f"<{link}|this one>" in texts.revert_refused(409, detail, link)
    assert "<" not in texts.revert_refused(409, detail, None)


def test_an_unknown_revert_failure_keeps_status_and_detail():
    assert texts.revert_refused(500, "boom") == "Knowlify could not revert this edit (500: boom)."


def test_revert_permission_names_who_may():
    own = texts.revert_not_allowed("U0ADA0001", "U0ADA0001")
    assert own.startswith("Only <@U0ADA0001> or a workspace admin")
    other = texts.revert_not_allowed("U0BOB0002", "U0ADA0001")
    assert "<@U0BOB0002> (who asked for it)" in other and "<@U0ADA0001> (who created the video)" in other
    assert "Nothing was changed" in other


# --- edit refusals (Knowlify's documented create-edit refusals) --------------------------------------------------------

EDIT_ERRORS = {
    400: "edit_request was rejected by the content-safety scan",
    402: "INSUFFICIENT_CREDITS: edit could cost up to 105, have 10",
    409: "video is still being built (status=generating_frames); wait for the initial render to finish",
    415: "reference_image_urls[0]: Content-Type must be image/*",
    422: "reference_image_urls[0]: host resolves to a non-public address",
    401: "invalid API key",
    403: "API key does not own this video",
    404: "video not found",
}


def test_each_edit_refusal_is_distinct():
    answers = {status: texts.edit_refused(status, detail) for status, detail in EDIT_ERRORS.items()}
    assert len(set(answers.values())) == len(answers), answers
    assert "content-safety" in answers[400] and "Rephrase" in answers[400]
    assert "still building" in answers[409] and "once the video is done" in answers[409]
    assert "image/*" in answers[415] and "5 MB" in answers[415] and EDIT_ERRORS[415] in answers[415]
    assert "public https" in answers[422] and EDIT_ERRORS[422] in answers[422]
    assert "KNOWLIFY_API_KEY" in answers[401]


def test_402_names_the_credit_figures():
    answer = texts.edit_refused(402, EDIT_ERRORS[402])
    assert "up to 105 credits" in answer and "has 10" in answer and "Top up" in answer
    # Without the documented figures, Knowlify's detail is shown as is.
    assert "(INSUFFICIENT_CREDITS)" in texts.edit_refused(402, "INSUFFICIENT_CREDITS")


def test_409_tells_a_failed_video_from_one_still_building():
    building = texts.edit_refused(409, EDIT_ERRORS[409])
    failed = texts.edit_refused(409, "video has errored (status=failed); it cannot be edited")
    assert building != failed
    assert "render failed" in failed and "once the video is done" not in failed


def test_a_422_that_is_not_about_links_does_not_blame_the_links():
    answer = texts.edit_refused(422, "edit_request: field required (string of 1-5000 characters)")
    assert "field required" in answer and "public https" not in answer


def test_an_unexpected_edit_refusal_keeps_status_and_detail():
    assert "(418: teapot)" in texts.edit_refused(418, "teapot")
    assert "(None: no answer)" in texts.edit_refused(None, "no answer")


def test_edit_failures():
    assert "Rephrase" in texts.edit_failed("edit request was ambiguous; rephrase and retry.")
    assert texts.edit_failed("frame regeneration failed") == "The edit failed: frame regeneration failed."
    assert "no reason" in texts.edit_failed(None)


def test_edit_accepted_says_processing_or_queue_position():
    assert "working on it" in texts.edit_accepted("processing", 0)
    assert "queued behind 1 other edit " in texts.edit_accepted("queued", 1)
    assert "queued behind 3 other edits " in texts.edit_accepted("queued", 3)


def test_edit_done_lists_scenes_and_the_new_link():
    link = "https://animation-encoder-videos.s3.us-west-2.amazonaws.com/abc.mp4"
    answer = texts.edit_done(link, [2], [6], [3, 4], True)
    assert f"<{link}|watch the new version>" in answer
    assert "Scenes changed: 2 · added: 6 · deleted: 3, 4" in answer
    assert "not re-rendered" not in answer
    unsynced = texts.edit_done(None, [1], [], [], False)
    assert "added: none · deleted: none" in unsynced and "not re-rendered" in unsynced and "<" not in unsynced


def test_revert_done_carries_the_revert_diff_and_current_link():
    answer = texts.revert_done([2], [4], [], "https://create.knowlify.com/p/chat/x")
    assert "Edit reverted" in answer and "changed: 2 · added: 4 · deleted: none" in answer
    assert "<https://create.knowlify.com/p/chat/x|watch>" in answer
    assert "watch" not in texts.revert_done([], [], [], None)


def test_video_done_escapes_the_prompt_inside_the_link():
    answer = texts.video_done("https://x.test/v", "Compare A <b> & B > C")
    assert "<https://x.test/v|Compare A &lt;b&gt; &amp; B &gt; C>" in answer


def test_shorten():
    assert texts.shorten("a  b\nc", 10) == "a b c"
    assert texts.shorten("x" * 20, 10) == "x" * 9 + "…"
    assert len(texts.shorten("y" * 5000, 80)) == 80

"""The state machines as plain values: the card's status line, terminal answers, update pacing."""

from __future__ import annotations

import pytest

from bot.core import lifecycle as lc
from bot.core.lifecycle import Progress, card_update_due, is_terminal_status, status_line


@pytest.mark.parametrize("state", [lc.NEW, lc.READY, lc.SUBMITTING])
def test_before_knowlify_answers_the_card_says_sending(state):
    assert status_line(state, Progress(None)) == ":hourglass_flowing_sand: Sending to Knowlify…"


def test_queued_and_pending_without_position_say_queued():
    assert status_line(lc.RENDERING, Progress("queued")) == ":clock3: Queued at Knowlify"
    assert status_line(lc.RENDERING, Progress("pending")) == ":clock3: Queued at Knowlify"
    assert status_line(lc.RENDERING, Progress(None)) == ":clock3: Queued at Knowlify"


def test_parked_says_its_position():
    line = status_line(lc.RENDERING, Progress("parked", queue_position=2))
    assert line.startswith(":parking: Parked, position 2 in line")
    assert "3 videos at a time" in line
    # Knowlify shows a parked job as pending; a known position still says parked.
    assert "position 1 in line" in status_line(lc.RENDERING, Progress("pending", 0, queue_position=1))
    assert "waiting in line" in status_line(lc.RENDERING, Progress("parked"))


@pytest.mark.parametrize(
    ("status", "words", "n"),
    [
        ("voiceover", "recording the voiceover", 1),
        ("highlevel", "planning the scenes", 2),
        ("lowlevel", "detailing the scenes", 3),
        ("scan_assets", "gathering assets", 4),
        ("generating_frames", "generating frames", 5),
    ],
)
def test_each_render_stage_is_named_and_numbered(status, words, n):
    line = status_line(lc.RENDERING, Progress(status, percent=40))
    assert line == f":clapper: Rendering: {words} (stage {n} of 5), 40%"


def test_generating_frames_shows_the_scene_and_percent():
    line = status_line(lc.RENDERING, Progress("generating_frames", 88, current_scene=4, total_scenes=5))
    assert line == ":clapper: Rendering: generating frames (stage 5 of 5), scene 4 of 5, 88%"


def test_an_unknown_stage_is_shown_in_words_without_a_number():
    assert status_line(lc.RENDERING, Progress("color_grading")) == ":clapper: Rendering: color grading"


def test_final_and_side_states():
    assert status_line(lc.COMPLETE, Progress("complete", 100)) == ":white_check_mark: Done"
    assert status_line(lc.FAILED, Progress("failed"), "The render failed: scene 3.") == (
        ":x: Failed: The render failed: scene 3."
    )
    assert status_line(lc.FAILED, Progress("failed")) == ":x: Failed: Knowlify gave no reason"
    assert "unknown whether this video was started" in status_line(lc.UNKNOWN, Progress(None))
    assert "invite me" in status_line(lc.NEEDS_INVITE, Progress(None))


def test_every_state_has_its_own_line():
    lines = {
        state: status_line(state, Progress("voiceover", 10))
        for state in (lc.READY, lc.RENDERING, lc.COMPLETE, lc.FAILED, lc.UNKNOWN, lc.NEEDS_INVITE)
    }
    assert len(set(lines.values())) == len(lines)


@pytest.mark.parametrize(
    ("status", "is_complete", "is_failed", "expected"),
    [
        ("complete", True, False, lc.COMPLETE),
        ("complete", False, False, lc.COMPLETE),
        ("whatever", True, False, lc.COMPLETE),
        ("failed", False, True, lc.FAILED),
        ("failed", False, False, lc.FAILED),
        ("generating_frames", False, True, lc.FAILED),
        ("generating_frames", False, False, None),
        ("pending", False, False, None),
        (None, False, False, None),
        ("brand_new_status", False, False, None),
    ],
)
def test_is_terminal_status(status, is_complete, is_failed, expected):
    assert is_terminal_status(status, is_complete, is_failed) == expected


def test_a_failure_wins_over_a_contradictory_complete_flag():
    assert is_terminal_status("failed", True, True) == lc.FAILED


def test_card_updates_are_paced_except_the_last_one():
    poll = 5.0  # production default: at most one update every 3 s per card
    assert not card_update_due(100.0, 99.0, poll, False)
    assert not card_update_due(102.9, 100.0, poll, False)
    assert card_update_due(103.0, 100.0, poll, False)
    assert card_update_due(100.0, 99.99, poll, True), "the final state is never held back"
    assert card_update_due(100.0, 0.0, poll, False), "the first update is due"
    # A shorter poll interval (tests) paces by the poll interval instead.
    assert not card_update_due(100.04, 100.0, 0.05, False)
    assert card_update_due(100.06, 100.0, 0.05, False)



def test_state_groups():
    assert set(lc.EDIT_UNSUBMITTED) < set(lc.EDIT_WORK_STATES)
    assert lc.SUBMITTED in lc.EDIT_WORK_STATES and lc.SUBMITTED not in lc.EDIT_UNSUBMITTED
    for final in (lc.EDIT_COMPLETE, lc.EDIT_ERROR, lc.REFUSED, lc.REVERTED):
        assert final not in lc.EDIT_WORK_STATES

"""The `/knowlify` form: a view Slack accepts, and submissions read with the command's validators."""

from __future__ import annotations

from typing import Any

import pytest
from slack_sdk.models.views import View

from bot.core.options import PALETTE_ROLES, VIDEO_TYPES, VideoOptions
from bot.core.parse import CreateCommand
from bot.ui.modal import (
    ASPECT_ACTION,
    ASPECT_BLOCK,
    CALLBACK_ID,
    COLOUR_ACTIONS,
    COLOUR_BLOCKS,
    DURATION_ACTION,
    DURATION_BLOCK,
    PROMPT_ACTION,
    PROMPT_BLOCK,
    STYLE_ACTION,
    STYLE_BLOCK,
    TYPE_ACTION,
    TYPE_BLOCK,
    build_create_modal,
    parse_submission,
)


def _text(action_id: str, value: str | None) -> dict[str, Any]:
    return {action_id: {"type": "plain_text_input", "value": value}}


def _number(action_id: str, value: str | None) -> dict[str, Any]:
    return {action_id: {"type": "number_input", "value": value}}


def _select(action_id: str, value: str | None) -> dict[str, Any]:
    selected = (
        None
        if value is None
        else {"text": {"type": "plain_text", "text": value, "emoji": True}, "value": value}
    )
    return {action_id: {"type": "static_select", "selected_option": selected}}


def state(**overrides: Any) -> dict[str, Any]:
    """A `view.state.values` as Slack sends it on submit, everything optional left empty."""
    values: dict[str, Any] = {
        PROMPT_BLOCK: _text(PROMPT_ACTION, "Explain how HTTPS works"),
        DURATION_BLOCK: _number(DURATION_ACTION, None),
        ASPECT_BLOCK: _select(ASPECT_ACTION, None),
        TYPE_BLOCK: _select(TYPE_ACTION, None),
        STYLE_BLOCK: _text(STYLE_ACTION, None),
        **{COLOUR_BLOCKS[r]: _text(COLOUR_ACTIONS[r], None) for r in PALETTE_ROLES},
    }
    values.update(overrides)
    return values


# --- the view --------------------------------------------------------------------------------------


def test_view_respects_slack_limits() -> None:
    view = build_create_modal(private_metadata='{"channel": "C0DESIGN1"}')
    assert view["type"] == "modal"
    assert view["callback_id"] == CALLBACK_ID
    assert 1 <= len(view["title"]["text"]) <= 24
    assert len(view["submit"]["text"]) <= 24 and len(view["close"]["text"]) <= 24
    assert 1 <= len(view["blocks"]) <= 100
    block_ids = [b["block_id"] for b in view["blocks"] if "block_id" in b]
    assert len(block_ids) == len(set(block_ids))
    assert all(len(b) <= 255 for b in block_ids)
    for block in view["blocks"]:
        element = block.get("element", {})
        if element.get("type") == "plain_text_input" and "max_length" in element:
            assert 1 <= element["max_length"] <= 3000  # Slack's ceiling for text inputs
    View(**view).validate_json()  # slack_sdk's own validators


def test_view_has_every_input_with_stable_ids() -> None:
    blocks = {b["block_id"]: b for b in build_create_modal()["blocks"] if b["type"] == "input"}
    expected = {
        PROMPT_BLOCK: (PROMPT_ACTION, "plain_text_input"),
        DURATION_BLOCK: (DURATION_ACTION, "number_input"),
        ASPECT_BLOCK: (ASPECT_ACTION, "static_select"),
        TYPE_BLOCK: (TYPE_ACTION, "static_select"),
        STYLE_BLOCK: (STYLE_ACTION, "plain_text_input"),
        **{COLOUR_BLOCKS[r]: (COLOUR_ACTIONS[r], "plain_text_input") for r in PALETTE_ROLES},
    }
    assert set(blocks) == set(expected)
    for block_id, (action_id, kind) in expected.items():
        element = blocks[block_id]["element"]
        assert (element["action_id"], element["type"]) == (action_id, kind)
        assert blocks[block_id]["optional"] is (block_id != PROMPT_BLOCK)
    assert blocks[PROMPT_BLOCK]["element"]["multiline"] is True
    assert blocks[STYLE_BLOCK]["element"]["multiline"] is True
    duration = blocks[DURATION_BLOCK]["element"]
    assert (duration["min_value"], duration["max_value"], duration["is_decimal_allowed"]) == (
        "30",
        "300",
        False,
    )
    assert [o["value"] for o in blocks[ASPECT_BLOCK]["element"]["options"]] == ["16:9", "9:16"]
    assert [o["value"] for o in blocks[TYPE_BLOCK]["element"]["options"]] == list(VIDEO_TYPES)


def test_private_metadata_is_carried_and_bounded() -> None:
    assert build_create_modal("ctx")["private_metadata"] == "ctx"
    with pytest.raises(ValueError):
        build_create_modal("x" * 3001)


# --- submissions -----------------------------------------------------------------------------------


def test_full_submission_becomes_a_create_command() -> None:
    values = state(
        **{
            PROMPT_BLOCK: _text(PROMPT_ACTION, "  Explain how tides work \n"),
            DURATION_BLOCK: _number(DURATION_ACTION, "90"),
            ASPECT_BLOCK: _select(ASPECT_ACTION, "9:16"),
            TYPE_BLOCK: _select(TYPE_ACTION, "narrative"),
            STYLE_BLOCK: _text(STYLE_ACTION, "clean, brand blue"),
            COLOUR_BLOCKS["primary"]: _text(COLOUR_ACTIONS["primary"], "#0066CC"),
            COLOUR_BLOCKS["accent"]: _text(COLOUR_ACTIONS["accent"], "f36"),
        }
    )
    assert parse_submission(values) == CreateCommand(
        "Explain how tides work",
        VideoOptions(
            duration=90,
            aspect="9:16",
            video_type="narrative",
            style="clean, brand blue",
            palette=(("primary", "#0066cc"), ("accent", "#f36")),
        ),
    )


def test_missing_optionals_give_default_options() -> None:
    assert parse_submission(state()) == CreateCommand("Explain how HTTPS works", VideoOptions())


def test_optional_blocks_absent_altogether() -> None:
    values = {PROMPT_BLOCK: _text(PROMPT_ACTION, "Explain DNS")}
    assert parse_submission(values) == CreateCommand("Explain DNS", VideoOptions())


def test_blank_optional_text_counts_as_unset() -> None:
    values = state(**{STYLE_BLOCK: _text(STYLE_ACTION, "   "), COLOUR_BLOCKS["tertiary"]: _text("x", "")})
    assert parse_submission(values) == CreateCommand("Explain how HTTPS works", VideoOptions())


def test_user_text_is_not_slack_unescaped() -> None:
    values = state(**{PROMPT_BLOCK: _text(PROMPT_ACTION, "Compare a &lt; b")})
    result = parse_submission(values)
    assert isinstance(result, CreateCommand) and result.prompt == "Compare a &lt; b"


@pytest.mark.parametrize(
    ("block_id", "field", "needle"),
    [
        (PROMPT_BLOCK, _text(PROMPT_ACTION, None), "empty"),
        (PROMPT_BLOCK, _text(PROMPT_ACTION, "  "), "empty"),
        (PROMPT_BLOCK, _text(PROMPT_ACTION, "p" * 5001), "5001 characters"),
        (DURATION_BLOCK, _number(DURATION_ACTION, "301"), '"301"'),
        (DURATION_BLOCK, _number(DURATION_ACTION, "12.5"), '"12.5"'),
        (ASPECT_BLOCK, _select(ASPECT_ACTION, "4:3"), '"4:3"'),
        (TYPE_BLOCK, _select(TYPE_ACTION, "funny"), '"funny"'),
        (STYLE_BLOCK, _text(STYLE_ACTION, "s" * 5001), "5001 characters"),
        *[(COLOUR_BLOCKS[r], _text(COLOUR_ACTIONS[r], "blue"), '"blue"') for r in PALETTE_ROLES],
    ],
)
def test_each_invalid_field_is_reported_on_its_block(
    block_id: str, field: dict[str, Any], needle: str
) -> None:
    result = parse_submission(state(**{block_id: field}))
    assert isinstance(result, dict)
    assert set(result) == {block_id}
    assert needle in result[block_id]


def test_colour_errors_name_their_role() -> None:
    result = parse_submission(
        state(**{COLOUR_BLOCKS["secondary"]: _text(COLOUR_ACTIONS["secondary"], "#12")})
    )
    assert isinstance(result, dict) and "secondary" in result[COLOUR_BLOCKS["secondary"]]


def test_several_invalid_fields_are_all_reported() -> None:
    values = state(
        **{
            PROMPT_BLOCK: _text(PROMPT_ACTION, ""),
            DURATION_BLOCK: _number(DURATION_ACTION, "10"),
            COLOUR_BLOCKS["accent"]: _text(COLOUR_ACTIONS["accent"], "#zzz"),
        }
    )
    result = parse_submission(values)
    assert isinstance(result, dict)
    assert set(result) == {PROMPT_BLOCK, DURATION_BLOCK, COLOUR_BLOCKS["accent"]}


@pytest.mark.parametrize("values", [{}, {"prompt": "not a dict"}, {"prompt": {"a": 1, "b": 2}}, None])
def test_malformed_state_is_a_prompt_error_not_a_crash(values: Any) -> None:
    assert parse_submission(values) == {PROMPT_BLOCK: parse_submission({})[PROMPT_BLOCK]}  # type: ignore[index]

"""The `/knowlify` form: the same options as the slash command, checked by the same validators.

The view is validated in the ack of `view_submission` (`ack(response_action="errors", errors=…)`),
so `parse_submission` returns errors keyed by block_id instead of raising. The errors quote what was
typed; they are escaped like every other text the bot shows (Slack decodes `&lt;` `&gt;` `&amp;` for
display), so a value such as `<!channel>` is shown as typed and never parsed as markup.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

from bot.core.mrkdwn import escape
from bot.core.options import (
    ASPECT_RATIOS,
    MAX_DURATION_SECONDS,
    MAX_PROMPT_CHARS,
    MAX_STYLE_CHARS,
    MIN_DURATION_SECONDS,
    PALETTE_ROLES,
    VIDEO_TYPES,
    OptionError,
    VideoOptions,
    check_aspect,
    check_duration,
    check_hex,
    check_prompt,
    check_style,
    check_type,
)
from bot.core.parse import CreateCommand

CALLBACK_ID = "knowlify_create"

PROMPT_BLOCK, PROMPT_ACTION = "prompt", "prompt_input"
DURATION_BLOCK, DURATION_ACTION = "duration", "duration_input"
ASPECT_BLOCK, ASPECT_ACTION = "aspect", "aspect_select"
TYPE_BLOCK, TYPE_ACTION = "video_type", "video_type_select"
STYLE_BLOCK, STYLE_ACTION = "style", "style_input"
COLOUR_BLOCKS: dict[str, str] = {role: f"color_{role}" for role in PALETTE_ROLES}
COLOUR_ACTIONS: dict[str, str] = {role: f"color_{role}_input" for role in PALETTE_ROLES}

# Slack refuses a plain_text_input whose max_length exceeds 3000, although Knowlify takes 5000;
# longer prompts and styles still fit through the slash command.
SLACK_TEXT_INPUT_MAX = 3000
PRIVATE_METADATA_MAX = 3000

_T = TypeVar("_T")

_ASPECT_LABELS = {"16:9": "16:9 — landscape", "9:16": "9:16 — portrait"}
_COLOUR_EXAMPLES = {"primary": "#0066cc", "secondary": "#ffcc00", "tertiary": "#333333", "accent": "#ff3366"}


def _plain(text: str) -> dict[str, Any]:
    return {"type": "plain_text", "text": text}


def _option(label: str, value: str) -> dict[str, Any]:
    return {"text": _plain(label), "value": value}


def _input(
    block_id: str, label: str, element: dict[str, Any], *, optional: bool, hint: str | None = None
) -> dict[str, Any]:
    block: dict[str, Any] = {
        "type": "input",
        "block_id": block_id,
        "label": _plain(label),
        "element": element,
        "optional": optional,
    }
    if hint:
        block["hint"] = _plain(hint)
    return block


def build_create_modal(private_metadata: str = "") -> dict[str, Any]:
    """The view for `views.open`; `private_metadata` carries the listener's context (e.g. the channel)."""
    if len(private_metadata) > PRIVATE_METADATA_MAX:
        raise ValueError(f"private_metadata is {len(private_metadata)} characters; Slack allows 3000")
    blocks: list[dict[str, Any]] = [
        _input(
            PROMPT_BLOCK,
            "What should the video explain?",
            {
                "type": "plain_text_input",
                "action_id": PROMPT_ACTION,
                "multiline": True,
                "max_length": min(MAX_PROMPT_CHARS, SLACK_TEXT_INPUT_MAX),
                "focus_on_load": True,
                "placeholder": _plain("Explain how HTTPS works"),
            },
            optional=False,
        ),
        {
            "type": "context",
            "elements": [
                {
                    "type": "mrkdwn",
                    "text": "Everything below is optional: leave it blank and Knowlify chooses.",
                }
            ],
        },
        _input(
            DURATION_BLOCK,
            "Length in seconds",
            {
                "type": "number_input",
                "action_id": DURATION_ACTION,
                "is_decimal_allowed": False,
                "min_value": str(MIN_DURATION_SECONDS),
                "max_value": str(MAX_DURATION_SECONDS),
                "placeholder": _plain(f"{MIN_DURATION_SECONDS}–{MAX_DURATION_SECONDS}"),
            },
            optional=True,
        ),
        _input(
            ASPECT_BLOCK,
            "Aspect ratio",
            {
                "type": "static_select",
                "action_id": ASPECT_ACTION,
                "placeholder": _plain("Choose a ratio"),
                "options": [_option(_ASPECT_LABELS.get(r, r), r) for r in ASPECT_RATIOS],
            },
            optional=True,
        ),
        _input(
            TYPE_BLOCK,
            "Video type",
            {
                "type": "static_select",
                "action_id": TYPE_ACTION,
                "placeholder": _plain("Choose a type"),
                "options": [_option(t.capitalize(), t) for t in VIDEO_TYPES],
            },
            optional=True,
        ),
        _input(
            STYLE_BLOCK,
            "Style",
            {
                "type": "plain_text_input",
                "action_id": STYLE_ACTION,
                "multiline": True,
                "max_length": min(MAX_STYLE_CHARS, SLACK_TEXT_INPUT_MAX),
                "placeholder": _plain("minimal, brand-blue accents, sans-serif"),
            },
            optional=True,
            hint="Direction applied to every scene.",
        ),
    ]
    for role in PALETTE_ROLES:
        blocks.append(
            _input(
                COLOUR_BLOCKS[role],
                f"{role.capitalize()} colour",
                {
                    "type": "plain_text_input",
                    "action_id": COLOUR_ACTIONS[role],
                    "max_length": 7,
                    "placeholder": _plain(_COLOUR_EXAMPLES[role]),
                },
                optional=True,
                hint="#rgb or #rrggbb" if role == PALETTE_ROLES[0] else None,
            )
        )
    return {
        "type": "modal",
        "callback_id": CALLBACK_ID,
        "title": _plain("New Knowlify video"),
        "submit": _plain("Create"),
        "close": _plain("Cancel"),
        "private_metadata": private_metadata,
        "blocks": blocks,
    }


def _read(values: dict[str, Any], block_id: str, action_id: str) -> str | None:
    """The submitted value of one input as text, or None when left empty (Slack omits or nulls it)."""
    block = values.get(block_id)
    if not isinstance(block, dict):
        return None
    element = block.get(action_id)
    if not isinstance(element, dict) and len(block) == 1:
        element = next(iter(block.values()))  # tolerate a renamed action_id
    if not isinstance(element, dict):
        return None
    if "selected_option" in element:
        selected = element.get("selected_option")
        value = selected.get("value") if isinstance(selected, dict) else None
    else:
        value = element.get("value")
    if value is None:
        return None
    text = str(value)
    return text if text.strip() else None


def parse_submission(view_state_values: dict[str, Any]) -> CreateCommand | dict[str, str]:
    """Read `view["state"]["values"]`: the command, or `{block_id: message}` for the ack's errors."""
    values = view_state_values if isinstance(view_state_values, dict) else {}
    errors: dict[str, str] = {}

    def checked(block_id: str, action_id: str, check: Callable[[str], _T]) -> _T | None:
        raw = _read(values, block_id, action_id)
        if raw is None:
            return None
        try:
            return check(raw)
        except OptionError as exc:
            errors[block_id] = escape(exc.message)
            return None

    prompt_raw = _read(values, PROMPT_BLOCK, PROMPT_ACTION) or ""
    prompt = ""
    try:
        prompt = check_prompt(prompt_raw)
    except OptionError as exc:
        errors[PROMPT_BLOCK] = escape(exc.message)
    duration = checked(DURATION_BLOCK, DURATION_ACTION, check_duration)
    aspect = checked(ASPECT_BLOCK, ASPECT_ACTION, check_aspect)
    video_type = checked(TYPE_BLOCK, TYPE_ACTION, check_type)
    style = checked(STYLE_BLOCK, STYLE_ACTION, check_style)
    palette: list[tuple[str, str]] = []
    for role in PALETTE_ROLES:
        colour = checked(COLOUR_BLOCKS[role], COLOUR_ACTIONS[role], functools.partial(check_hex, role))
        if colour is not None:
            palette.append((role, colour))
    if errors:
        return errors
    options = VideoOptions(
        duration=duration, aspect=aspect, video_type=video_type, style=style, palette=tuple(palette)
    )
    return CreateCommand(prompt=prompt, options=options)

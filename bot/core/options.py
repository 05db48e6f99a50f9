"""Video options of `/knowlify` and the validators shared by the command parser and the modal.

One set of validators keeps the two entry points in agreement: a value the modal refuses is refused
by the slash command with the same words, and both produce exactly what Knowlify's
`VideoCreateItem` accepts (docs/knowlify-api-notes.md), so a bad value never costs an API call.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

MIN_DURATION_SECONDS = 30
MAX_DURATION_SECONDS = 300
ASPECT_RATIOS: tuple[str, ...] = ("16:9", "9:16")
VIDEO_TYPES: tuple[str, ...] = ("instructional", "explainer", "corporate", "marketing", "narrative", "social")
MAX_STYLE_CHARS = 5000
MAX_PROMPT_CHARS = 5000
PALETTE_ROLES: tuple[str, ...] = ("primary", "secondary", "tertiary", "accent")

_DURATION_RE = re.compile(r"(\d+)\s*(?:s|sec|secs|seconds?)?", re.ASCII | re.IGNORECASE)
_ASPECT_ALIASES = {
    "16:9": "16:9",
    "16x9": "16:9",
    "16/9": "16:9",
    "landscape": "16:9",
    "9:16": "9:16",
    "9x16": "9:16",
    "9/16": "9:16",
    "portrait": "9:16",
}
_HEX_RE = re.compile(r"#?([0-9a-f]{3}|[0-9a-f]{6})", re.ASCII | re.IGNORECASE)
# What Slack sends instead of "#name" when the command escapes channels and a channel has that name.
_SLACK_CHANNEL_RE = re.compile(r"<#([A-Z0-9]+)(?:\|([^>]*))?>")


class OptionError(ValueError):
    """A user-supplied value is unusable; `message` says what is wrong and how to fix it."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def quote_value(value: str, limit: int = 40) -> str:
    """Quote a user value for an error message, shortened so one huge value cannot flood the answer."""
    one_line = " ".join(value.split()) if value.strip() else value
    if len(one_line) > limit:
        one_line = one_line[: limit - 1] + "…"
    return f'"{one_line}"'


def check_duration(value: str) -> int:
    """Whole seconds within Knowlify's 30–300; a trailing "s" ("60s") is tolerated."""
    text = value.strip()
    if not text:
        raise OptionError(
            f"The duration is empty: give a whole number of seconds from {MIN_DURATION_SECONDS} "
            f"to {MAX_DURATION_SECONDS}, e.g. 60."
        )
    match = _DURATION_RE.fullmatch(text)
    if match is None:
        raise OptionError(
            f"{quote_value(text)} is not a whole number of seconds: use a number from "
            f"{MIN_DURATION_SECONDS} to {MAX_DURATION_SECONDS}, e.g. 60."
        )
    seconds = int(match.group(1))
    if not MIN_DURATION_SECONDS <= seconds <= MAX_DURATION_SECONDS:
        raise OptionError(
            f"{quote_value(text)} is out of range: the duration must be from {MIN_DURATION_SECONDS} "
            f"to {MAX_DURATION_SECONDS} seconds, e.g. 60."
        )
    return seconds


def check_aspect(value: str) -> str:
    """16:9 or 9:16; "16x9", "16/9", "landscape" and "portrait" are read as the ratio they mean."""
    text = "".join(value.split()).lower()
    aspect = _ASPECT_ALIASES.get(text)
    if aspect is None:
        raise OptionError(
            f"{quote_value(value.strip())} is not an aspect ratio Knowlify renders: "
            "use 16:9 (landscape) or 9:16 (portrait)."
        )
    return aspect


def check_type(value: str) -> str:
    """One of Knowlify's six style presets, matched case-insensitively and returned lower-case."""
    text = value.strip().lower()
    if text not in VIDEO_TYPES:
        raise OptionError(
            f"{quote_value(value.strip())} is not a video type: use one of {', '.join(VIDEO_TYPES)}."
        )
    return text


def check_style(value: str) -> str:
    """Free-form style direction for every scene, 1–5000 characters after trimming."""
    text = value.strip()
    if not text:
        raise OptionError('The style is empty: describe the look, e.g. "clean, brand blue, sans-serif".')
    if len(text) > MAX_STYLE_CHARS:
        raise OptionError(
            f"The style is {len(text)} characters long; the limit is {MAX_STYLE_CHARS}: "
            f"shorten it by {len(text) - MAX_STYLE_CHARS} characters."
        )
    return text


def check_hex(role: str, value: str) -> str:
    """A palette colour as `#rgb` or `#rrggbb`, lower-cased; the `#` may be left out.

    Leaving the `#` out is the way around Slack turning `#name` into a channel link.
    """
    if role not in PALETTE_ROLES:
        raise OptionError(
            f"{quote_value(role)} is not a palette colour: use one of {', '.join(PALETTE_ROLES)}."
        )
    text = value.strip()
    channel = _SLACK_CHANNEL_RE.fullmatch(text)
    if channel is not None:
        name = channel.group(2) or channel.group(1)
        raise OptionError(
            f"Slack turned the {role} colour into a link to the channel #{name}, not a colour: "
            f"write it without the # (e.g. 0066cc) and it is read as #0066cc."
        )
    if not text:
        raise OptionError(f"The {role} colour is empty: write it as #rgb or #rrggbb, e.g. #0066cc.")
    if _HEX_RE.fullmatch(text) is None:
        raise OptionError(
            f"{quote_value(text)} is not a hex colour: "
            f"write the {role} colour as #rgb or #rrggbb, e.g. #0066cc."
        )
    return "#" + text.lstrip("#").lower()


def check_prompt(value: str) -> str:
    """What the video should explain: 1–5000 characters after trimming (Knowlify's `task`)."""
    text = value.strip()
    if not text:
        raise OptionError(
            "The prompt is empty: say what the video should explain, e.g. Explain how HTTPS works."
        )
    if len(text) > MAX_PROMPT_CHARS:
        raise OptionError(
            f"The prompt is {len(text)} characters long; the limit is {MAX_PROMPT_CHARS}: "
            f"shorten it by {len(text) - MAX_PROMPT_CHARS} characters."
        )
    return text


@dataclass(frozen=True)
class VideoOptions:
    """The optional knobs of one video; `None`/empty means "let Knowlify choose".

    `palette` is kept in role order (primary, secondary, tertiary, accent) whatever order the user
    typed, so two equal option sets compare equal.
    """

    duration: int | None = None
    aspect: str | None = None
    video_type: str | None = None
    style: str | None = None
    palette: tuple[tuple[str, str], ...] = ()

    def __post_init__(self) -> None:
        roles = [role for role, _ in self.palette]
        unknown = [role for role in roles if role not in PALETTE_ROLES]
        if unknown or len(set(roles)) != len(roles):
            raise ValueError(f"palette roles must be distinct and among {PALETTE_ROLES}: {roles}")
        ordered = tuple(sorted(((r, h) for r, h in self.palette), key=lambda p: PALETTE_ROLES.index(p[0])))
        object.__setattr__(self, "palette", ordered)

    def to_spec_fields(self) -> dict[str, Any]:
        """The `VideoCreateItem` fields these options set; unset ones are left to Knowlify's defaults."""
        fields: dict[str, Any] = {}
        if self.duration is not None:
            fields["video_duration_seconds"] = self.duration
        if self.aspect is not None:
            fields["aspect_ratio"] = self.aspect
        if self.video_type is not None:
            fields["video_type"] = self.video_type
        if self.style is not None:
            fields["global_style_prompt"] = self.style
        if self.palette:
            fields["color_palette"] = dict(self.palette)
        return fields

    def describe(self) -> str:
        """One line for the status card, e.g. "60 s · 9:16 · explainer · primary #0066cc"; "" if unset."""
        parts: list[str] = []
        if self.duration is not None:
            parts.append(f"{self.duration} s")
        if self.aspect is not None:
            parts.append(self.aspect)
        if self.video_type is not None:
            parts.append(self.video_type)
        if self.style is not None:
            parts.append(f"style {quote_value(self.style)}")
        parts.extend(f"{role} {hex_}" for role, hex_ in self.palette)
        return " · ".join(parts)

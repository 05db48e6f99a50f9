"""Which version of a video is current, derived from its edits rather than stored twice."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

from bot.core import lifecycle


@dataclass(frozen=True)
class EditView:
    """The part of an edit that decides the current version: its state and its result link."""

    reply_ts: str
    state: str
    result_json: str | None


@dataclass(frozen=True)
class Version:
    link: str | None
    edits_applied: int


def current_version(base_link: str | None, edits: Sequence[EditView]) -> Version:
    """The newest applied edit's link wins; a reverted edit no longer counts."""
    link, applied = base_link, 0
    for edit in sorted(edits, key=lambda e: e.reply_ts):
        if edit.state != lifecycle.EDIT_COMPLETE:
            continue
        applied += 1
        result = json.loads(edit.result_json) if edit.result_json else {}
        if result.get("link"):
            link = result["link"]
    return Version(link=link, edits_applied=applied)

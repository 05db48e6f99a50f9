"""Typed shapes of the Knowlify v1 API, parsed at the edge.

The docs leave many fields open (docs/knowlify-api-notes.md), so every response model keeps unknown fields
(``extra="allow"``) and every status is a plain ``str``: a new server value must reach the caller's
"unknown status" branch, not abort the parse. Success bodies of POSTs are parsed leniently because a
parse failure there means "outcome unknown", which is far costlier than a missing optional field.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

# Documented pipeline order of GET /v1/videos/{uuid} `status` (poll-video page).
VIDEO_STAGES: tuple[str, ...] = (
    "pending",
    "queued",
    "voiceover",
    "highlevel",
    "lowlevel",
    "scan_assets",
    "generating_frames",
    "complete",
    "failed",
)
# Documented GET /v1/edits/{edit_id} `status` values, in the poll-edit page's order.
EDIT_STATUSES: tuple[str, ...] = ("queued", "processing", "applying", "complete", "error", "reverted")
# `results[].status` of POST /v1/videos.
CREATED_ITEM_STATUSES: tuple[str, ...] = ("queued", "parked", "error")

_LINK_FIELDS = ("link", "video_url", "url", "mp4_link")


class _Response(BaseModel):
    model_config = ConfigDict(extra="allow")


def _none_to_empty(value: Any) -> Any:
    return [] if value is None else value


class VideoSpec(BaseModel):
    """One `VideoCreateItem`. Extra keys (e.g. an undocumented `voice_id`) are passed through as given."""

    model_config = ConfigDict(extra="allow")

    task: str
    video_duration_seconds: int | None = None
    aspect_ratio: str | None = None
    video_type: str | None = None
    global_style_prompt: str | None = None
    color_palette: dict[str, str] | None = None

    def to_payload(self) -> dict[str, Any]:
        """Omit unset fields so Knowlify applies its own defaults."""
        return self.model_dump(exclude_none=True)


class CreatedItem(_Response):
    """One `results[]` row; `status == "error"` is a per-item failure inside a 200, not an exception."""

    index: int
    uuid: str | None = None
    session_id: str | None = None
    chat_url: str | None = None
    status: str
    queue_position: int | None = None
    code: str | None = None
    message: str | None = None


class CreateVideosResponse(_Response):
    status: str = "ok"
    total: int = 0
    enqueued: int = 0
    parked: int = 0
    errors: int = 0
    user_id: str | None = None
    org_id: str | None = None
    results: list[CreatedItem]

    @model_validator(mode="before")
    @classmethod
    def _index_from_position(cls, data: Any) -> Any:
        # Results come "in the same order as videos"; a missing index is recoverable from position.
        if isinstance(data, dict) and isinstance(data.get("results"), list):
            rows = [
                {**row, "index": i} if isinstance(row, dict) and row.get("index") is None else row
                for i, row in enumerate(data["results"])
            ]
            data = {**data, "results": rows}
        return data


class VideoProgress(_Response):
    stage: str | None = None
    percent: int | None = None
    current_scene: int | None = None
    total_scenes: int | None = None


def _with_flags(
    data: dict[str, Any], *, complete: tuple[str, ...], failed: tuple[str, ...]
) -> dict[str, Any]:
    """Fill `is_complete`/`is_failed` from `status` when the server leaves them out (or null)."""
    status = data.get("status")
    derived = {"is_complete": status in complete, "is_failed": status in failed}
    return {**derived, **{k: v for k, v in data.items() if v is not None or k not in derived}}


class VideoStatus(_Response):
    uuid: str
    status: str
    is_complete: bool
    is_failed: bool
    progress: VideoProgress | None = None
    error_message: str | None = None
    task: str | None = None
    created_at: str | None = None
    updated_at: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _derive_flags(cls, data: Any) -> Any:
        if isinstance(data, dict):
            data = _with_flags(data, complete=("complete",), failed=("failed",))
        return data

    @property
    def link(self) -> str | None:
        """The rendered video's URL, if Knowlify ever adds one (none is documented, §14)."""
        extra = self.model_extra or {}
        for name in _LINK_FIELDS:
            value = extra.get(name)
            if isinstance(value, str) and value:
                return value
        result = extra.get("result")
        if isinstance(result, dict):
            value = result.get("link")
            if isinstance(value, str) and value:
                return value
        return None


class EditAccepted(_Response):
    """202 of POST /v1/edits. Only `edit_id` is required: it is what the bot needs to poll and revert."""

    edit_id: str
    video_uuid: str | None = None
    status: str | None = None
    queue_position: int | None = None


class SceneDiff(_Response):
    changed_scene_numbers: list[int] = Field(default_factory=list)
    added_scene_numbers: list[int] = Field(default_factory=list)
    deleted_scene_numbers: list[int] = Field(default_factory=list)

    @field_validator("*", mode="before")
    @classmethod
    def _null_lists(cls, value: Any) -> Any:
        return _none_to_empty(value)


class EditResult(_Response):
    link: str | None = None
    changed_scene_numbers: list[int] = Field(default_factory=list)
    added_scene_numbers: list[int] = Field(default_factory=list)
    deleted_scene_numbers: list[int] = Field(default_factory=list)
    regenerated_scenes: list[int] = Field(default_factory=list)
    kept_scenes: list[int] = Field(default_factory=list)
    video_synced: bool | None = None
    revert_diff: SceneDiff | None = None

    @field_validator(
        "changed_scene_numbers",
        "added_scene_numbers",
        "deleted_scene_numbers",
        "regenerated_scenes",
        "kept_scenes",
        mode="before",
    )
    @classmethod
    def _null_lists(cls, value: Any) -> Any:
        return _none_to_empty(value)


class EditStatus(_Response):
    """GET /v1/edits/{edit_id}, and the 200 of revert (same shape, `status: "reverted"`)."""

    edit_id: str
    video_uuid: str | None = None
    status: str
    is_complete: bool
    is_failed: bool
    progress: dict[str, Any] | None = None
    result: EditResult | None = None
    error_message: str | None = None
    created_at: str | None = None
    updated_at: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _derive_flags(cls, data: Any) -> Any:
        if isinstance(data, dict):
            data = _with_flags(data, complete=("complete", "reverted"), failed=("error",))
        return data

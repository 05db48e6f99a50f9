"""In-process simulator of the Knowlify v1 HTTP API (a Starlette ASGI app).

`knowlify-slack demo`, `knowlify-slack simulator` and the test suite run against it, so it follows
Knowlify's public docs (https://docs.knowlify.com; what the bot relies on is in
docs/knowlify-api-notes.md) to the letter wherever they speak, and makes the choices below where
they are silent or contradict themselves. All timing derives from the injected
`clock`; `advance()` replays due transitions in time order under one lock, so a fake clock gives fully
deterministic runs without background threads.

Choices where the docs are silent or contradictory
--------------------------------------------------
Auth and identity
- `X-API-Key` must match `kn_` + 64 hex (either case). Missing → 401 `missing API key (X-API-Key header)`;
  malformed → 401 `invalid API key`. JWT (`Authorization: Bearer`) is not simulated: 401 as missing.
- Every well-formed key is accepted and is its own personal caller: `org_id` null, `user_id` =
  uuid5(fixed namespace, key). The key itself is never stored; `SimCall.key` keeps its last 6 chars.
- Foreign video → 403 `API key does not own this video`; foreign edit → 403 `API key does not own this
  edit`; unknown → 404 `video not found` / `edit not found`. Unknown routes → 404 `Not Found`, wrong
  method → 405 `Method Not Allowed` (FastAPI's texts), both outside any bucket.
Rate limits
- Fixed windows per caller per bucket (videos 30, edits 10 per `window_seconds`); a window opens at the
  caller's first request after the previous one expired (not wall-clock aligned).
- Order: auth (401 costs nothing) → rate limit → everything else. Every request that passes the limiter
  consumes quota, whatever its final status (400/403/404/409/422/…); a 429 does not. The X-RateLimit-*
  headers are sent on every response that consumed quota (not only 2xx) and on 429s.
- `X-RateLimit-Reset` and `Retry-After` are whole seconds until the window ends, rounded up, ≥ 1. The 429
  text prints the window rounded to whole seconds (≥ 1): `Rate limit exceeded: 10 requests per 60s. Retry
  in 45s.`; its Retry-After equals X-RateLimit-Reset (as in the docs' example).
POST /v1/videos
- Whole-request validation failures → 400 with a *string* `detail` naming the field, e.g.
  `videos[0].video_type: must be one of ...` (not FastAPI's list; §13.1–2). Body not JSON → 422
  `request body is not valid JSON`. Values are not coerced ("60" is not an integer).
- Only `task` is required; defaults: video_duration_seconds 60, aspect_ratio "16:9", video_type
  "explainer". `global_style_prompt` ≤ 5000; `voice_id` optional string. Unknown item and top-level
  fields are ignored. Unknown `color_palette` keys are a 400. A non-null `org_id` → 400 (personal keys).
- Per-item errors (`ITEM_FAILED`, HTTP 200): `voice_id == "rejected"` → `voice_id was rejected by the
  upstream provider`; a task containing `[item-error]` → `item could not be queued: upstream queue
  rejected the job`. Error rows carry uuid/session_id/chat_url, but no job exists (GET → 404).
- `queue_position` appears on parked rows only: 1-based among the caller's parked jobs (global per
  caller, not per batch). Queued rows have no `queue_position`.
Render
- A job holds a concurrency slot from dispatch until complete/failed. From dispatch it spends one
  `stage_seconds` in each of pending, queued, voiceover, highlevel, lowlevel, scan_assets,
  generating_frames, then is complete (7 stages). A parked job shows `pending` (percent 0) until promoted
  FIFO, then runs the same 7 stages (its first is still `pending`, so updated_at stays at created_at).
- percent: pending 0, queued 5, voiceover 10, highlevel 25, lowlevel 40, scan_assets 55,
  generating_frames 70 + 30·(scene−1)/total (scene 4/5 → 88, as in the docs), complete 100.
  current_scene is 0 before generating_frames, advances evenly through it, and equals total at complete;
  total_scenes is `config.total_scenes` (after edits: the planner's scene count).
- A task containing `[fail]` fails halfway through generating_frames with error_message
  `frame generation failed for scene <n>: upstream provider error`. `fail_video` fails a job now, at its
  current stage (parked jobs leave the park). A failed poll keeps `progress` frozen where it stopped
  (`stage` = the stage it failed in); status is `failed`.
- A task containing `[no-render]` ends `complete` with a planner but no rendered cut (a "never rendered"
  video): edits on it skip `applying`, report `video_synced: false` and bill only frame regeneration.
- updated_at changes only on status changes. `link` (the rendered mp4) appears on the poll only when
  `SimConfig.expose_link` (null for `[no-render]` videos); edits and reverts move it.
POST /v1/edits
- Order: 401 → 429 → Idempotency-Key replay → 422 (not JSON; missing/wrong-typed/oversized fields; > 5
  URLs; Idempotency-Key > 255 chars) → reference URLs (422 SSRF, then 415) → 404 → 403 → 409 → 400 content
  safety → 402 credits. 422 details are strings naming the field, like the video endpoint's 400s.
- Reference URLs (no network): not `https` or no host → 422; host `localhost`/`*.localhost` or an IP
  literal that is private/loopback/link-local/reserved/multicast/unspecified/non-global → 422; path
  containing `huge` → 415 (> 5 MB); containing `no-length` → 415 (missing Content-Length); path not ending
  in .png/.jpg/.jpeg/.gif/.webp → 415 (Content-Type not image/*).
- 409 details: `video is still being built (status=<status>); wait for the initial render to finish` and
  `video has errored (status=failed); it cannot be edited`. Content safety: edit_request containing
  `[unsafe]` → 400 `edit_request was rejected by the content-safety scan`. `skip_content_safety` is
  accepted but ignored (standard keys; the scan always runs).
- Credits: 10 000 per caller. Scenes alternate Veo (odd numbers) and Remotion (even): 5 scenes = 3 Veo +
  2 Remotion, upper bound (4+25)·3 + 9·2 = 105, over the planner's current scenes, checked at
  submission against the balance (queued edits reserve nothing). On completion the charge is, per
  regenerated scene, 29 (Veo) or 9 (Remotion); 4 per Veo scene and 0 per Remotion scene when never
  rendered. The balance never goes below 0. Reverts and errored edits are free.
- Idempotency-Key: scoped per caller, POST /v1/edits only, `idempotency_ttl_seconds` (24 h). Only 202
  answers are remembered; a replay (even with a different body) returns the original 202 body verbatim
  and creates nothing. Error answers are not remembered, so a retry after a 4xx is evaluated afresh.
  Replays count against the edits bucket.
- Per-video serial queue: 202 `processing` + queue_position 0 when nothing else is active on the video,
  else `queued` + 1-based position behind the active/queued edits. Phases: processing (phases 1 and 2)
  `stage_seconds`, then applying (phase 3) `stage_seconds`, then complete; the next queued edit starts
  when the previous one ends. `progress.stage`: `queued` (0), `edit` / `frame_regen` (the two halves of
  processing), `sync` (applying), `done` (100, complete or reverted), `error` (frozen percent);
  percent grows linearly 5→99 while running. `result` is null until complete.
- `[ambiguous]` in edit_request → `error` at the end of phase 1 (half a stage) with
  `edit request was ambiguous; rephrase and retry.`. `[no-snapshot]` → the edit completes but saves no
  planner snapshot (the docs' "rare" case behind `no snapshot available to revert`).
- Scene changes are derived from the text: `delete|remove|drop|cut scene(s) N[, M…]` → deleted;
  `add`/`new scene`/`append` → one scene appended at the end; other `scene(s) N…` mentions (not after
  `after`/`before`) → changed; an aspect_ratio different from the video's → every scene changed; nothing
  recognised → scene 1 changed. changed/deleted use the pre-edit numbering; added, regenerated_scenes and
  kept_scenes the post-edit numbering. A synced edit gives the video a new mp4 link (new uuid).
Revert
- Guards in this order: 404 → 403 → `edit is not in a revertable state (status=<status>)` → `cannot
  revert while another edit is processing or queued` → `a newer external edit exists on this video;
  revert the most recent edit first` → (history non-empty and top ≠ this edit) `snapshot at the top of
  planner_history was not saved by this edit; cannot safely revert` → (history empty) `no snapshot
  available to revert`. planner_history is a stack of (owner, snapshot) with owner an edit id or
  "frontend" (`frontend_edit`). Success pops the snapshot (scenes and link restored), sets `reverted`,
  returns 200 with the poll shape and `result.revert_diff` = the inverse of the edit (its changed scenes,
  added ↔ deleted swapped). Revert counts against the edits bucket.
Faults and controls
- Faults are matched (path prefix, optional method) before auth/limits, consume no quota and change no
  state. The call is recorded at once; the answer is then held `delay` real seconds. Status 0 means the
  request is processed normally and only its answer is held. An injected 429 carries `Retry-After` (the
  given value; whole numbers print as integers) and X-RateLimit-* with Remaining 0.
- `/_sim/*` control requests are neither recorded nor rate limited.
- Hostile output: `set_response_hook(fn)` lets a test rewrite every v1 answer the simulator built (not
  injected faults) just before it is sent: `fn(method, path, status, body)` returns the body to send
  (it may change it in place and return it). Used to make Knowlify's own texts and links hostile
  (markup in `detail`, `error_message`, `chat_url`, `link`, `result.link`) while the state machine
  stays as documented. `None` removes the hook.
"""

from __future__ import annotations

import copy
import ipaddress
import json
import math
import re
import socket
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import anyio
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

KEY_RE = re.compile(r"^kn_[0-9a-fA-F]{64}$")
HEX_COLOR_RE = re.compile(r"^#(?:[0-9a-fA-F]{3}|[0-9a-fA-F]{6})$")
EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
VIDEO_TYPES = ("instructional", "explainer", "corporate", "marketing", "narrative", "social")
ASPECT_RATIOS = ("16:9", "9:16")
PALETTE_KEYS = ("primary", "secondary", "tertiary", "accent")
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".gif", ".webp")
RENDER_STAGES = (
    "pending",
    "queued",
    "voiceover",
    "highlevel",
    "lowlevel",
    "scan_assets",
    "generating_frames",
)
STAGE_PERCENT = (0, 5, 10, 25, 40, 55, 70)
CHAT_URL = "https://create.knowlify.com/p/chat/{}"
S3_URL = "https://animation-encoder-videos.s3.us-west-2.amazonaws.com/{}.mp4"
USER_NAMESPACE = uuid.UUID("6f1c9a52-4b7e-4d0a-9a55-2f3e8c1d7b00")
AMBIGUOUS_MESSAGE = "edit request was ambiguous; rephrase and retry."
VEO_FRAME_CREDITS = 4
VEO_CLIP_CREDITS = 25
REMOTION_CREDITS = 9
MAX_IDEMPOTENCY_KEY = 255
EPS = 1e-9
ALL_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")


@dataclass
class SimConfig:
    """Knobs of the simulator; defaults mirror the documented production limits."""

    stage_seconds: float = 2.0
    # Per-render stage duration from the task (benches: renders of different lengths); None = stage_seconds.
    video_stage_seconds: Callable[[str], float] | None = None
    window_seconds: float = 60.0
    videos_limit: int = 30
    edits_limit: int = 10
    concurrent_renders: int = 3
    total_scenes: int = 5
    starting_credits: int = 10_000
    expose_link: bool = False
    idempotency_ttl_seconds: float = 86400.0


@dataclass
class SimCall:
    """One recorded API request; `key` is only the API key's last 6 characters."""

    method: str
    path: str
    status: int
    key: str | None
    idempotency_key: str | None
    body: Any
    at: float


class _HTTPError(Exception):
    """Raised inside handlers to answer with `{"detail": ...}`."""

    def __init__(self, status: int, detail: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.headers = headers or {}


@dataclass
class _Fault:
    path_prefix: str
    method: str | None
    status: int
    times: int
    retry_after: float | None
    body: str | None
    delay: float


@dataclass
class _Caller:
    user_id: str
    credits: int
    parked: deque[str] = field(default_factory=deque)
    active: set[str] = field(default_factory=set)
    windows: dict[str, list[float]] = field(default_factory=dict)
    idempotency: dict[str, tuple[float, int, dict[str, Any]]] = field(default_factory=dict)


@dataclass
class _Snapshot:
    owner: str
    scenes: list[str]
    link: str | None


@dataclass
class _Video:
    uuid: str
    session_id: str
    owner: str
    task: str
    aspect_ratio: str
    item: dict[str, Any]
    created_at: float
    seq: int
    fail_trigger: bool
    rendered: bool
    stage_seconds: float
    started_at: float | None = None
    state: str = "parked"  # parked | active | complete | failed
    terminal_at: float | None = None
    error_message: str | None = None
    frozen_progress: dict[str, Any] | None = None
    frozen_status_index: int = 0
    scenes: list[str] = field(default_factory=list)
    link: str | None = None
    history: list[_Snapshot] = field(default_factory=list)
    edit_ids: list[str] = field(default_factory=list)


@dataclass
class _Edit:
    edit_id: str
    video_uuid: str
    owner: str
    edit_request: str
    reference_image_urls: list[str]
    aspect_ratio: str | None
    created_at: float
    seq: int
    ambiguous: bool
    no_snapshot: bool
    started_at: float | None = None
    state: str = "queued"  # queued | active | complete | error | reverted
    synced: bool = True
    terminal_at: float | None = None
    reverted_at: float | None = None
    error_message: str | None = None
    frozen_progress: dict[str, Any] | None = None
    result: dict[str, Any] | None = None
    charge: int = 0


def scene_kind(number: int) -> str:
    """Odd scenes are Veo clips, even ones Remotion renders (5 scenes → 3 Veo + 2 Remotion)."""
    return "veo" if number % 2 == 1 else "remotion"


def upper_bound_credits(scenes: list[str]) -> int:
    """The documented pre-flight worst case: (4 + 25) × veo_scenes + 9 × remotion_scenes."""
    veo = sum(1 for s in scenes if s == "veo")
    return (VEO_FRAME_CREDITS + VEO_CLIP_CREDITS) * veo + REMOTION_CREDITS * (len(scenes) - veo)


_NUM_LIST = r"(\d+(?:\s*(?:,|and|&)\s*\d+)*)"
_DELETE_RE = re.compile(r"\b(?:delete|remove|drop|cut)\s+(?:the\s+)?scenes?\s+" + _NUM_LIST)
_SCENE_RE = re.compile(r"\bscenes?\s+" + _NUM_LIST)
_ADD_RE = re.compile(r"\b(?:add|adds|added|adding|append|insert)\b|\bnew\s+(?:\w+\s+)?scene\b")


def derive_scene_changes(text: str, n_scenes: int, all_scenes: bool = False) -> dict[str, list[int]]:
    """Deterministically read which scenes an edit touches from its wording (see module docstring)."""
    lowered = text.lower()
    deleted: set[int] = set()
    delete_spans: list[tuple[int, int]] = []
    for m in _DELETE_RE.finditer(lowered):
        delete_spans.append(m.span())
        deleted.update(int(n) for n in re.findall(r"\d+", m.group(1)) if 1 <= int(n) <= n_scenes)
    deleted_list = sorted(deleted)[: max(0, n_scenes - 1)]  # never delete every scene
    changed: set[int] = set()
    for m in _SCENE_RE.finditer(lowered):
        if any(a <= m.start() < b for a, b in delete_spans):
            continue
        if re.search(r"\b(?:after|before)\s+(?:the\s+)?$", lowered[: m.start()]):
            continue
        changed.update(int(n) for n in re.findall(r"\d+", m.group(1)) if 1 <= int(n) <= n_scenes)
    if all_scenes:
        changed = set(range(1, n_scenes + 1))
    changed -= set(deleted_list)
    adds = bool(_ADD_RE.search(lowered))
    if not changed and not deleted_list and not adds:
        changed = {1}
    remaining = [k for k in range(1, n_scenes + 1) if k not in deleted_list]
    renumber = {old: new for new, old in enumerate(remaining, start=1)}
    new_count = len(remaining) + (1 if adds else 0)
    added = [new_count] if adds else []
    regenerated = sorted({renumber[c] for c in changed} | set(added))
    return {
        "changed_scene_numbers": sorted(changed),
        "added_scene_numbers": added,
        "deleted_scene_numbers": deleted_list,
        "regenerated_scenes": regenerated,
        "kept_scenes": [k for k in range(1, new_count + 1) if k not in regenerated],
    }


def _whole_seconds(seconds: float) -> int:
    """Seconds for headers and messages: rounded up, never below 1."""
    return max(1, math.ceil(seconds - EPS))


def _format_seconds(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))


class KnowlifySimulator:
    """The simulated Knowlify service: state, controls and the ASGI `app`."""

    def __init__(self, config: SimConfig | None = None, clock: Callable[[], float] = time.monotonic) -> None:
        self.config = config or SimConfig()
        self._clock = clock
        self._lock = threading.RLock()
        self._calls_cond = threading.Condition()
        self.calls: list[SimCall] = []
        self._clock0 = clock()
        self._wall0 = datetime.now(UTC)
        self._callers: dict[str, _Caller] = {}
        self._videos: dict[str, _Video] = {}
        self._edits: dict[str, _Edit] = {}
        self._active_videos: set[str] = set()
        self._active_edits: set[str] = set()
        self._faults: list[_Fault] = []
        self._response_hook: Callable[[str, str, int, Any], Any] | None = None
        self._seq = 0
        self.app = Starlette(routes=self._routes())

    # ------------------------------------------------------------------ time and state machine

    def _iso(self, t: float) -> str:
        return (self._wall0 + timedelta(seconds=t - self._clock0)).isoformat(timespec="microseconds")

    def _next_seq(self) -> int:
        self._seq += 1
        return self._seq

    def advance(self) -> None:
        """Apply every transition due by `clock()`, earliest first, so outcomes never depend on polling."""
        with self._lock:
            now = self._clock()
            while True:
                best: tuple[float, int, int] | None = None
                target: _Video | _Edit | None = None
                for vid in self._active_videos:
                    v = self._videos[vid]
                    end = self._video_end(v)
                    if end <= now + EPS and (best is None or (end, 0, v.seq) < best):
                        best, target = (end, 0, v.seq), v
                for eid in self._active_edits:
                    e = self._edits[eid]
                    end = self._edit_end(e)
                    if end <= now + EPS and (best is None or (end, 1, e.seq) < best):
                        best, target = (end, 1, e.seq), e
                if best is None or target is None:
                    return
                if isinstance(target, _Video):
                    self._finish_video(target, best[0])
                else:
                    self._finish_edit(target, best[0])

    def _video_end(self, v: _Video) -> float:
        assert v.started_at is not None
        stages = 6.5 if v.fail_trigger else 7.0
        return v.started_at + stages * v.stage_seconds

    def _caller(self, user_id: str) -> _Caller:
        caller = self._callers.get(user_id)
        if caller is None:
            caller = _Caller(user_id=user_id, credits=self.config.starting_credits)
            self._callers[user_id] = caller
        return caller

    def _start_video(self, v: _Video, t: float) -> None:
        caller = self._caller(v.owner)
        v.state, v.started_at = "active", t
        caller.active.add(v.uuid)
        self._active_videos.add(v.uuid)

    def _release_slot(self, v: _Video, t: float) -> None:
        caller = self._caller(v.owner)
        caller.active.discard(v.uuid)
        self._active_videos.discard(v.uuid)
        while caller.parked and len(caller.active) < self.config.concurrent_renders:
            self._start_video(self._videos[caller.parked.popleft()], t)

    def _finish_video(self, v: _Video, t: float) -> None:
        if v.fail_trigger:
            scene = self._active_video_progress(v, t)[0]["current_scene"]
            self._fail(v, t, f"frame generation failed for scene {scene}: upstream provider error")
            return
        v.state, v.terminal_at = "complete", t
        v.scenes = [scene_kind(n) for n in range(1, self.config.total_scenes + 1)]
        v.link = S3_URL.format(v.uuid) if v.rendered else None
        self._release_slot(v, t)

    def _fail(self, v: _Video, t: float, message: str) -> None:
        if v.state == "active":
            v.frozen_progress, v.frozen_status_index = self._active_video_progress(v, t)
            self._release_slot(v, t)
        else:  # parked
            self._caller(v.owner).parked.remove(v.uuid)
            v.frozen_progress = self._parked_progress()
        v.state, v.terminal_at, v.error_message = "failed", t, message

    def _parked_progress(self) -> dict[str, Any]:
        return {
            "stage": "pending",
            "percent": 0,
            "current_scene": 0,
            "total_scenes": self.config.total_scenes,
        }

    def _active_video_progress(self, v: _Video, t: float) -> tuple[dict[str, Any], int]:
        assert v.started_at is not None
        s = v.stage_seconds
        elapsed = max(0.0, t - v.started_at)
        index = min(len(RENDER_STAGES) - 1, math.floor(elapsed / s + EPS))
        total = self.config.total_scenes
        scene, percent = 0, STAGE_PERCENT[index]
        if RENDER_STAGES[index] == "generating_frames":
            frac = (elapsed - index * s) / s
            scene = min(total, 1 + math.floor(frac * total + EPS))
            percent = STAGE_PERCENT[index] + (30 * (scene - 1)) // total
        progress = {
            "stage": RENDER_STAGES[index],
            "percent": percent,
            "current_scene": scene,
            "total_scenes": total,
        }
        return progress, index

    def _edit_end(self, e: _Edit) -> float:
        assert e.started_at is not None
        s = self.config.stage_seconds
        if e.ambiguous:
            return e.started_at + s / 2
        return e.started_at + (2 * s if e.synced else s)

    def _start_edit(self, e: _Edit, t: float) -> None:
        e.state, e.started_at = "active", t
        e.synced = self._videos[e.video_uuid].rendered
        self._active_edits.add(e.edit_id)

    def _finish_edit(self, e: _Edit, t: float) -> None:
        self._active_edits.discard(e.edit_id)
        v = self._videos[e.video_uuid]
        e.terminal_at = t
        if e.ambiguous:
            e.frozen_progress = {"stage": "error", "percent": self._active_edit_progress(e, t)[1]["percent"]}
            e.state, e.error_message = "error", AMBIGUOUS_MESSAGE
        else:
            all_scenes = e.aspect_ratio is not None and e.aspect_ratio != v.aspect_ratio
            changes = derive_scene_changes(e.edit_request, len(v.scenes), all_scenes)
            if not e.no_snapshot:
                v.history.append(_Snapshot(owner=e.edit_id, scenes=list(v.scenes), link=v.link))
            kept = [
                kind for n, kind in enumerate(v.scenes, start=1) if n not in changes["deleted_scene_numbers"]
            ]
            new_scenes = kept + [scene_kind(n) for n in changes["added_scene_numbers"]]
            charge = 0
            for n in changes["regenerated_scenes"]:
                veo = new_scenes[n - 1] == "veo"
                if e.synced:
                    charge += VEO_FRAME_CREDITS + VEO_CLIP_CREDITS if veo else REMOTION_CREDITS
                else:
                    charge += VEO_FRAME_CREDITS if veo else 0
            v.scenes = new_scenes
            if e.synced:
                v.link = S3_URL.format(uuid.uuid4())
            if all_scenes and e.aspect_ratio:
                v.aspect_ratio = e.aspect_ratio
            caller = self._caller(e.owner)
            caller.credits = max(0, caller.credits - charge)
            e.charge = charge
            e.state = "complete"
            e.result = {"link": v.link, **changes, "video_synced": e.synced}
        for other_id in v.edit_ids:
            other = self._edits[other_id]
            if other.state == "queued":
                self._start_edit(other, t)
                break

    def _active_edit_progress(self, e: _Edit, t: float) -> tuple[str, dict[str, Any]]:
        assert e.started_at is not None
        s = self.config.stage_seconds
        elapsed = max(0.0, t - e.started_at)
        total = 2 * s if e.synced else s
        percent = min(99, 5 + math.floor(94 * elapsed / total + EPS))
        if elapsed < s / 2 - EPS:
            status, stage = "processing", "edit"
        elif elapsed < s - EPS:
            status, stage = "processing", "frame_regen"
        else:
            status, stage = "applying", "sync"
        return status, {"stage": stage, "percent": percent}

    # ------------------------------------------------------------------ views

    def _video_view(self, v: _Video, now: float) -> dict[str, Any]:
        s = v.stage_seconds
        if v.state == "parked":
            status, progress, updated = "pending", self._parked_progress(), v.created_at
        elif v.state == "active":
            progress, index = self._active_video_progress(v, now)
            assert v.started_at is not None
            status = RENDER_STAGES[index]
            updated = v.created_at if index == 0 else v.started_at + index * s
        elif v.state == "complete":
            total = len(v.scenes)
            status, updated = "complete", v.terminal_at or now
            progress = {"stage": "complete", "percent": 100, "current_scene": total, "total_scenes": total}
        else:
            status, updated = "failed", v.terminal_at or now
            progress = dict(v.frozen_progress or self._parked_progress())
        body: dict[str, Any] = {
            "uuid": v.uuid,
            "status": status,
            "is_complete": status == "complete",
            "is_failed": status == "failed",
            "progress": progress,
            "error_message": v.error_message,
            "task": v.task,
            "created_at": self._iso(v.created_at),
            "updated_at": self._iso(updated),
        }
        if self.config.expose_link and status == "complete":
            body["link"] = v.link
        return body

    def _edit_view(self, e: _Edit, now: float) -> dict[str, Any]:
        s = self.config.stage_seconds
        if e.state == "queued":
            status, progress, updated = "queued", {"stage": "queued", "percent": 0}, e.created_at
        elif e.state == "active":
            assert e.started_at is not None
            status, progress = self._active_edit_progress(e, now)
            updated = e.started_at if status == "processing" else e.started_at + s
        elif e.state == "error":
            status, progress, updated = "error", dict(e.frozen_progress or {}), e.terminal_at or now
        elif e.state == "complete":
            status, progress, updated = "complete", {"stage": "done", "percent": 100}, e.terminal_at or now
        else:
            status, progress, updated = "reverted", {"stage": "done", "percent": 100}, e.reverted_at or now
        return {
            "edit_id": e.edit_id,
            "video_uuid": e.video_uuid,
            "status": status,
            "is_complete": status in ("complete", "reverted"),
            "is_failed": status == "error",
            "progress": progress,
            "result": copy.deepcopy(e.result) if e.result is not None else None,
            "error_message": e.error_message,
            "created_at": self._iso(e.created_at),
            "updated_at": self._iso(updated),
        }

    # ------------------------------------------------------------------ public controls

    def wait_for_calls(
        self, predicate: Callable[[SimCall], bool], count: int = 1, timeout: float = 10.0
    ) -> list[SimCall]:
        """Block until `count` recorded calls satisfy `predicate`; for tests driving the sim from outside."""
        deadline = time.monotonic() + timeout
        with self._calls_cond:
            while True:
                matching = [c for c in self.calls if predicate(c)]
                if len(matching) >= count:
                    return matching[:count]
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    name = getattr(predicate, "__name__", repr(predicate))
                    seen = ", ".join(f"{c.method} {c.path} -> {c.status}" for c in self.calls[-20:])
                    raise TimeoutError(
                        f"waited {timeout}s for {count} call(s) matching {name}; "
                        f"{len(matching)} matched out of {len(self.calls)} recorded: [{seen}]"
                    )
                self._calls_cond.wait(remaining)

    def count(self, method: str, path_prefix: str) -> int:
        """How many recorded calls used `method` on a path starting with `path_prefix`."""
        with self._calls_cond:
            return sum(1 for c in self.calls if c.method == method.upper() and c.path.startswith(path_prefix))

    def inject_fault(
        self,
        *,
        path_prefix: str,
        method: str | None = None,
        status: int = 500,
        times: int = 1,
        retry_after: float | None = None,
        body: str | None = None,
        delay: float = 0.0,
    ) -> None:
        """Answer the next `times` matching requests with `status` (0 = normal answer, held `delay` s)."""
        if times < 1 or delay < 0 or not (status == 0 or 100 <= status <= 599):
            raise ValueError("inject_fault needs times >= 1, delay >= 0 and status 0 or 100-599")
        if status == 0 and delay <= 0:
            raise ValueError("status 0 only makes sense with delay > 0")
        with self._lock:
            self._faults.append(
                _Fault(
                    path_prefix, method.upper() if method else None, status, times, retry_after, body, delay
                )
            )

    def set_response_hook(self, hook: Callable[[str, str, int, Any], Any] | None) -> None:
        """Rewrite each v1 answer before it is sent: `hook(method, path, status, body) -> body`."""
        with self._lock:
            self._response_hook = hook

    def fail_video(self, uuid: str, message: str = "render failed: upstream provider error") -> None:
        """Fail a parked or rendering job now, at its current stage."""
        with self._lock:
            self.advance()
            v = self._videos.get(uuid)
            if v is None:
                raise KeyError(f"video not found: {uuid}")
            if v.state in ("complete", "failed"):
                raise ValueError(f"video {uuid} is already {v.state}")
            self._fail(v, self._clock(), message)

    def frontend_edit(self, video_uuid: str) -> None:
        """Simulate a dashboard edit: push a 'frontend' snapshot on top of planner_history."""
        with self._lock:
            self.advance()
            v = self._videos.get(video_uuid)
            if v is None:
                raise KeyError(f"video not found: {video_uuid}")
            v.history.append(_Snapshot(owner="frontend", scenes=list(v.scenes), link=v.link))

    def set_credits(self, api_key: str, credits: int) -> None:
        """Set the balance of the caller behind `api_key` (for 402 tests)."""
        with self._lock:
            self._caller(self._user_id(api_key)).credits = credits

    def credits(self, api_key: str) -> int:
        """Current balance of the caller behind `api_key`."""
        with self._lock:
            self.advance()
            return self._caller(self._user_id(api_key)).credits

    def video(self, uuid: str) -> dict[str, Any]:
        """Poll view plus internals (owner, state, scenes, link, planner_history, queue_position)."""
        with self._lock:
            self.advance()
            v = self._videos.get(uuid)
            if v is None:
                raise KeyError(f"video not found: {uuid}")
            caller = self._caller(v.owner)
            view = self._video_view(v, self._clock())
            view.update(
                owner=v.owner,
                state=v.state,
                link=v.link,
                scenes=list(v.scenes),
                aspect_ratio=v.aspect_ratio,
                planner_history=[snap.owner for snap in v.history],
                edit_ids=list(v.edit_ids),
                queue_position=(list(caller.parked).index(v.uuid) + 1) if v.state == "parked" else None,
                item=dict(v.item),
            )
            return view

    def edit(self, edit_id: str) -> dict[str, Any]:
        """Poll view plus internals (owner, charge, edit_request)."""
        with self._lock:
            self.advance()
            e = self._edits.get(edit_id)
            if e is None:
                raise KeyError(f"edit not found: {edit_id}")
            view = self._edit_view(e, self._clock())
            view.update(owner=e.owner, charge=e.charge, edit_request=e.edit_request)
            return view

    # ------------------------------------------------------------------ request plumbing

    @staticmethod
    def _user_id(api_key: str) -> str:
        return str(uuid.uuid5(USER_NAMESPACE, api_key))

    def _record(self, request: Request, status: int, raw: bytes, key: str | None) -> None:
        body: Any = None
        if raw:
            try:
                body = json.loads(raw)
            except ValueError:
                body = raw.decode("utf-8", errors="replace")
        call = SimCall(
            method=request.method,
            path=request.url.path,
            status=status,
            key=key[-6:] if key else None,
            idempotency_key=request.headers.get("idempotency-key"),
            body=body,
            at=self._clock(),
        )
        with self._calls_cond:
            self.calls.append(call)
            self._calls_cond.notify_all()

    def _take_fault(self, method: str, path: str) -> _Fault | None:
        with self._lock:
            for fault in self._faults:
                if path.startswith(fault.path_prefix) and fault.method in (None, method):
                    fault.times -= 1
                    if fault.times <= 0:
                        self._faults.remove(fault)
                    return fault
        return None

    def _limit_for(self, bucket: str) -> int:
        return self.config.videos_limit if bucket == "videos" else self.config.edits_limit

    def _window_label(self) -> int:
        return max(1, math.floor(self.config.window_seconds + 0.5))

    def _rate_limit(self, caller: _Caller, bucket: str, now: float) -> dict[str, str]:
        """Count one request in the caller's fixed window; raise 429 (without counting) when full."""
        limit, window = self._limit_for(bucket), self.config.window_seconds
        state = caller.windows.get(bucket)
        if state is None or now >= state[0] + window - EPS:
            state = [now, 0.0]
            caller.windows[bucket] = state
        reset = _whole_seconds(state[0] + window - now)
        if state[1] >= limit:
            headers = {
                "Retry-After": str(reset),
                "X-RateLimit-Limit": str(limit),
                "X-RateLimit-Remaining": "0",
                "X-RateLimit-Reset": str(reset),
            }
            detail = f"Rate limit exceeded: {limit} requests per {self._window_label()}s. Retry in {reset}s."
            raise _HTTPError(429, detail, headers)
        state[1] += 1
        return {
            "X-RateLimit-Limit": str(limit),
            "X-RateLimit-Remaining": str(limit - int(state[1])),
            "X-RateLimit-Reset": str(reset),
        }

    def _fault_response(self, fault: _Fault, bucket: str | None) -> Response:
        headers: dict[str, str] = {}
        if fault.retry_after is not None:
            headers["Retry-After"] = _format_seconds(fault.retry_after)
        if fault.status == 429:
            limit = self._limit_for(bucket or "videos")
            reset = headers.get("Retry-After", str(self._window_label()))
            headers.update(
                {"X-RateLimit-Limit": str(limit), "X-RateLimit-Remaining": "0", "X-RateLimit-Reset": reset}
            )
        if fault.body is not None:
            return Response(
                fault.body, status_code=fault.status, headers=headers, media_type="application/json"
            )
        if fault.status == 429:
            reset = headers["X-RateLimit-Reset"]
            detail = (
                f"Rate limit exceeded: {self._limit_for(bucket or 'videos')} requests per "
                f"{self._window_label()}s. Retry in {reset}s."
            )
        else:
            detail = f"injected fault: HTTP {fault.status}"
        return JSONResponse({"detail": detail}, status_code=fault.status, headers=headers)

    async def _api(
        self,
        request: Request,
        bucket: str,
        handler: Callable[[_Caller, Request, bytes, float], tuple[int, Any]],
    ) -> Response:
        """Shared pipeline of every v1 endpoint: fault → auth → rate limit → handler → record."""
        raw = await request.body()
        key = request.headers.get("x-api-key")
        fault = self._take_fault(request.method, request.url.path)
        if fault is not None and fault.status != 0:
            self._record(request, fault.status, raw, key)
            if fault.delay > 0:
                await anyio.sleep(fault.delay)
            return self._fault_response(fault, bucket)
        headers: dict[str, str] = {}
        with self._lock:
            self.advance()
            now = self._clock()
            try:
                if not key:
                    raise _HTTPError(401, "missing API key (X-API-Key header)")
                if not KEY_RE.match(key):
                    raise _HTTPError(401, "invalid API key")
                caller = self._caller(self._user_id(key))
                headers = self._rate_limit(caller, bucket, now)
                status, body = handler(caller, request, raw, now)
            except _HTTPError as err:
                status, body = err.status, {"detail": err.detail}
                headers = {**headers, **err.headers}
            self._record(request, status, raw, key)
            if self._response_hook is not None:
                body = self._response_hook(request.method, request.url.path, status, copy.deepcopy(body))
        if fault is not None and fault.delay > 0:
            await anyio.sleep(fault.delay)
        return JSONResponse(body, status_code=status, headers=headers)

    # ------------------------------------------------------------------ v1 handlers

    @staticmethod
    def _parse_json(raw: bytes) -> Any:
        try:
            return json.loads(raw)
        except ValueError:
            raise _HTTPError(422, "request body is not valid JSON") from None

    def _owned_video(self, caller: _Caller, video_uuid: str) -> _Video:
        v = self._videos.get(video_uuid)
        if v is None:
            raise _HTTPError(404, "video not found")
        if v.owner != caller.user_id:
            raise _HTTPError(403, "API key does not own this video")
        return v

    def _owned_edit(self, caller: _Caller, edit_id: str) -> _Edit:
        e = self._edits.get(edit_id)
        if e is None:
            raise _HTTPError(404, "edit not found")
        if e.owner != caller.user_id:
            raise _HTTPError(403, "API key does not own this edit")
        return e

    def _validate_item(self, i: int, item: Any) -> dict[str, Any]:
        where = f"videos[{i}]"
        if not isinstance(item, dict):
            raise _HTTPError(400, f"{where}: must be an object")
        task = item.get("task")
        if not isinstance(task, str) or not 1 <= len(task) <= 5000:
            raise _HTTPError(400, f"{where}.task: required string of 1-5000 characters")
        duration = item.get("video_duration_seconds", 60)
        if isinstance(duration, bool) or not isinstance(duration, int) or not 30 <= duration <= 300:
            raise _HTTPError(400, f"{where}.video_duration_seconds: must be an integer between 30 and 300")
        aspect = item.get("aspect_ratio", "16:9")
        if aspect not in ASPECT_RATIOS:
            raise _HTTPError(400, f"{where}.aspect_ratio: must be one of {', '.join(ASPECT_RATIOS)}")
        video_type = item.get("video_type", "explainer")
        if video_type not in VIDEO_TYPES:
            raise _HTTPError(400, f"{where}.video_type: must be one of {', '.join(VIDEO_TYPES)}")
        style = item.get("global_style_prompt")
        if style is not None and (not isinstance(style, str) or len(style) > 5000):
            raise _HTTPError(400, f"{where}.global_style_prompt: must be a string of at most 5000 characters")
        palette = item.get("color_palette")
        if palette is not None:
            if not isinstance(palette, dict):
                raise _HTTPError(400, f"{where}.color_palette: must be an object")
            for name, value in palette.items():
                if name not in PALETTE_KEYS:
                    raise _HTTPError(
                        400, f"{where}.color_palette.{name}: unknown key (allowed: {', '.join(PALETTE_KEYS)})"
                    )
                if not isinstance(value, str) or not HEX_COLOR_RE.match(value):
                    raise _HTTPError(
                        400, f"{where}.color_palette.{name}: must be a hex colour like #fff or #ffffff"
                    )
        voice = item.get("voice_id")
        if voice is not None and not isinstance(voice, str):
            raise _HTTPError(400, f"{where}.voice_id: must be a string")
        return {
            "task": task,
            "video_duration_seconds": duration,
            "aspect_ratio": aspect,
            "video_type": video_type,
            "global_style_prompt": style,
            "color_palette": palette,
            "voice_id": voice,
        }

    def _create_videos(self, caller: _Caller, request: Request, raw: bytes, now: float) -> tuple[int, Any]:
        payload = self._parse_json(raw)
        if not isinstance(payload, dict):
            raise _HTTPError(400, "body: must be a JSON object")
        videos = payload.get("videos")
        if not isinstance(videos, list):
            raise _HTTPError(400, "videos: field required (a list of 1-50 items)")
        if not 1 <= len(videos) <= 50:
            raise _HTTPError(400, f"videos: must contain 1-50 items (got {len(videos)})")
        email = payload.get("email")
        if email is not None and (
            not isinstance(email, str) or len(email) > 320 or not EMAIL_RE.match(email)
        ):
            raise _HTTPError(400, "email: must be a valid e-mail address of at most 320 characters")
        if payload.get("org_id") is not None:
            raise _HTTPError(
                400, "org_id: does not match the API key's organization (personal key; omit org_id)"
            )
        items = [self._validate_item(i, item) for i, item in enumerate(videos)]
        results: list[dict[str, Any]] = []
        counts = {"queued": 0, "parked": 0, "error": 0}
        for i, item in enumerate(items):
            video_uuid, session_id = str(uuid.uuid4()), str(uuid.uuid4())
            row: dict[str, Any] = {
                "index": i,
                "uuid": video_uuid,
                "session_id": session_id,
                "chat_url": CHAT_URL.format(session_id),
            }
            message = None
            if item["voice_id"] == "rejected":
                message = "voice_id was rejected by the upstream provider"
            elif "[item-error]" in item["task"]:
                message = "item could not be queued: upstream queue rejected the job"
            if message is not None:
                row.update(status="error", code="ITEM_FAILED", message=message)
                counts["error"] += 1
                results.append(row)
                continue
            v = _Video(
                uuid=video_uuid,
                session_id=session_id,
                owner=caller.user_id,
                task=item["task"],
                aspect_ratio=item["aspect_ratio"],
                item=item,
                created_at=now,
                seq=self._next_seq(),
                fail_trigger="[fail]" in item["task"],
                rendered="[no-render]" not in item["task"],
                stage_seconds=(
                    self.config.video_stage_seconds(item["task"])
                    if self.config.video_stage_seconds
                    else self.config.stage_seconds
                ),
            )
            self._videos[video_uuid] = v
            if len(caller.active) < self.config.concurrent_renders:
                self._start_video(v, now)
                row["status"] = "queued"
                counts["queued"] += 1
            else:
                caller.parked.append(video_uuid)
                row.update(status="parked", queue_position=len(caller.parked))
                counts["parked"] += 1
            results.append(row)
        return 200, {
            "status": "ok",
            "total": len(items),
            "enqueued": counts["queued"],
            "parked": counts["parked"],
            "errors": counts["error"],
            "user_id": caller.user_id,
            "org_id": None,
            "results": results,
        }

    def _poll_video(self, caller: _Caller, request: Request, raw: bytes, now: float) -> tuple[int, Any]:
        v = self._owned_video(caller, request.path_params["uuid"])
        return 200, self._video_view(v, now)

    @staticmethod
    def _check_reference_url(i: int, url: str) -> None:
        where = f"reference_image_urls[{i}]"
        parts = urlsplit(url)
        if parts.scheme != "https":
            raise _HTTPError(422, f"{where}: only https:// URLs are allowed")
        host = (parts.hostname or "").lower()
        if not host:
            raise _HTTPError(422, f"{where}: URL has no host")
        if host == "localhost" or host.endswith(".localhost"):
            raise _HTTPError(422, f"{where}: host resolves to a non-public address")
        try:
            ip = ipaddress.ip_address(host)
        except ValueError:
            ip = None
        if ip is not None and (
            ip.is_private
            or ip.is_loopback
            or ip.is_link_local
            or ip.is_reserved
            or ip.is_multicast
            or ip.is_unspecified
            or not ip.is_global
        ):
            raise _HTTPError(422, f"{where}: host resolves to a non-public address")
        path = parts.path.lower()
        if "huge" in path:
            raise _HTTPError(415, f"{where}: image exceeds 5 MB")
        if "no-length" in path:
            raise _HTTPError(415, f"{where}: HEAD response has no Content-Length")
        if not path.endswith(IMAGE_EXTENSIONS):
            raise _HTTPError(415, f"{where}: Content-Type must be image/*")

    def _create_edit(self, caller: _Caller, request: Request, raw: bytes, now: float) -> tuple[int, Any]:
        idem_key = request.headers.get("idempotency-key")
        if idem_key is not None:
            stored = caller.idempotency.get(idem_key)
            if stored is not None and now - stored[0] < self.config.idempotency_ttl_seconds:
                return stored[1], copy.deepcopy(stored[2])
            if len(idem_key) > MAX_IDEMPOTENCY_KEY:
                raise _HTTPError(422, f"Idempotency-Key: must be at most {MAX_IDEMPOTENCY_KEY} characters")
        payload = self._parse_json(raw)
        if not isinstance(payload, dict):
            raise _HTTPError(422, "body: must be a JSON object")
        video_uuid = payload.get("video_uuid")
        if not isinstance(video_uuid, str) or not video_uuid:
            raise _HTTPError(422, "video_uuid: field required (string)")
        edit_request = payload.get("edit_request")
        if not isinstance(edit_request, str) or not 1 <= len(edit_request) <= 5000:
            raise _HTTPError(422, "edit_request: field required (string of 1-5000 characters)")
        urls = payload.get("reference_image_urls") or []
        if not isinstance(urls, list) or not all(isinstance(u, str) for u in urls):
            raise _HTTPError(422, "reference_image_urls: must be a list of strings")
        if len(urls) > 5:
            raise _HTTPError(422, f"reference_image_urls: at most 5 URLs (got {len(urls)})")
        aspect = payload.get("aspect_ratio")
        if aspect is not None and aspect not in ASPECT_RATIOS:
            raise _HTTPError(422, f"aspect_ratio: must be one of {', '.join(ASPECT_RATIOS)}")
        skip = payload.get("skip_content_safety", False)
        if not isinstance(skip, bool):
            raise _HTTPError(422, "skip_content_safety: must be a boolean")
        for i, url in enumerate(urls):
            self._check_reference_url(i, url)
        v = self._owned_video(caller, video_uuid)
        if v.state == "failed":
            raise _HTTPError(409, "video has errored (status=failed); it cannot be edited")
        if v.state != "complete":
            status = self._video_view(v, now)["status"]
            raise _HTTPError(
                409, f"video is still being built (status={status}); wait for the initial render to finish"
            )
        if "[unsafe]" in edit_request:
            raise _HTTPError(400, "edit_request was rejected by the content-safety scan")
        bound = upper_bound_credits(v.scenes)
        if caller.credits < bound:
            raise _HTTPError(
                402, f"INSUFFICIENT_CREDITS: edit could cost up to {bound}, have {caller.credits}"
            )
        ahead = sum(1 for eid in v.edit_ids if self._edits[eid].state in ("queued", "active"))
        e = _Edit(
            edit_id=str(uuid.uuid4()),
            video_uuid=v.uuid,
            owner=caller.user_id,
            edit_request=edit_request,
            reference_image_urls=list(urls),
            aspect_ratio=aspect,
            created_at=now,
            seq=self._next_seq(),
            ambiguous="[ambiguous]" in edit_request,
            no_snapshot="[no-snapshot]" in edit_request,
        )
        self._edits[e.edit_id] = e
        v.edit_ids.append(e.edit_id)
        if ahead == 0:
            self._start_edit(e, now)
        body = {
            "edit_id": e.edit_id,
            "video_uuid": v.uuid,
            "status": "processing" if ahead == 0 else "queued",
            "queue_position": ahead,
        }
        if idem_key is not None:
            caller.idempotency[idem_key] = (now, 202, copy.deepcopy(body))
        return 202, body

    def _poll_edit(self, caller: _Caller, request: Request, raw: bytes, now: float) -> tuple[int, Any]:
        e = self._owned_edit(caller, request.path_params["edit_id"])
        return 200, self._edit_view(e, now)

    def _revert_edit(self, caller: _Caller, request: Request, raw: bytes, now: float) -> tuple[int, Any]:
        e = self._owned_edit(caller, request.path_params["edit_id"])
        if e.state != "complete":
            status = self._edit_view(e, now)["status"]
            raise _HTTPError(409, f"edit is not in a revertable state (status={status})")
        v = self._videos[e.video_uuid]
        siblings = [self._edits[eid] for eid in v.edit_ids if eid != e.edit_id]
        if any(o.state in ("queued", "active") for o in siblings):
            raise _HTTPError(409, "cannot revert while another edit is processing or queued")
        if any(o.seq > e.seq and o.state not in ("error", "reverted") for o in siblings):
            raise _HTTPError(
                409, "a newer external edit exists on this video; revert the most recent edit first"
            )
        if v.history and v.history[-1].owner != e.edit_id:
            raise _HTTPError(
                409, "snapshot at the top of planner_history was not saved by this edit; cannot safely revert"
            )
        if not v.history:
            raise _HTTPError(409, "no snapshot available to revert")
        snapshot = v.history.pop()
        v.scenes, v.link = list(snapshot.scenes), snapshot.link
        e.state, e.reverted_at = "reverted", now
        assert e.result is not None
        e.result["revert_diff"] = {
            "changed_scene_numbers": list(e.result["changed_scene_numbers"]),
            "added_scene_numbers": list(e.result["deleted_scene_numbers"]),
            "deleted_scene_numbers": list(e.result["added_scene_numbers"]),
        }
        return 200, self._edit_view(e, now)

    # ------------------------------------------------------------------ routes

    def _routes(self) -> list[Route]:
        def endpoint(method: str, bucket: str, handler: Callable[..., tuple[int, Any]]) -> Callable[..., Any]:
            async def route(request: Request) -> Response:
                if request.method != method:
                    return await self._unrouted(request, 405)
                return await self._api(request, bucket, handler)

            return route

        return [
            Route("/v1/videos", endpoint("POST", "videos", self._create_videos), methods=ALL_METHODS),
            Route("/v1/videos/{uuid}", endpoint("GET", "videos", self._poll_video), methods=ALL_METHODS),
            Route("/v1/edits", endpoint("POST", "edits", self._create_edit), methods=ALL_METHODS),
            Route("/v1/edits/{edit_id}", endpoint("GET", "edits", self._poll_edit), methods=ALL_METHODS),
            Route(
                "/v1/edits/{edit_id}/revert",
                endpoint("POST", "edits", self._revert_edit),
                methods=ALL_METHODS,
            ),
            Route("/_sim/faults", self._ctl_faults, methods=["POST"]),
            Route("/_sim/videos/{uuid}/fail", self._ctl_fail, methods=["POST"]),
            Route("/_sim/videos/{uuid}/frontend-edit", self._ctl_frontend_edit, methods=["POST"]),
            Route("/_sim/videos/{uuid}", self._ctl_video, methods=["GET"]),
            Route("/_sim/edits/{edit_id}", self._ctl_edit, methods=["GET"]),
            Route("/_sim/credits", self._ctl_credits, methods=["POST"]),
            Route("/_sim/calls", self._ctl_calls, methods=["GET"]),
            Route("/{path:path}", self._unrouted_any, methods=ALL_METHODS),
        ]

    async def _unrouted_any(self, request: Request) -> Response:
        return await self._unrouted(request, 404)

    async def _unrouted(self, request: Request, status: int) -> Response:
        raw = await request.body()
        detail = "Not Found" if status == 404 else "Method Not Allowed"
        if not request.url.path.startswith("/_sim/"):
            self._record(request, status, raw, request.headers.get("x-api-key"))
        return JSONResponse({"detail": detail}, status_code=status)

    # ------------------------------------------------------------------ /_sim/ controls

    @staticmethod
    async def _ctl_json(request: Request) -> dict[str, Any]:
        raw = await request.body()
        if not raw:
            return {}
        try:
            data = json.loads(raw)
        except ValueError:
            raise _HTTPError(400, "control body is not valid JSON") from None
        if not isinstance(data, dict):
            raise _HTTPError(400, "control body must be a JSON object")
        return data

    async def _control(self, request: Request, action: Callable[[dict[str, Any]], Any]) -> Response:
        try:
            result = action(await self._ctl_json(request))
        except _HTTPError as err:
            return JSONResponse({"detail": err.detail}, status_code=err.status)
        except KeyError as err:
            return JSONResponse({"detail": str(err.args[0])}, status_code=404)
        except (TypeError, ValueError) as err:
            return JSONResponse({"detail": str(err)}, status_code=400)
        return JSONResponse(result)

    async def _ctl_faults(self, request: Request) -> Response:
        def act(data: dict[str, Any]) -> Any:
            allowed = {"path_prefix", "method", "status", "times", "retry_after", "body", "delay"}
            unknown = set(data) - allowed
            if unknown or "path_prefix" not in data:
                raise ValueError(f"fault needs path_prefix; allowed fields {sorted(allowed)}")
            self.inject_fault(**data)
            return {"ok": True}

        return await self._control(request, act)

    async def _ctl_fail(self, request: Request) -> Response:
        def act(data: dict[str, Any]) -> Any:
            uuid_ = request.path_params["uuid"]
            if "message" in data:
                self.fail_video(uuid_, str(data["message"]))
            else:
                self.fail_video(uuid_)
            return self.video(uuid_)

        return await self._control(request, act)

    async def _ctl_frontend_edit(self, request: Request) -> Response:
        def act(data: dict[str, Any]) -> Any:
            self.frontend_edit(request.path_params["uuid"])
            return {"planner_history": self.video(request.path_params["uuid"])["planner_history"]}

        return await self._control(request, act)

    async def _ctl_video(self, request: Request) -> Response:
        return await self._control(request, lambda data: self.video(request.path_params["uuid"]))

    async def _ctl_edit(self, request: Request) -> Response:
        return await self._control(request, lambda data: self.edit(request.path_params["edit_id"]))

    async def _ctl_credits(self, request: Request) -> Response:
        def act(data: dict[str, Any]) -> Any:
            api_key, credits = data.get("api_key"), data.get("credits")
            if not isinstance(api_key, str) or not KEY_RE.match(api_key):
                raise ValueError("api_key must be kn_ followed by 64 hex characters")
            if isinstance(credits, bool) or not isinstance(credits, int):
                raise ValueError("credits must be an integer")
            self.set_credits(api_key, credits)
            return {"ok": True, "credits": credits}

        return await self._control(request, act)

    async def _ctl_calls(self, request: Request) -> Response:
        with self._calls_cond:
            return JSONResponse([asdict(c) for c in self.calls])


def make_server(sim: KnowlifySimulator, host: str, port: int) -> uvicorn.Server:
    """A uvicorn server for `sim` (quiet, no lifespan) that callers can start and stop themselves."""
    config = uvicorn.Config(
        sim.app, host=host, port=port, log_level="warning", lifespan="off", timeout_graceful_shutdown=2
    )
    return uvicorn.Server(config)


def run_simulator(host: str, port: int, config: SimConfig, *, sock: socket.socket | None = None) -> None:
    """Serve a fresh simulator until interrupted (`knowlify-slack simulator`); `sock`: a bound socket."""
    server = make_server(KnowlifySimulator(config), host, port)
    server.run(sockets=[sock] if sock is not None else None)

"""What every step of the worker shares: the clients, who holds the leases, the clock, and apply."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from bot.core import lifecycle, polling
from bot.core.versions import EditView, current_version
from bot.ui.card import CardView, card
from storage.models import EditJob, VideoJob

if TYPE_CHECKING:
    from bot.knowlify.client import KnowlifyClient
    from bot.slack_ops import SlackOps
    from storage.repo import Store


@dataclass
class StepContext:
    store: Store
    knowlify: KnowlifyClient
    slack: SlackOps
    owner: str
    poll_seconds: float
    key_id: str  # the current Knowlify key's fingerprint
    poll_policy: polling.PollPolicy
    clock: Callable[[], float] = field(default=time.time)


def options_of(job: VideoJob) -> dict[str, Any]:
    return dict(json.loads(job.options_json or "{}"))


def card_view(store: Store, job: VideoJob, edits: list[EditJob] | None = None) -> CardView:
    """The card as it should look now: the job's state and its current version."""
    if edits is None:
        edits = store.edits_of(job.id) if job.id is not None else []
    version = current_version(
        job.link or job.chat_url, [EditView(e.reply_ts, e.state, e.result_json) for e in edits]
    )
    progress = lifecycle.Progress(
        job.status, job.percent, job.current_scene, job.total_scenes, job.queue_position
    )
    return card(
        prompt=job.prompt,
        user_id=job.user_id,
        options=options_of(job).get("summary", ""),
        state=job.state,
        progress=progress,
        error=job.error_message,
        link=version.link,
        edits_applied=version.edits_applied,
        note=job.joined_note,
    )

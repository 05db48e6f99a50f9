"""Writes to rows the caller does not lease, each named so that it says why it is safe, and the
read-only queries of the poll policy."""

from __future__ import annotations

from typing import Any

from sqlalchemy import case, func, update
from sqlmodel import col, select

from storage.models import (
    EditJob,
    VideoJob,
)
from storage.store_base import (
    L,
    StoreBase,
)


class WorkerWrites(StoreBase):
    # --- writes to rows the caller does not lease (named, so each one says why it is safe) ----

    def note_card_shown(self, video_id: int, fingerprint: str, at: float) -> None:
        """An edit's step updated its video's card: remember what the card shows (idempotent)."""
        self.update_where(
            VideoJob,
            {"card_shown": fingerprint, "card_updated_at": at, "card_stale": False},
            col(VideoJob.id) == video_id,
        )

    def card_rate_limited(self, video_id: int, until: float) -> None:
        """Slack answered 429 to a card update: no update before `until`, and the row comes back
        then for its card even if it has nothing else to do (an earlier wake-up stands)."""
        current = col(VideoJob.next_run_at)
        self.update_where(
            VideoJob,
            {
                "card_stale": True,
                "card_updated_at": until,
                "next_run_at": case((current < until, current), else_=until),
            },
            col(VideoJob.id) == video_id,
        )

    def release_kept_edits(self, video_id: int, now: float) -> int:
        """The render completed: replies kept meanwhile become pending and run now."""
        return self.update_where(
            EditJob,
            {"state": "pending", "next_run_at": now},
            col(EditJob.video_id) == video_id,
            col(EditJob.state).in_(("held", "waiting")),
        )

    def wake_kept_edits(self, video_id: int, now: float) -> int:
        """The video will never complete: wake its kept replies so each one's step ends it."""
        return self.update_where(
            EditJob,
            {"next_run_at": now},
            col(EditJob.video_id) == video_id,
            col(EditJob.state).in_(("held", "waiting")),
        )

    def renders_in_flight(self, key_id: str) -> list[tuple[int, str | None, float]]:
        """(id, Knowlify status, next run) of this key's renders: the poll policy's view of the key."""
        with self.session() as s:
            rows = s.exec(
                select(VideoJob.id, VideoJob.status, VideoJob.next_run_at).where(
                    VideoJob.key_id == key_id, VideoJob.state == "rendering"
                )
            )
            return [(int(i or 0), status, float(at)) for i, status, at in rows]

    def wake_first_parked(self, key_id: str, now: float) -> int:
        """A render of this key ended, so Knowlify promotes the first parked one: look at it now."""
        with self.session() as s:
            first = s.exec(
                select(func.min(VideoJob.id)).where(
                    VideoJob.key_id == key_id, VideoJob.state == "rendering", VideoJob.status == "parked"
                )
            ).one()
            if first is None:
                return 0
            result = s.exec(  # type: ignore[call-overload]
                update(VideoJob)
                .where(col(VideoJob.id) == first, col(VideoJob.next_run_at) > now)
                .values(next_run_at=now)
            )
            s.commit()
            return int(result.rowcount or 0)

    def edit_polls(self, key_id: str, *, other_than: int) -> list[float]:
        """Next runs of this key's other edits that Knowlify is working on (each one polls)."""
        with self.session() as s:
            rows = s.exec(
                select(EditJob.next_run_at).where(
                    EditJob.key_id == key_id, EditJob.state == "submitted", col(EditJob.id) != other_than
                )
            )
            return [float(at) for at in rows]

    def update_where(self, model: type[L], values: dict[str, Any], *conditions: Any) -> int:
        """A plain conditional UPDATE, for rows nobody leases at that moment (held edits, the card)."""
        values = {"updated_at": self.clock(), **values}
        with self.session() as s:
            result = s.exec(update(model).where(*conditions).values(**values))  # type: ignore[call-overload]
            s.commit()
            return int(result.rowcount or 0)

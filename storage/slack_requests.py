"""Rows written and read for what arrives from Slack: commands, replies, reactions, deletions,
and the reads that answer them (threads, lists, per-person counts)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import or_, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, delete, select

from storage.admission import Admission, DailyLimit, NewJob, admit, video_row
from storage.models import (
    EditJob,
    SlackDelivery,
    ThreadMessage,
    VideoJob,
)
from storage.store_base import (
    EDIT_CANCELLABLE,
    EDIT_CANCELLED,
    THREAD_STATE_PREFIXES,
    UNCOUNTED_EDIT_STATES,
    L,
    StoreBase,
)


class SlackRequests(StoreBase):
    # --- requests arriving from Slack -------------------------------------------------------

    def take_video(self, values: dict[str, Any], limit: DailyLimit | None = None) -> Admission:
        """Store a new job from its columns (request_key, team_id, channel_id, user_id, key_id,
        prompt, options_json, response_url) unless the person's `limit` refuses it; committed
        when this returns. Through the group commit when the store has one (storage.admission)."""
        now = self.clock()
        job = NewJob(video_row(values, now), limit)
        if self._group is not None:
            return self._group.take(job)
        with self.engine.begin() as conn:
            return admit(conn, [job], now)[0]

    def add_video(self, job: VideoJob) -> VideoJob | None:
        """Insert a job built by hand (tests, tools); None if its request_key exists already.
        Requests from Slack go through take_video, which also applies the daily limit."""
        now = self.clock()
        job.created_at = job.updated_at = now
        job.next_run_at = now
        with self.session() as s:
            s.add(job)
            try:
                s.commit()
            except IntegrityError:
                s.rollback()
                return None
            return job  # the id came back with the INSERT: no second round trip

    def add_edit(self, edit: EditJob, delivery_key: str | None) -> EditJob | None:
        """Insert an edit, its thread message and the delivery key in one transaction.

        None when any of them exists already: Slack retried, or the same reply came twice.
        """
        now = self.clock()
        edit.created_at = edit.updated_at = now
        edit.next_run_at = now
        with self.session() as s:
            if delivery_key:
                s.add(SlackDelivery(key=delivery_key, received_at=now))
            s.add(edit)
            try:
                s.flush()
                s.add(
                    ThreadMessage(
                        team_id=edit.team_id,
                        channel_id=edit.channel_id,
                        ts=edit.reply_ts,
                        video_id=edit.video_id,
                        edit_id=edit.id,
                        kind="edit_request",
                    )
                )
                s.commit()
            except IntegrityError:
                s.rollback()
                return None
            s.refresh(edit)
            return edit

    def request_revert(self, edit_id: int, user: str, delivery_key: str | None) -> bool:
        """Record the delivery and ask for the revert together; False if either was done already
        (Slack retried, or a revert of this edit is already on its way)."""
        now = self.clock()
        with self.session() as s:
            if delivery_key:
                s.add(SlackDelivery(key=delivery_key, received_at=now))
                try:
                    s.flush()
                except IntegrityError:
                    s.rollback()
                    return False
            result = s.exec(
                update(EditJob)  # type: ignore[call-overload]
                .where(
                    col(EditJob.id) == edit_id,
                    or_(col(EditJob.revert_state).is_(None), col(EditJob.revert_state) == "refused"),
                )
                .values(
                    revert_state="requested",
                    revert_requested_by=user,
                    attempts=0,
                    next_run_at=now,
                    updated_at=now,
                )
            )
            if not result.rowcount:
                s.rollback()
                return False
            s.commit()
            return True

    def record_delivery(self, key: str) -> bool:
        """True the first time a delivery key is seen, False on every repeat."""
        with self.session() as s:
            s.add(SlackDelivery(key=key, received_at=self.clock()))
            try:
                s.commit()
                return True
            except IntegrityError:
                s.rollback()
                return False

    def purge_deliveries(self, older_than: float) -> int:
        """Forget delivery keys received before `older_than` (epoch seconds); returns how many.

        Slack redelivers within minutes, and a repeated command or reply is also caught by its own
        row (trigger_id, message ts), so a key older than a day protects nothing and only grows.
        Keys under THREAD_STATE_PREFIXES are not deliveries but "done once per thread" marks, kept
        as long as their thread.
        """
        kept = [col(SlackDelivery.key).not_like(f"{prefix}%") for prefix in THREAD_STATE_PREFIXES]
        with self.session() as s:
            result = s.exec(delete(SlackDelivery).where(col(SlackDelivery.received_at) < older_than, *kept))
            s.commit()
            return int(result.rowcount or 0)

    def video_by_request_key(self, request_key: str) -> VideoJob | None:
        with self.reading() as s:
            return s.exec(select(VideoJob).where(VideoJob.request_key == request_key)).first()

    def edit_times(self, team_id: str, user_id: str, since: float) -> list[float]:
        """When this person's counted edit requests since `since` were made (for the daily limit)."""
        with self.session() as s:
            return list(
                s.exec(
                    select(EditJob.created_at).where(
                        EditJob.team_id == team_id,
                        EditJob.user_id == user_id,
                        col(EditJob.created_at) > since,
                        col(EditJob.state).not_in(UNCOUNTED_EDIT_STATES),
                    )
                )
            )

    def cancel_kept_edit(self, team_id: str, channel_id: str, reply_ts: str) -> EditJob | None:
        """Cancel the edit of a deleted reply if it has not been submitted; the edit, or None.

        Compare-and-set on the state: a reply already submitted (or on its way) is left alone, and
        `save` never writes over a cancelled edit, so a worker holding the row at that moment cannot
        bring it back or send it.
        """
        with self.session() as s:
            result = s.exec(
                update(EditJob)  # type: ignore[call-overload]
                .where(
                    col(EditJob.team_id) == team_id,
                    col(EditJob.channel_id) == channel_id,
                    col(EditJob.reply_ts) == reply_ts,
                    col(EditJob.state).in_(EDIT_CANCELLABLE),
                )
                .values(state=EDIT_CANCELLED, next_run_at=9.0e12, updated_at=self.clock())
            )
            s.commit()
            if not result.rowcount:
                return None
            return s.exec(
                select(EditJob).where(
                    EditJob.team_id == team_id, EditJob.channel_id == channel_id, EditJob.reply_ts == reply_ts
                )
            ).first()

    def video_for_thread(self, team_id: str, channel_id: str, thread_ts: str) -> VideoJob | None:
        with self.session() as s:
            return s.exec(
                select(VideoJob).where(
                    VideoJob.team_id == team_id,
                    VideoJob.channel_id == channel_id,
                    VideoJob.card_ts == thread_ts,
                )
            ).first()

    def thread_message(self, team_id: str, channel_id: str, ts: str) -> ThreadMessage | None:
        with self.session() as s:
            return s.get(ThreadMessage, (team_id, channel_id, ts))

    def add_thread_message(
        self, team_id: str, channel_id: str, ts: str, video_id: int, kind: str, edit_id: int | None = None
    ) -> None:
        with self.session() as s:
            s.merge(
                ThreadMessage(
                    team_id=team_id,
                    channel_id=channel_id,
                    ts=ts,
                    video_id=video_id,
                    edit_id=edit_id,
                    kind=kind,
                )
            )
            s.commit()

    def recent_videos(self, team_id: str, channel_id: str, limit: int = 10) -> list[VideoJob]:
        with self.session() as s:
            return list(
                s.exec(
                    select(VideoJob)
                    .where(VideoJob.team_id == team_id, VideoJob.channel_id == channel_id)
                    .order_by(col(VideoJob.created_at).desc(), col(VideoJob.id).desc())
                    .limit(limit)
                )
            )

    def videos_of_user(self, user_id: str, limit: int = 10) -> list[VideoJob]:
        with self.session() as s:
            return list(
                s.exec(
                    select(VideoJob)
                    .where(VideoJob.user_id == user_id)
                    .order_by(col(VideoJob.created_at).desc(), col(VideoJob.id).desc())
                    .limit(limit)
                )
            )

    def get_video(self, video_id: int) -> VideoJob | None:
        with self.session() as s:
            return s.get(VideoJob, video_id)

    def get_edit(self, edit_id: int) -> EditJob | None:
        with self.session() as s:
            return s.get(EditJob, edit_id)

    def edits_of(self, video_id: int) -> list[EditJob]:
        with self.session() as s:
            return list(
                s.exec(
                    select(EditJob)
                    .where(EditJob.video_id == video_id)
                    .order_by(col(EditJob.reply_ts), col(EditJob.id))
                )
            )

    def transition(self, model: type[L], row_id: int, from_states: Sequence[str], **values: Any) -> bool:
        """Compare-and-set on `state` (or `revert_state` if given in values with `_field`).

        The user-facing double actions (two clicks, two reactions) race here and exactly one wins.
        """
        field = values.pop("_field", "state")
        values.setdefault("updated_at", self.clock())
        values.setdefault("next_run_at", self.clock())
        column = getattr(model, field)
        conditions: list[Any] = [col(model.id) == row_id]
        if None in from_states:
            conditions.append(or_(column.is_(None), column.in_([s for s in from_states if s is not None])))
        else:
            conditions.append(column.in_(list(from_states)))
        with self.session() as s:
            result = s.exec(update(model).where(*conditions).values(**values))  # type: ignore[call-overload]
            s.commit()
            return bool(result.rowcount)

"""The queries the bot needs, and nothing that knows about Slack or HTTP.

Sessions are short: no network call ever happens while a transaction is open, so a slow Slack or
Knowlify answer never holds the database lock that the 3-second ack path needs.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any, TypeVar

from sqlalchemy import and_, case, func, or_, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, delete, select

from storage.group_commit import GroupCommit
from storage.group_commit import supported as group_commit_supported
from storage.models import (
    BudgetScope,
    EditJob,
    KnowlifyCall,
    Leased,
    SlackDelivery,
    ThreadMessage,
    VideoJob,
)

L = TypeVar("L", VideoJob, EditJob)
# SlackDelivery keys that mark something done once per thread (the "how to ask for an edit" hint
# to each person), not a delivery: purge_deliveries leaves them.
THREAD_STATE_PREFIXES = ("edit-hint:",)

# While a worker holds a row, its next_run_at equals its lease_until (claim and renew keep them
# equal): if the worker dies, the row falls due when its lease expires, found by the next_run_at
# index like any other due row. Anyone who wants the row worked again meanwhile (a listener: a
# revert asked for, a retry clicked; a render that ended) writes an earlier time, and `release`
# keeps the earlier of that and the worker's own choice (in SQL), so a wake-up set during a step is
# never moved later.

# Kept in step with bot.core.lifecycle (storage does not import the bot).
EDIT_CANCELLED = "cancelled"
EDIT_CANCELLABLE = ("held", "waiting", "pending")
# Requests that count against a person's daily limit: those Knowlify took, or may still take.
# Not counted: a video the bot could not post in the channel, or one Knowlify refused or never
# started (failed without a uuid); an edit refused (by Knowlify, or because its video failed) or
# cancelled before it was sent.
UNCOUNTED_VIDEO_STATES = ("needs_invite",)
UNCOUNTED_EDIT_STATES = ("refused", EDIT_CANCELLED)


class Store:
    def __init__(self, engine: Engine, clock: Any = time.time, *, group_commit: bool = False) -> None:
        """`group_commit`: new jobs go through one writer thread, many per transaction
        (storage.group_commit), so simultaneous commands do not queue for the lock one by one."""
        self.engine = engine
        self.clock = clock
        self._group = GroupCommit(engine) if group_commit and group_commit_supported(engine) else None
        self._reader = engine.execution_options(read_only=True)

    def reading(self) -> Session:
        """A session for reads only: on SQLite it takes no write lock, so the checks made before an
        ack never queue behind the worker's writes (storage.db)."""
        return Session(self._reader, expire_on_commit=False)

    def session(self) -> Session:
        return Session(self.engine, expire_on_commit=False)

    # --- requests arriving from Slack -------------------------------------------------------

    def add_video(self, job: VideoJob) -> VideoJob | None:
        """Insert a new job; None if a job with the same request_key exists (a repeated delivery)."""
        now = self.clock()
        job.created_at = job.updated_at = now
        job.next_run_at = now
        if self._group is not None:
            return self._group.add_video(job)
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
            result = s.exec(
                delete(SlackDelivery).where(col(SlackDelivery.received_at) < older_than, *kept)
            )
            s.commit()
            return int(result.rowcount or 0)

    def video_by_request_key(self, request_key: str) -> VideoJob | None:
        with self.reading() as s:
            return s.exec(select(VideoJob).where(VideoJob.request_key == request_key)).first()

    def video_times(self, team_id: str, user_id: str, since: float) -> list[float]:
        """When this person's counted video requests since `since` were made (for the daily limit)."""
        with self.reading() as s:
            return list(
                s.exec(
                    select(VideoJob.created_at).where(
                        VideoJob.team_id == team_id,
                        VideoJob.user_id == user_id,
                        col(VideoJob.created_at) > since,
                        col(VideoJob.state).not_in(UNCOUNTED_VIDEO_STATES),
                        or_(col(VideoJob.state) != "failed", col(VideoJob.knowlify_uuid).is_not(None)),
                    )
                )
            )

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

    # --- the worker's leases ----------------------------------------------------------------

    def claim(
        self, model: type[L], owner: str, lease_seconds: float, limit: int, *conditions: Any
    ) -> list[L]:
        """Atomically take up to `limit` due rows matching `conditions` that nobody holds a live lease on.

        One UPDATE … RETURNING decides, so two replicas never claim the same row; an expired lease
        (its owner crashed) is claimable again. A claimed row's next_run_at is its lease's end.
        """
        now = self.clock()
        if not self._any_due(model, now):
            return []
        due = (
            select(model.id)
            .where(
                *conditions,
                col(model.next_run_at) <= now,
                # Free, expired, or our own (taken back at start, see take_back).
                or_(
                    col(model.lease_until).is_(None),
                    col(model.lease_until) < now,
                    col(model.lease_owner) == owner,
                ),
            )
            # Most overdue first, then in arrival order. Walking the next_run_at index stops after
            # `limit` due rows, so the many rows that are not due (or finished) cost nothing.
            .order_by(col(model.next_run_at), col(model.id))
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        stmt = (
            update(model)
            .where(col(model.id).in_(due.scalar_subquery()))
            .values(lease_owner=owner, lease_until=now + lease_seconds, next_run_at=now + lease_seconds)
            .returning(col(model.id))
        )
        with self.session() as s:
            ids = [row[0] for row in s.execute(stmt)]
            s.commit()
            if not ids:
                return []
            rows = list(s.exec(select(model).where(col(model.id).in_(ids))))
        rows.sort(key=lambda r: r.id or 0)
        return rows

    def renew(
        self, model: type[VideoJob] | type[EditJob], ids: Sequence[int], owner: str, lease_seconds: float
    ) -> int:
        """Extend `owner`'s live leases on these rows (a lease that already expired stays expired);
        a wake-up someone set meanwhile (a next_run_at before the lease's end) stays."""
        if not ids:
            return 0
        now = self.clock()
        until = now + lease_seconds
        current = col(model.next_run_at)
        with self.session() as s:
            result = s.exec(
                update(model)  # type: ignore[call-overload]
                .where(
                    col(model.id).in_(list(ids)),
                    col(model.lease_owner) == owner,
                    col(model.lease_until) >= now,
                )
                .values(
                    lease_until=until,
                    next_run_at=case((current < col(model.lease_until), current), else_=until),
                )
            )
            s.commit()
            return int(result.rowcount or 0)

    def _any_due(self, model: type[L], now: float) -> bool:
        """Whether any row of the table is due, read on a bare connection: with thousands of jobs
        between two polls, most ticks find nothing, and then skip the claim's UPDATE (on SQLite it
        takes the database's write lock, which the 3-second ack path waits for) and its cost in
        statement building. Walks the next_run_at index; stops at the first due row."""
        mark = "?" if self.engine.dialect.paramstyle == "qmark" else "%s"
        conn = self.engine.raw_connection()
        driver = conn.driver_connection
        # psycopg: autocommit spares the BEGIN and ROLLBACK round trips (pysqlite has none already).
        manual = getattr(driver, "autocommit", True) is False
        try:
            if manual:
                driver.autocommit = True  # type: ignore[union-attr]
            cursor = conn.cursor()
            cursor.execute(f"SELECT 1 FROM {model.__tablename__} WHERE next_run_at <= {mark} LIMIT 1", (now,))
            found = cursor.fetchone() is not None
            cursor.close()
        finally:
            if manual:
                driver.autocommit = False  # type: ignore[union-attr]
            conn.close()
        return found

    def take_back(self, model: type[VideoJob] | type[EditJob], owner: str) -> int:
        """At start: rows a predecessor under the same worker id held are due now (not when its
        leases expire)."""
        with self.session() as s:
            result = s.exec(
                update(model)  # type: ignore[call-overload]
                .where(col(model.lease_owner) == owner)
                .values(next_run_at=self.clock())
            )
            s.commit()
            return int(result.rowcount or 0)

    def save(self, row: Leased, owner: str, **values: Any) -> bool:
        """Write `values` to a leased row only while `owner` still holds a live lease on it."""
        return self._write_leased(row, owner, values)

    def release(self, row: Leased, owner: str, next_run_at: float, **values: Any) -> bool:
        """Store `values`, hand the row back, and schedule it: at `next_run_at`, or earlier if
        someone asked for it meanwhile (MIN in SQL, so the two cannot race)."""
        model = type(row)
        current = col(model.next_run_at)  # type: ignore[var-annotated]
        woken = and_(current < col(model.lease_until), current < next_run_at)  # type: ignore[attr-defined]
        earliest = case((woken, current), else_=next_run_at)
        values = {**values, "lease_owner": None, "lease_until": None}
        if not self._write_leased(row, owner, {**values, "next_run_at": earliest}, shown=values):
            return False
        row.next_run_at = next_run_at  # at most this; a listener's wake-up may be earlier
        return True

    def _write_leased(
        self, row: Leased, owner: str, values: dict[str, Any], shown: dict[str, Any] | None = None
    ) -> bool:
        model = type(row)
        now = self.clock()
        values["updated_at"] = now
        conditions: list[Any] = [
            col(model.id) == row.id,  # type: ignore[attr-defined]
            col(model.lease_owner) == owner,
            col(model.lease_until) >= now,  # an expired lease writes nothing, even if nobody took it yet
        ]
        if model is EditJob:
            # A cancelled edit (its reply was deleted) is final: no worker write revives or sends it.
            conditions.append(col(EditJob.state) != EDIT_CANCELLED)
        with self.session() as s:
            result = s.exec(
                update(model).where(*conditions).values(**values)  # type: ignore[call-overload]
            )
            s.commit()
        if result.rowcount:
            for key, value in (values if shown is None else {**shown, "updated_at": now}).items():
                setattr(row, key, value)
        return bool(result.rowcount)

    def older_create_waiting(self, key_id: str, job_id: int, states: Sequence[str]) -> float | None:
        """When the earliest older job of this key that waits (for the budget, not after an error:
        attempts = 0) to be sent is due, if any. One that a worker holds right now counts as due now."""
        held = col(VideoJob.lease_owner).is_not(None)
        due = case((held, self.clock()), else_=col(VideoJob.next_run_at))
        with self.session() as s:
            return s.exec(
                select(func.min(due)).where(
                    VideoJob.key_id == key_id,
                    col(VideoJob.id) < job_id,
                    col(VideoJob.state).in_(list(states)),
                    VideoJob.attempts == 0,
                )
            ).first()

    def parked_ahead(self, key_id: str, job_id: int) -> int:
        """How many of this key's parked renders were created before this one."""
        with self.session() as s:
            return int(
                s.exec(
                    select(func.count()).where(
                        VideoJob.key_id == key_id,
                        col(VideoJob.id) < job_id,
                        VideoJob.state == "rendering",
                        VideoJob.status == "parked",
                    )
                ).one()
            )

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

    # --- the Knowlify budget (bot.knowlify.budget.CallLog) ---------------------------------------

    def _locked_scope(self, s: Session, scope: str) -> BudgetScope:
        """The scope's row, created if missing, locked until the transaction ends.

        SELECT … FOR UPDATE alone locks nothing when the row does not exist yet, so replicas making
        their first call together would all insert it and all but one fail on the primary key.
        INSERT … ON CONFLICT DO NOTHING waits for a concurrent insert of the same key to commit and
        then does nothing; the row exists for everyone afterwards and the lock serialises them.
        (On SQLite the transaction's BEGIN IMMEDIATE already serialises writers.)
        """
        dialect = self.engine.dialect.name
        insert = pg_insert if dialect == "postgresql" else sqlite_insert
        s.execute(insert(BudgetScope).values(scope=scope, blocked_until=0.0).on_conflict_do_nothing())
        return s.exec(
            select(BudgetScope)
            .where(BudgetScope.scope == scope)
            .with_for_update()
            .execution_options(populate_existing=True)
        ).one()

    def try_reserve(self, scope: str, now: float, window: float, cap: int) -> float:
        with self.session() as s:
            self._locked_scope(s, scope)
            since = now - window
            s.exec(
                delete(KnowlifyCall).where(
                    col(KnowlifyCall.scope) == scope, col(KnowlifyCall.at) <= since - window
                )
            )
            times = list(
                s.exec(
                    select(KnowlifyCall.at)
                    .where(KnowlifyCall.scope == scope, KnowlifyCall.at > since)
                    .order_by(col(KnowlifyCall.at))
                )
            )
            if len(times) < cap:
                s.add(KnowlifyCall(scope=scope, at=now))
                s.commit()
                return 0.0
            s.rollback()
            # The (len - cap + 1)-th oldest must leave the window before one more fits.
            return max(0.001, times[len(times) - cap] + window - now)

    def block(self, scope: str, until: float) -> None:
        with self.session() as s:
            row = self._locked_scope(s, scope)
            if until > row.blocked_until:
                row.blocked_until = until
                s.add(row)
            s.commit()

    def blocked_until(self, scope: str) -> float:
        with self.session() as s:
            row = s.get(BudgetScope, scope)
            return row.blocked_until if row else 0.0

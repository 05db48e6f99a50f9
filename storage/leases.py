"""The worker's leases: one worker at a time owns a row; claims, renewals, writes under a lease."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import and_, case, func, or_, update
from sqlmodel import col, select

from storage.models import (
    EditJob,
    Leased,
    VideoJob,
)
from storage.store_base import (
    EDIT_CANCELLED,
    L,
    StoreBase,
)


class Leases(StoreBase):
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

    def hand_back(
        self, model: type[VideoJob] | type[EditJob], row_id: int, owner: str, next_run_at: float, **values: Any
    ) -> bool:
        """Free a row `owner` claimed but could not release (the write failed: disk full, database
        gone), due at `next_run_at` or at an earlier wake-up set meanwhile. A row someone else
        holds by now is left alone. Whether the database took the write at all: False raises."""
        current = col(model.next_run_at)
        earliest = case((current < col(model.lease_until), current), else_=next_run_at)
        with self.session() as s:
            s.exec(
                update(model)  # type: ignore[call-overload]
                .where(col(model.id) == row_id, col(model.lease_owner) == owner)
                .values(lease_owner=None, lease_until=None, next_run_at=earliest, **values)
            )
            s.commit()
        return True

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

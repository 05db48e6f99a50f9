"""The Knowlify budget's shared log (bot.knowlify.budget.CallLog): every replica reserves through
the same rows."""

from __future__ import annotations

from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import Session, col, delete, select

from storage.models import (
    BudgetScope,
    KnowlifyCall,
)
from storage.store_base import (
    StoreBase,
)


class BudgetLog(StoreBase):
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

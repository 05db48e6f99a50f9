"""Each workspace's own Knowlify key (storage.models.WorkspaceKey), encrypted by the caller."""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy.engine import Engine
from sqlmodel import Session, col, delete, select

from storage.models import WorkspaceKey


class WorkspaceKeys:
    def __init__(self, engine: Engine, clock: Any = time.time) -> None:
        self.engine = engine
        self.clock = clock

    def get(self, team_id: str) -> WorkspaceKey | None:
        with Session(self.engine, expire_on_commit=False) as s:
            return s.get(WorkspaceKey, team_id)

    def all(self) -> list[WorkspaceKey]:
        with Session(self.engine, expire_on_commit=False) as s:
            return list(s.exec(select(WorkspaceKey)))

    def put(self, team_id: str, *, ciphertext: str, last4: str, key_id: str, user_id: str) -> None:
        """Connect or replace the workspace's key."""
        with Session(self.engine) as s:
            row = s.get(WorkspaceKey, team_id) or WorkspaceKey(
                team_id=team_id, ciphertext="", last4="", key_id="", connected_by=""
            )
            row.ciphertext, row.last4, row.key_id = ciphertext, last4, key_id
            row.connected_by, row.connected_at = user_id, self.clock()
            s.add(row)
            s.commit()

    def remove(self, team_id: str) -> bool:
        with Session(self.engine) as s:
            result = s.exec(delete(WorkspaceKey).where(col(WorkspaceKey.team_id) == team_id))  # type: ignore[call-overload]
            s.commit()
            return bool(result.rowcount)

"""Each workspace's own Knowlify key, encrypted (see bot.vault); only its last four characters and
its fingerprint (the budget's key id) are stored in the clear."""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy import Column, Text, update
from sqlalchemy.engine import Engine
from sqlmodel import Field, Session, SQLModel, col, delete, select

from storage.models import EditJob, VideoJob


class WorkspaceKey(SQLModel, table=True):
    __tablename__ = "workspace_key"

    team_id: str = Field(primary_key=True)
    ciphertext: str = Field(sa_column=Column(Text, nullable=False))
    last4: str
    key_id: str  # fingerprint of the key: its budget scope
    connected_by: str
    connected_at: float = 0.0


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

    def park_jobs(self, team_id: str, job_key_id: str) -> None:
        """Hand back any lease on the workspace's rows, so no replica keeps working them after an
        uninstall (a reinstall with a key picks them up again)."""
        with Session(self.engine) as s:
            for model in (VideoJob, EditJob):
                s.exec(
                    update(model)  # type: ignore[call-overload]
                    .where(col(model.team_id) == team_id, col(model.key_id) == job_key_id)
                    .values(lease_owner=None, lease_until=None)
                )
            s.commit()

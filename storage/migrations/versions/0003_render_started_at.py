"""video_job.render_started_at: when a render got its slot at Knowlify (estimated), so that its
polls can aim at its end.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-02 16:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("video_job") as batch_op:
        batch_op.add_column(sa.Column("render_started_at", sa.Float(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("video_job") as batch_op:
        batch_op.drop_column("render_started_at")

"""Indexes for the reads on the ack path and the hourly purge.

- video_job (team_id, user_id, created_at) and edit_job (same): a person's requests of the last
  24 hours, counted before every `/knowlify` and every edit is taken (the daily limits); without
  them each count scans the whole table, inside the transaction that stores the new job.
- slack_delivery.received_at: the purge of day-old delivery keys.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02 19:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0005"
down_revision: str | Sequence[str] | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_video_person", "video_job", ["team_id", "user_id", "created_at"])
    op.create_index("ix_edit_person", "edit_job", ["team_id", "user_id", "created_at"])
    op.create_index("ix_slack_delivery_received_at", "slack_delivery", ["received_at"])


def downgrade() -> None:
    op.drop_index("ix_slack_delivery_received_at", table_name="slack_delivery")
    op.drop_index("ix_edit_person", table_name="edit_job")
    op.drop_index("ix_video_person", table_name="video_job")

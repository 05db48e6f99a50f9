"""Baseline: the schema as SQLModel's create_all made it before the bot used Alembic.

A database created by that code (it has the table `schema_version`) is stamped at this revision
on start and upgraded from here; a new database is built by running it.

Revision ID: 0001
Revises:
Create Date: 2026-12-02 15:32:55
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

revision: str = '0001'
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('budget_scope',
    sa.Column('scope', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('blocked_until', sa.Float(), nullable=False),
    sa.PrimaryKeyConstraint('scope')
    )
    op.create_table('knowlify_call',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('scope', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('at', sa.Float(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('knowlify_call', schema=None) as batch_op:
        batch_op.create_index('ix_call_scope_at', ['scope', 'at'], unique=False)

    op.create_table('schema_version',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_table('slack_delivery',
    sa.Column('key', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('received_at', sa.Float(), nullable=False),
    sa.PrimaryKeyConstraint('key')
    )
    op.create_table('video_job',
    sa.Column('next_run_at', sa.Float(), nullable=False),
    sa.Column('lease_owner', sqlmodel.sql.sqltypes.AutoString(), nullable=True),
    sa.Column('lease_until', sa.Float(), nullable=True),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.Float(), nullable=False),
    sa.Column('updated_at', sa.Float(), nullable=False),
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('request_key', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('team_id', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('channel_id', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('user_id', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('key_id', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('prompt', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('options_json', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('response_url', sqlmodel.sql.sqltypes.AutoString(), nullable=True),
    sa.Column('state', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('card_ts', sqlmodel.sql.sqltypes.AutoString(), nullable=True),
    sa.Column('card_shown', sqlmodel.sql.sqltypes.AutoString(), nullable=True),
    sa.Column('card_updated_at', sa.Float(), nullable=False),
    sa.Column('card_stale', sa.Boolean(), nullable=False),
    sa.Column('joined_note', sqlmodel.sql.sqltypes.AutoString(), nullable=True),
    sa.Column('knowlify_uuid', sqlmodel.sql.sqltypes.AutoString(), nullable=True),
    sa.Column('chat_url', sqlmodel.sql.sqltypes.AutoString(), nullable=True),
    sa.Column('link', sqlmodel.sql.sqltypes.AutoString(), nullable=True),
    sa.Column('status', sqlmodel.sql.sqltypes.AutoString(), nullable=True),
    sa.Column('percent', sa.Integer(), nullable=True),
    sa.Column('current_scene', sa.Integer(), nullable=True),
    sa.Column('total_scenes', sa.Integer(), nullable=True),
    sa.Column('queue_position', sa.Integer(), nullable=True),
    sa.Column('error_message', sqlmodel.sql.sqltypes.AutoString(), nullable=True),
    sa.Column('knowlify_updated_at', sqlmodel.sql.sqltypes.AutoString(), nullable=True),
    sa.Column('final_ts', sqlmodel.sql.sqltypes.AutoString(), nullable=True),
    sa.Column('unknown_notice_ts', sqlmodel.sql.sqltypes.AutoString(), nullable=True),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('request_key')
    )
    with op.batch_alter_table('video_job', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_video_job_next_run_at'), ['next_run_at'], unique=False)
        batch_op.create_index('ix_video_thread', ['team_id', 'channel_id', 'card_ts'], unique=False)

    op.create_table('edit_job',
    sa.Column('next_run_at', sa.Float(), nullable=False),
    sa.Column('lease_owner', sqlmodel.sql.sqltypes.AutoString(), nullable=True),
    sa.Column('lease_until', sa.Float(), nullable=True),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.Float(), nullable=False),
    sa.Column('updated_at', sa.Float(), nullable=False),
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('video_id', sa.Integer(), nullable=False),
    sa.Column('key_id', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('team_id', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('channel_id', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('reply_ts', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('user_id', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('text', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('reference_urls_json', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('ignored_urls_json', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('state', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('notice_ts', sqlmodel.sql.sqltypes.AutoString(), nullable=True),
    sa.Column('knowlify_edit_id', sqlmodel.sql.sqltypes.AutoString(), nullable=True),
    sa.Column('status', sqlmodel.sql.sqltypes.AutoString(), nullable=True),
    sa.Column('queue_position', sa.Integer(), nullable=True),
    sa.Column('result_json', sqlmodel.sql.sqltypes.AutoString(), nullable=True),
    sa.Column('error_message', sqlmodel.sql.sqltypes.AutoString(), nullable=True),
    sa.Column('result_ts', sqlmodel.sql.sqltypes.AutoString(), nullable=True),
    sa.Column('revert_state', sqlmodel.sql.sqltypes.AutoString(), nullable=True),
    sa.Column('revert_requested_by', sqlmodel.sql.sqltypes.AutoString(), nullable=True),
    sa.Column('revert_result_ts', sqlmodel.sql.sqltypes.AutoString(), nullable=True),
    sa.Column('revert_detail', sqlmodel.sql.sqltypes.AutoString(), nullable=True),
    sa.ForeignKeyConstraint(['video_id'], ['video_job.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('team_id', 'channel_id', 'reply_ts', name='uq_edit_reply')
    )
    with op.batch_alter_table('edit_job', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_edit_job_next_run_at'), ['next_run_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_edit_job_video_id'), ['video_id'], unique=False)

    op.create_table('thread_message',
    sa.Column('team_id', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('channel_id', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('ts', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('video_id', sa.Integer(), nullable=False),
    sa.Column('edit_id', sa.Integer(), nullable=True),
    sa.Column('kind', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.ForeignKeyConstraint(['edit_id'], ['edit_job.id'], ),
    sa.ForeignKeyConstraint(['video_id'], ['video_job.id'], ),
    sa.PrimaryKeyConstraint('team_id', 'channel_id', 'ts')
    )
    with op.batch_alter_table('thread_message', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_thread_message_video_id'), ['video_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('thread_message', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_thread_message_video_id'))

    op.drop_table('thread_message')
    with op.batch_alter_table('edit_job', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_edit_job_video_id'))
        batch_op.drop_index(batch_op.f('ix_edit_job_next_run_at'))

    op.drop_table('edit_job')
    with op.batch_alter_table('video_job', schema=None) as batch_op:
        batch_op.drop_index('ix_video_thread')
        batch_op.drop_index(batch_op.f('ix_video_job_next_run_at'))

    op.drop_table('video_job')
    op.drop_table('slack_delivery')
    op.drop_table('schema_version')
    with op.batch_alter_table('knowlify_call', schema=None) as batch_op:
        batch_op.drop_index('ix_call_scope_at')

    op.drop_table('knowlify_call')
    op.drop_table('budget_scope')

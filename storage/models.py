"""The tables. The database, not Slack and not memory, is the source of truth: every job, every
message the bot posted, every processed delivery and every Knowlify call of the budget window.

Times are epoch seconds (floats) so that several processes agree on them.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy import Column, Index, Text, UniqueConstraint
from sqlmodel import Field, SQLModel


class Leased(SQLModel):
    """Columns that let one worker at a time own a row (see storage.repo.claim)."""

    next_run_at: float = Field(default=0.0, index=True)
    lease_owner: str | None = None
    lease_until: float | None = None
    attempts: int = 0
    created_at: float = 0.0
    updated_at: float = 0.0


class VideoJob(Leased, table=True):
    """One `/knowlify` request: from the row written before the ack to the link in the thread.

    `state` is the bot's own lifecycle (bot.core.states.VideoState); `status` and the progress
    columns mirror what Knowlify last said.
    """

    __tablename__ = "video_job"
    __table_args__ = (
        Index("ix_video_thread", "team_id", "channel_id", "card_ts"),
        # A person's requests of the last 24 hours: the daily limit, read before every ack.
        Index("ix_video_person", "team_id", "user_id", "created_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    request_key: str = Field(unique=True)  # de-duplicates repeated deliveries of one request
    team_id: str
    channel_id: str
    user_id: str
    key_id: str  # fingerprint of the Knowlify key this job belongs to: never mix workspaces' keys
    prompt: str
    options_json: str = "{}"
    response_url: str | None = None

    state: str = "new"
    card_ts: str | None = None
    card_shown: str | None = None  # the card text last sent, to update only on visible change
    card_updated_at: float = 0.0
    card_stale: bool = False  # Slack rate-limited a card update: the row comes back for its card
    joined_note: str | None = None  # why the bot could not join, said in the card

    knowlify_uuid: str | None = None
    chat_url: str | None = None
    link: str | None = None
    status: str | None = None
    percent: int | None = None
    current_scene: int | None = None
    total_scenes: int | None = None
    queue_position: int | None = None
    error_message: str | None = None
    knowlify_updated_at: str | None = None
    render_started_at: float | None = None  # when the render got a slot (estimated; paces its polls)
    final_ts: str | None = None  # the thread reply with the link or the failure
    unknown_notice_ts: str | None = None


class EditJob(Leased, table=True):
    """One human reply in a video's thread, from the row written on receipt to its result post."""

    __tablename__ = "edit_job"
    __table_args__ = (
        UniqueConstraint("team_id", "channel_id", "reply_ts", name="uq_edit_reply"),
        Index("ix_edit_person", "team_id", "user_id", "created_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    video_id: int = Field(foreign_key="video_job.id", index=True)
    key_id: str
    team_id: str
    channel_id: str
    reply_ts: str
    user_id: str
    text: str
    reference_urls_json: str = "[]"
    ignored_urls_json: str = "[]"

    state: str = "pending"
    notice_ts: str | None = None  # "kept until the render completes" / "accepted" reply
    knowlify_edit_id: str | None = None
    status: str | None = None
    queue_position: int | None = None
    result_json: str | None = None
    error_message: str | None = None
    result_ts: str | None = None

    revert_state: str | None = None
    revert_requested_by: str | None = None
    revert_result_ts: str | None = None
    revert_detail: str | None = None


class ThreadMessage(SQLModel, table=True):
    """Every message tied to a video: the card, each bot post, each reply that became an edit.

    Reactions carry only (channel, ts); this table answers them without conversations.history.
    """

    __tablename__ = "thread_message"

    team_id: str = Field(primary_key=True)
    channel_id: str = Field(primary_key=True)
    ts: str = Field(primary_key=True)
    video_id: int = Field(foreign_key="video_job.id", index=True)
    edit_id: int | None = Field(default=None, foreign_key="edit_job.id")
    kind: str


class SlackDelivery(SQLModel, table=True):
    """Slack deliveries already acted on (event_id, trigger_id…): the unique key is the de-dup."""

    __tablename__ = "slack_delivery"

    key: str = Field(primary_key=True)
    received_at: float = Field(default=0.0, index=True)  # the hourly purge of day-old keys


class KnowlifyCall(SQLModel, table=True):
    """One Knowlify request counted against a budget window, shared by every replica."""

    __tablename__ = "knowlify_call"
    __table_args__ = (Index("ix_call_scope_at", "scope", "at"),)

    id: int | None = Field(default=None, primary_key=True)
    scope: str
    at: float


class BudgetScope(SQLModel, table=True):
    """One row per budget scope: the row lock serialises reservations; `blocked_until` holds a
    pause Knowlify imposed (429 or Remaining 0)."""

    __tablename__ = "budget_scope"

    scope: str = Field(primary_key=True)
    blocked_until: float = 0.0


class WorkspaceKey(SQLModel, table=True):
    """Several workspaces: each one's own Knowlify key, encrypted and bound to the workspace
    (bot.vault); only its last four characters and its fingerprint (its budget's key id) are clear.
    The workspaces' installations (bot tokens, encrypted too) are in slack_sdk's tables."""

    __tablename__ = "workspace_key"

    team_id: str = Field(primary_key=True)
    ciphertext: str = Field(sa_column=Column(Text, nullable=False))
    last4: str
    key_id: str  # fingerprint of the key: its budget scope
    connected_by: str
    connected_at: float = 0.0


# slack_sdk's OAuth tables, as bot.installs uses them (its SQLAlchemy stores get these Table objects):
# slack_sdk's own columns, except the token columns, which are TEXT since they hold ciphertext.
# Declared here so that the migrations (0004_workspaces) and the models are checked against each other.
slack_installations = sa.Table(
    "slack_installations",
    SQLModel.metadata,
    sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
    sa.Column("client_id", sa.String(32), nullable=False),
    sa.Column("app_id", sa.String(32), nullable=False),
    sa.Column("enterprise_id", sa.String(32)),
    sa.Column("enterprise_name", sa.String(200)),
    sa.Column("enterprise_url", sa.String(200)),
    sa.Column("team_id", sa.String(32)),
    sa.Column("team_name", sa.String(200)),
    sa.Column("bot_token", sa.Text()),
    sa.Column("bot_id", sa.String(32)),
    sa.Column("bot_user_id", sa.String(32)),
    sa.Column("bot_scopes", sa.String(1000)),
    sa.Column("bot_refresh_token", sa.Text()),
    sa.Column("bot_token_expires_at", sa.DateTime()),
    sa.Column("user_id", sa.String(32), nullable=False),
    sa.Column("user_token", sa.Text()),
    sa.Column("user_scopes", sa.String(1000)),
    sa.Column("user_refresh_token", sa.Text()),
    sa.Column("user_token_expires_at", sa.DateTime()),
    sa.Column("incoming_webhook_url", sa.String(200)),
    sa.Column("incoming_webhook_channel", sa.String(200)),
    sa.Column("incoming_webhook_channel_id", sa.String(200)),
    sa.Column("incoming_webhook_configuration_url", sa.String(200)),
    sa.Column("is_enterprise_install", sa.Boolean(), default=False, nullable=False),
    sa.Column("token_type", sa.String(32)),
    sa.Column("installed_at", sa.DateTime(), nullable=False, default=sa.func.now()),
    Index("slack_installations_idx", "client_id", "enterprise_id", "team_id", "user_id", "installed_at"),
)
slack_bots = sa.Table(
    "slack_bots",
    SQLModel.metadata,
    sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
    sa.Column("client_id", sa.String(32), nullable=False),
    sa.Column("app_id", sa.String(32), nullable=False),
    sa.Column("enterprise_id", sa.String(32)),
    sa.Column("enterprise_name", sa.String(200)),
    sa.Column("team_id", sa.String(32)),
    sa.Column("team_name", sa.String(200)),
    sa.Column("bot_token", sa.Text()),
    sa.Column("bot_id", sa.String(32)),
    sa.Column("bot_user_id", sa.String(32)),
    sa.Column("bot_scopes", sa.String(1000)),
    sa.Column("bot_refresh_token", sa.Text()),
    sa.Column("bot_token_expires_at", sa.DateTime()),
    sa.Column("is_enterprise_install", sa.Boolean(), default=False, nullable=False),
    sa.Column("installed_at", sa.DateTime(), nullable=False, default=sa.func.now()),
    Index("slack_bots_idx", "client_id", "enterprise_id", "team_id", "installed_at"),
)
slack_oauth_states = sa.Table(
    "slack_oauth_states",
    SQLModel.metadata,
    sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
    sa.Column("state", sa.String(200), nullable=False),
    sa.Column("expire_at", sa.DateTime(), nullable=False),
)

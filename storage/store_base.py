"""What every part of the store shares: the engine, the clock, short sessions, and the constants
the queries agree on. The queries themselves live beside it, one module per concern, and
storage.repo.Store puts them together.

Sessions are short: no network call ever happens while a transaction is open, so a slow Slack or
Knowlify answer never holds the database lock that the 3-second ack path needs.
"""

from __future__ import annotations

import time
from typing import Any, TypeVar

from sqlalchemy.engine import Engine
from sqlmodel import Session

from storage.admission import supports_batches as group_commit_supported
from storage.group_commit import GroupCommit
from storage.models import (
    EditJob,
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
# The video counterpart, UNCOUNTED_VIDEO_STATES, lives in storage.admission, which counts requests
# before every new job.
UNCOUNTED_EDIT_STATES = ("refused", EDIT_CANCELLED)


class StoreBase:
    def __init__(self, engine: Engine, clock: Any = time.time, *, group_commit: bool = False) -> None:
        """`group_commit`: new jobs go through one writer thread, many per transaction
        (storage.group_commit), so simultaneous commands do not queue for the lock one by one."""
        self.engine = engine
        self.clock = clock
        self._group = GroupCommit(engine, clock) if group_commit and group_commit_supported(engine) else None
        self._reader = engine.execution_options(read_only=True)

    def reading(self) -> Session:
        """A session for reads only: on SQLite it takes no write lock, so the checks made before an
        ack never queue behind the worker's writes (storage.db)."""
        return Session(self._reader, expire_on_commit=False)

    def session(self) -> Session:
        return Session(self.engine, expire_on_commit=False)

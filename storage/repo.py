"""The queries the bot needs, and nothing that knows about Slack or HTTP: one Store made of one
part per concern (storage.slack_requests, storage.leases, storage.worker_writes,
storage.budget_log) over storage.store_base."""

from __future__ import annotations

from storage.admission import UNCOUNTED_VIDEO_STATES
from storage.budget_log import BudgetLog
from storage.leases import Leases
from storage.slack_requests import SlackRequests
from storage.store_base import (
    EDIT_CANCELLABLE,
    EDIT_CANCELLED,
    THREAD_STATE_PREFIXES,
    UNCOUNTED_EDIT_STATES,
    StoreBase,
)
from storage.worker_writes import WorkerWrites

__all__ = [
    "EDIT_CANCELLABLE",
    "EDIT_CANCELLED",
    "THREAD_STATE_PREFIXES",
    "UNCOUNTED_EDIT_STATES",
    "UNCOUNTED_VIDEO_STATES",
    "Store",
    "StoreBase",
]


class Store(SlackRequests, Leases, WorkerWrites, BudgetLog):
    """Every query of the bot, on one engine."""

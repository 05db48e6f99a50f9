"""The worker, split by machine: tick (claim), videos / edits / reverts (call), bot.core (decide),
apply (post, store, release)."""

from bot.core.decision import NEVER
from bot.core.edits import idempotency_key as edit_idempotency_key
from bot.worker.tick import Worker

__all__ = ["NEVER", "Worker", "edit_idempotency_key"]

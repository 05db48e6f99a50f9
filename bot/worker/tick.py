"""The worker: each tick claims due jobs and moves each one step: claim → call → decide → apply.

Every Knowlify and Slack call the bot makes after an ack happens in bot.worker:
- a row is claimed under a lease (storage.repo.Store.claim) before it is touched: two replicas never
  work on the same job, and a crashed worker's jobs are taken over when its lease expires;
- state that decides whether a paid call happens is committed *before* the call (`submitting`), so a
  crash mid-call is told apart from a failure on restart;
- nothing sleeps: a budget wait, a 429 or a 5xx backoff becomes the row's `next_run_at`.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

from sqlmodel import col

from bot.acks_first import REQUESTS, InFlight
from bot.core import polling
from bot.core.retry import backoff_seconds
from bot.core.states import EDIT_WORK_STATES, REVERT_WORK_STATES, VIDEO_WORK_STATES
from bot.knowlify.client import KnowlifyClient
from bot.slack_ops import SlackOps
from bot.worker.context import StepContext
from bot.worker.edits import edit_step
from bot.worker.leases import LeaseKeeper
from bot.worker.videos import video_step
from storage.models import EditJob, VideoJob
from storage.repo import Store

log = logging.getLogger(__name__)


class Worker:
    def __init__(
        self,
        store: Store,
        knowlify: KnowlifyClient,
        slack: SlackOps,
        *,
        key_id: str,
        poll_seconds: float,
        owner: str | None = None,
        clock: Callable[[], float] = time.time,
        lease_seconds: float = 120.0,
        batch: int = 25,
        poll_policy: polling.PollPolicy | None = None,
        acks_first: InFlight = REQUESTS,
    ) -> None:
        self.store = store
        self.knowlify = knowlify
        self.slack = slack
        self.key_id = key_id
        self.poll_seconds = poll_seconds
        self.owner = owner or f"worker-{uuid.uuid4().hex[:12]}"
        self.clock = clock
        self.lease_seconds = lease_seconds
        self.batch = batch
        self.stopping = threading.Event()  # set by Runtime.stop: finish the current job, hand back the rest
        self.leases = LeaseKeeper(store, self.owner, lease_seconds)
        self.acks_first = acks_first
        self._took_back = False
        # Rows whose release failed (the write itself hit the fault): (model, id) → (due, attempts).
        self._unreleased: dict[tuple[type[VideoJob] | type[EditJob], int], tuple[float, int]] = {}
        self.poll_policy = poll_policy or polling.PollPolicy(poll_seconds=poll_seconds)
        self.ctx = StepContext(store, knowlify, slack, self.owner, poll_seconds, key_id, self.poll_policy, clock)

    def tick(self) -> int:
        """Move every due job one step; returns how many jobs were handled."""
        if not self._took_back:
            # A predecessor under this worker id died holding rows: take them back at once.
            self.store.take_back(VideoJob, self.owner)
            self.store.take_back(EditJob, self.owner)
            self._took_back = True
        self._hand_back_unreleased()
        handled = 0
        self.acks_first.wait_idle()
        videos = self.store.claim(
            VideoJob,
            self.owner,
            self.lease_seconds,
            self.batch,
            # Every key's rows: a row stamped with another key was made under an earlier
            # KNOWLIFY_API_KEY, and goes on under this one (bot.core.retry.under_earlier_key).
            # …and finished videos whose last card update Slack rate-limited.
            col(VideoJob.state).in_(VIDEO_WORK_STATES) | col(VideoJob.card_stale).is_(True),
        )
        self.leases.hold(videos)
        # Oldest first: creates reach Knowlify in the order people asked (it parks them FIFO).
        for job in sorted(videos, key=lambda j: j.id or 0):
            handled += self._work(self._video_step, job)
        edits = self.store.claim(
            EditJob,
            self.owner,
            self.lease_seconds,
            self.batch,
            (col(EditJob.state).in_(EDIT_WORK_STATES)) | (col(EditJob.revert_state).in_(REVERT_WORK_STATES)),
        )
        self.leases.hold(edits)
        for edit in edits:
            handled += self._work(self._edit_step, edit)
        return handled

    def close(self) -> None:
        """Stop renewing leases (Runtime.stop, after the last tick)."""
        self.leases.close()

    def _work(self, step: Callable[[Any], None], row: VideoJob | EditJob) -> int:
        """One claimed row: handed back while stopping, else one step under a renewed lease."""
        try:
            if self._hand_back(row):
                return 0
            self.acks_first.wait_idle()
            self._guarded(step, row)
            return 1
        finally:
            self.leases.drop(row)

    def _video_step(self, job: VideoJob) -> None:
        video_step(self.ctx, job)

    def _edit_step(self, edit: EditJob) -> None:
        edit_step(self.ctx, edit)

    def _hand_back(self, row: VideoJob | EditJob) -> bool:
        """While stopping, give claimed rows back, due now, so another worker (or the next start)
        takes them at once instead of after the lease expires."""
        if not self.stopping.is_set():
            return False
        self.store.release(row, self.owner, self.clock())
        return True

    def _guarded(self, step: Callable[[Any], None], row: VideoJob | EditJob) -> None:
        """One job's surprise must not stop the others: log it and try that job again later."""
        try:
            step(row)
        except Exception:
            ref = uuid.uuid4().hex[:8]
            log.exception("worker step failed for %s %s (ref %s)", type(row).__name__, row.id, ref)
            attempts = row.attempts + 1
            due = self.clock() + backoff_seconds(attempts)
            try:
                self.store.release(row, self.owner, due, attempts=attempts)
            except Exception:
                # The release hit the same fault (disk full, database gone). Without a retry the row
                # would stay ours until its lease ends (2 minutes); every tick tries again instead.
                log.warning("%s %s not handed back yet; retrying on the next tick", type(row).__name__, row.id)
                if row.id is not None:
                    self._unreleased[(type(row), row.id)] = (due, attempts)

    def _hand_back_unreleased(self) -> None:
        for (model, row_id), (due, attempts) in list(self._unreleased.items()):
            self.store.hand_back(model, row_id, self.owner, due, attempts=attempts)  # raises while it fails
            del self._unreleased[(model, row_id)]

"""Keeps the leases of the rows a worker holds alive while it works them.

A step may wait on Knowlify (15 s per call) and Slack several times, and a tick works up to a batch
of rows one after another: without renewal a slow answer would let another replica take a row over
mid-create and report "outcome unknown" for a video that was in fact created. A small thread renews
every held lease three times per lease period; rows leave the set as soon as they are released.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable

from storage.models import EditJob, VideoJob
from storage.repo import Store

log = logging.getLogger(__name__)


class LeaseKeeper:
    def __init__(self, store: Store, owner: str, lease_seconds: float) -> None:
        self.store = store
        self.owner = owner
        self.lease_seconds = lease_seconds
        self._held: dict[type[VideoJob] | type[EditJob], set[int]] = {VideoJob: set(), EditJob: set()}
        self._lock = threading.Lock()
        self._closed = threading.Event()
        self._thread: threading.Thread | None = None

    def hold(self, rows: Iterable[VideoJob | EditJob]) -> None:
        with self._lock:
            for row in rows:
                if row.id is not None:
                    self._held[type(row)].add(row.id)
            if self._thread is None and not self._closed.is_set():
                self._thread = threading.Thread(target=self._run, name="lease-keeper", daemon=True)
                self._thread.start()

    def drop(self, row: VideoJob | EditJob) -> None:
        with self._lock:
            self._held[type(row)].discard(row.id or 0)

    def drop_all(self) -> None:
        with self._lock:
            for ids in self._held.values():
                ids.clear()

    def renew_now(self) -> int:
        """Renew every held lease once; how many were still ours."""
        with self._lock:
            held = {model: sorted(ids) for model, ids in self._held.items() if ids}
        renewed = 0
        for model, ids in held.items():
            renewed += self.store.renew(model, ids, self.owner, self.lease_seconds)
        return renewed

    def _run(self) -> None:
        while not self._closed.wait(self.lease_seconds / 3):
            try:
                self.renew_now()
            except Exception:  # the database is busy or down: the next round tries again
                log.warning("lease renewal failed", exc_info=True)

    def close(self) -> None:
        self._closed.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=5)

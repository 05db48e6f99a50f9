"""Builds the whole bot from settings: database, Slack client, Knowlify client, worker, Bolt app.

`serve`, `socket`, the demo and the end-to-end tests all start the bot through this one factory,
so they run the same listeners and the same worker.
"""

from __future__ import annotations

import logging
import threading
import time
from datetime import UTC, datetime
from typing import Any

from apscheduler.schedulers.background import BackgroundScheduler

from bot import metrics
from bot.health import Probes
from bot.knowlify.budget import Budget, key_fingerprint
from bot.knowlify.client import KnowlifyClient
from bot.listeners import register_listeners
from bot.services import Services
from bot.settings import Settings
from bot.slack_ops import SlackOps, make_client
from bot.worker import Worker
from storage.db import init_schema, make_engine
from storage.repo import Store

log = logging.getLogger(__name__)
# Each tick logs its own work; APScheduler's per-run lines and its "skipped: already running" warning
# (a kick landing during a tick, which run_ticks handles) would drown it. httpx logs every request.
logging.getLogger("apscheduler").setLevel(logging.ERROR)
logging.getLogger("httpx").setLevel(logging.WARNING)
TICK_JOB = "knowlify-worker-tick"
PURGE_JOB = "knowlify-purge-deliveries"
# Slack delivery keys are kept a day (Slack's retries come within the hour), purged hourly.
DELIVERY_KEY_TTL_SECONDS = 24 * 3600
PURGE_EVERY_SECONDS = 3600


class Runtime:
    def __init__(self, settings: Settings, *, socket_mode: bool = False, owner: str | None = None) -> None:
        self.settings = settings
        self.engine = make_engine(settings.database_url)
        init_schema(self.engine)
        self.store = Store(self.engine, group_commit=True)
        self.installs: Any = None  # bot.installs.Installs when several workspaces
        self._scheduler: BackgroundScheduler | None = None
        self._again = threading.Event()
        self._running = threading.Lock()
        if settings.distributed:
            self._init_distributed(settings, socket_mode=socket_mode, owner=owner)
            return
        self.client = make_client(settings.secret("slack_bot_token"), settings.slack_api_base)
        self.slack = SlackOps(self.client)
        api_key = settings.secret("knowlify_api_key")
        self.key_id = key_fingerprint(api_key)
        window = settings.knowlify_window_seconds
        # The margin covers the delay between counting a call here and Knowlify counting it there.
        budget = Budget(
            self.store, key_id=self.key_id, window_seconds=window, margin_seconds=min(1.0, window / 5)
        )
        self.knowlify: KnowlifyClient | None = KnowlifyClient(
            api_key, settings.knowlify_api_base, budget, timeout=settings.knowlify_timeout_seconds
        )
        self.worker = Worker(
            self.store,
            self.knowlify,
            self.slack,
            key_id=self.key_id,
            poll_seconds=settings.knowlify_poll_seconds,
            owner=owner or settings.knowlify_worker_id,
            poll_policy=budget.poll_policy(settings.knowlify_poll_seconds),
        )
        # Listeners answer before Slack gets its ack: their calls fail fast instead of sleeping on 429s.
        listener_slack = SlackOps(
            make_client(settings.secret("slack_bot_token"), settings.slack_api_base, fast=True)
        )
        self.services = Services(settings, self.store, listener_slack, self.key_id, kick=self.kick)
        self.probes = Probes(settings.database_url, self.engine)
        # App() calls auth.test once here: the Slack API (or the stand-in) must be reachable.
        self.app = metrics.MeteredApp(
            client=self.client,
            signing_secret=settings.secret("slack_signing_secret") or None,
            request_verification_enabled=not socket_mode,
            # Listeners only write a row (and ack); holding Slack's answer until they return means
            # a request that could not be stored is answered 5xx and delivered again, never lost.
            process_before_response=True,
        )
        auth = self.client.auth_test()
        self.services.team_id = str(auth.get("team_id") or "") or None
        self.services.bot_user_id = str(auth.get("user_id") or "") or None
        register_listeners(self.app, self.services)

    def _init_distributed(self, settings: Settings, *, socket_mode: bool, owner: str | None) -> None:
        """Several workspaces: tokens from OAuth installs, a Knowlify key per workspace (bot.workspaces).
        Imported here: the single-workspace set-up never loads the OAuth stores or the crypto."""
        from bot.installs import Installs
        from bot.vault import Vault
        from bot.workspaces import Workspaces, WorkspaceWorkers

        vault = Vault(settings.secret("knowlify_encryption_keys"))
        self.installs = Installs(
            client_id=str(settings.slack_client_id),
            client_secret=settings.secret("slack_client_secret"),
            database_url=settings.database_url,
            slack_api_base=settings.slack_api_base,
            vault=vault,
        )
        self.workspaces = Workspaces(settings, self.store, self.installs, vault)
        self.client = make_client("", settings.slack_api_base)  # each request gets its workspace's token
        self.slack = SlackOps(self.client)  # per request, listeners get their workspace's (connect.py)
        self.key_id = ""
        self.knowlify = None
        self.worker = WorkspaceWorkers(  # type: ignore[assignment]
            settings, self.store, self.workspaces, owner=owner or settings.knowlify_worker_id
        )
        self.services = Services(
            settings, self.store, self.slack, self.key_id, kick=self.kick, workspaces=self.workspaces
        )
        self.probes = Probes(settings.database_url, self.engine)
        self.app = metrics.MeteredApp(
            client=self.client,
            signing_secret=settings.secret("slack_signing_secret"),
            request_verification_enabled=not socket_mode,
            process_before_response=True,
            oauth_flow=self.installs.flow,
            authorize=self.installs.authorize,
            installation_store_bot_only=True,
        )
        register_listeners(self.app, self.services)

    # --- the worker loop -----------------------------------------------------------------

    def run_ticks(self) -> None:
        """One scheduled run: tick, and tick again at once if a kick arrived meanwhile."""
        if not self._running.acquire(blocking=False):
            self._again.set()
            return
        try:
            while True:
                self._again.clear()
                started = time.perf_counter()
                try:
                    self.worker.tick()
                except Exception:  # e.g. the database is locked or the disk is full: log, go on next tick
                    metrics.worker_tick(time.perf_counter() - started, failed=True)
                    log.exception("worker tick failed; retrying on the next tick")
                    return
                metrics.worker_tick(time.perf_counter() - started)
                if not self._again.is_set():
                    return
        finally:
            self._running.release()

    def start_worker(self) -> None:
        scheduler = BackgroundScheduler(
            job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": 5},
            timezone=UTC,
        )
        scheduler.add_job(
            self.run_ticks,
            "interval",
            seconds=self.settings.worker_tick_seconds,
            id=TICK_JOB,
            next_run_time=datetime.now(UTC),
        )
        scheduler.add_job(
            self.purge_deliveries,
            "interval",
            seconds=PURGE_EVERY_SECONDS,
            id=PURGE_JOB,
            next_run_time=datetime.now(UTC),
        )
        scheduler.start()
        self._scheduler = scheduler

    def purge_deliveries(self) -> None:
        """Drop delivery keys older than a day (every replica may run it; deleting twice is harmless)."""
        try:
            n = self.store.purge_deliveries(self.store.clock() - DELIVERY_KEY_TTL_SECONDS)
        except Exception as exc:  # a locked or unreachable database: the next run catches up
            log.warning("delivery keys not purged: %s", type(exc).__name__)
            return
        if n:
            log.info("purged %d Slack delivery keys older than 24 hours", n)

    def kick(self) -> None:
        """Run a tick now instead of at the next interval (new work just arrived). Once per burst:
        while a kick is pending, the ones behind it cost nothing (no scheduler wake-up)."""
        if self._again.is_set():
            return
        self._again.set()
        if self._scheduler is not None and not self._running.locked():
            try:
                self._scheduler.modify_job(TICK_JOB, next_run_time=datetime.now(UTC))
            except Exception:  # the scheduler is shutting down
                log.debug("kick ignored", exc_info=True)

    def stop(self) -> None:
        self.worker.stopping.set()
        if self._scheduler is not None:
            self._scheduler.shutdown(wait=True)
            self._scheduler = None
        self.worker.close()  # the lease renewer (and, distributed, every workspace's worker)
        if self.knowlify is not None:
            self.knowlify.close()
        if self.installs is not None:
            self.installs.close()
        self.engine.dispose()

"""Several workspaces in one deployment: each one's Knowlify key, each one's Slack token, and a
worker per workspace.

- A job of workspace T is stamped `key_id = "team:T"`: only T's worker claims it, and that worker
  holds T's bot token and T's Knowlify key. Replacing the key needs no rewrite of the rows (they go
  on under the new key); removing it, or uninstalling, leaves no worker to claim them.
- Each key has its own budget, keyed by the key's fingerprint (two workspaces that connected the same
  Knowlify key share its budget, as Knowlify counts per key).
- Listeners call Slack with the token of the request's workspace: a middleware gives each request
  a copy of the services made for its workspace (bot.listeners.connect.workspace_bound).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import httpx

from bot.knowlify.budget import Budget, key_fingerprint
from bot.knowlify.client import KnowlifyClient
from bot.knowlify.errors import BudgetExhausted
from bot.settings import KEY_PATTERN, Settings
from bot.slack_ops import SlackOps, make_client
from bot.worker import Worker
from storage.repo import Store
from storage.workspaces import WorkspaceKey, WorkspaceKeys

if TYPE_CHECKING:  # the single-workspace set-up never loads the OAuth stores or the crypto
    from bot.installs import Installs
    from bot.vault import Vault

log = logging.getLogger(__name__)

# A video id that cannot exist: the key check asks for it and expects "not found" (or "not yours"),
# which Knowlify only answers once the key has authenticated; a bad key gets 401 first.
PROBE_VIDEO = "00000000-0000-4000-8000-000000000000"
CHECK_TIMEOUT_SECONDS = 2.0  # the check runs before the modal's ack (3 s)


def job_key_id(team_id: str) -> str:
    return f"team:{team_id}"


def budget_for(store: Store, key: str, settings: Settings) -> Budget:
    window = settings.knowlify_window_seconds
    return Budget(
        store,
        key_id=key_fingerprint(key),
        window_seconds=window,
        margin_seconds=min(1.0, window / 5),
    )


# --- keys -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class KeyProblem:
    message: str


class Workspaces:
    def __init__(self, settings: Settings, store: Store, installs: Installs, vault: Vault) -> None:
        self.settings = settings
        self.store = store
        self.installs = installs
        self.vault = vault
        self.keys = WorkspaceKeys(installs.engine)

    def connected(self, team_id: str) -> WorkspaceKey | None:
        return self.keys.get(team_id)

    def key_of(self, row: WorkspaceKey) -> str | None:
        from bot.vault import VaultError

        try:
            return self.vault.decrypt(row.team_id, row.ciphertext)
        except VaultError as exc:
            log.error("Knowlify key of workspace %s unusable: %s", row.team_id, exc)
            return None

    def check(self, key: str) -> KeyProblem | None:
        """Format, then one Knowlify request that only an authenticated key gets past: GET of a
        video that does not exist (404, or 403 under an organization). It costs one request of the
        key's videos bucket (counted in its budget, as an action)."""
        if not KEY_PATTERN.match(key):
            return KeyProblem(
                "That is not a Knowlify API key: it should be kn_ followed by 64 hexadecimal characters "
                "(copy it from the Developer tab of your Knowlify dashboard)."
            )
        try:
            budget_for(self.store, key, self.settings).acquire("videos", "action")
        except BudgetExhausted as exc:
            return KeyProblem(
                f"This key's Knowlify rate limit is used up right now; try again in {int(exc.retry_after) + 1} s."
            )
        try:
            response = httpx.get(
                f"{self.settings.knowlify_api_base.rstrip('/')}/v1/videos/{PROBE_VIDEO}",
                headers={"X-API-Key": key, "Accept": "application/json"},
                timeout=CHECK_TIMEOUT_SECONDS,
                follow_redirects=False,
            )
        except httpx.HTTPError as exc:
            log.warning("Knowlify key check got no answer: %s", type(exc).__name__)
            return KeyProblem("Knowlify did not answer, so the key could not be checked. Try again in a minute.")
        if response.status_code in (401,):
            return KeyProblem(
                "Knowlify did not accept this key (it may have been revoked). Check it in your Knowlify dashboard."
            )
        if response.status_code in (200, 403, 404):
            return None
        if response.status_code == 429:
            return KeyProblem("Knowlify is rate-limiting this key right now; try again in a minute.")
        return KeyProblem(
            f"Knowlify answered {response.status_code}, so the key could not be checked. Try again in a minute."
        )

    def connect(self, team_id: str, key: str, user_id: str) -> str:
        """Store the key encrypted; returns what may be shown of it (its last four characters)."""
        self.keys.put(
            team_id,
            ciphertext=self.vault.encrypt(team_id, key),
            last4=key[-4:],
            key_id=key_fingerprint(key),
            user_id=user_id,
        )
        log.info("Knowlify key connected in workspace %s by %s", team_id, user_id)
        return key[-4:]

    def disconnect(self, team_id: str) -> bool:
        removed = self.keys.remove(team_id)
        if removed:
            log.info("Knowlify key removed in workspace %s", team_id)
        return removed

    def uninstall(self, team_id: str) -> None:
        """app_uninstalled / tokens_revoked: installation, token and key go; repeated calls are no-ops."""
        self.installs.forget(team_id)
        self.keys.remove(team_id)
        log.info("workspace %s uninstalled: installation, token and Knowlify key deleted", team_id)


# --- the worker: one per workspace that is installed and has a key ------------------------------


class TeamStore:
    """The store as one workspace's worker sees it: every claim is limited to that workspace's
    rows. (The worker claims every key's rows, since in a single-workspace deployment a row of
    another key was made under an earlier KNOWLIFY_API_KEY; here another key is another workspace.)"""

    def __init__(self, store: Store, team_id: str) -> None:
        self._store = store
        self._team_id = team_id

    def claim(self, model: Any, owner: str, lease_seconds: float, limit: int, *conditions: Any) -> list[Any]:
        return self._store.claim(model, owner, lease_seconds, limit, model.team_id == self._team_id, *conditions)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)


@dataclass
class _TeamWorker:
    signature: tuple[str, float, str]
    worker: Worker
    knowlify: KnowlifyClient

    def close(self) -> None:
        """Stop renewing this workspace's leases, then close its Knowlify client."""
        self.worker.close()
        self.knowlify.close()


class WorkspaceWorkers:
    """One Worker per ready workspace, each ticking in its own thread of a small pool: a workspace
    with a long queue (a long tick) never makes another wait for its turn. Each also has its own
    key's budget and claims only its own rows. A workspace whose previous tick still runs is
    skipped, not queued twice; with more ready workspaces than threads, each tick hands them to the
    pool starting with a different one."""

    THREADS = 8

    def __init__(
        self,
        settings: Settings,
        store: Store,
        workspaces: Workspaces,
        *,
        owner: str | None,
        worker_factory: Callable[..., Worker] = Worker,
    ) -> None:
        self.settings = settings
        self.store = store
        self.workspaces = workspaces
        self.owner = owner
        self.worker_factory = worker_factory
        self.stopping = threading.Event()
        self._teams: dict[str, _TeamWorker] = {}
        self._turn = 0
        self._pool = ThreadPoolExecutor(max_workers=self.THREADS, thread_name_prefix="workspace-worker")
        self._running: dict[str, Future[int]] = {}

    def _refresh(self) -> list[_TeamWorker]:
        installs = self.workspaces.installs
        installed = set(installs.store.teams())
        ready: dict[str, _TeamWorker] = {}
        for row in self.workspaces.keys.all():
            if row.team_id not in installed:
                continue
            token = installs.bot_token(row.team_id)
            if not token:
                continue
            signature = (row.key_id, row.connected_at, key_fingerprint(token))
            current = self._teams.get(row.team_id)
            if current is None or current.signature != signature:
                key = self.workspaces.key_of(row)
                if key is None:
                    continue
                if current is not None:
                    self._retire(row.team_id, current)
                current = self._build(row.team_id, key, token, signature)
            ready[row.team_id] = current
        for team, gone in self._teams.items():
            if team not in ready:
                self._retire(team, gone)
                log.info("workspace %s no longer installed or connected: its jobs are not polled", team)
        self._teams = ready
        return list(ready.values())

    def _retire(self, team_id: str, team: _TeamWorker) -> None:
        """Close a workspace's old client once its running tick (if any) is over: a create in
        flight is never cut off (its outcome would be unknown)."""
        running = self._running.get(team_id)
        if running is not None and not running.done():
            running.add_done_callback(lambda _: team.close())
        else:
            team.close()

    def _build(self, team_id: str, key: str, token: str, signature: tuple[str, float, str]) -> _TeamWorker:
        budget = budget_for(self.store, key, self.settings)
        knowlify = KnowlifyClient(
            key,
            self.settings.knowlify_api_base,
            budget,
            timeout=self.settings.knowlify_timeout_seconds,
        )
        slack = SlackOps(make_client(token, self.settings.slack_api_base))
        worker = self.worker_factory(
            TeamStore(self.store, team_id),
            knowlify,
            slack,
            key_id=job_key_id(team_id),
            poll_seconds=self.settings.knowlify_poll_seconds,
            owner=self.owner,
            poll_policy=budget.poll_policy(self.settings.knowlify_poll_seconds),
        )
        worker.stopping = self.stopping
        if self.owner is None:
            self.owner = worker.owner  # one lease owner for every workspace of this replica
        return _TeamWorker(signature, worker, knowlify)

    def tick(self) -> int:
        """Start a tick for every ready workspace whose last one has finished; returns how many
        started (their work goes on in the pool)."""
        workers = self._refresh()
        if not workers:
            return 0
        self._turn = (self._turn + 1) % len(workers)
        started = 0
        for team_id, team in (list(self._teams.items()) * 2)[self._turn : self._turn + len(workers)]:
            running = self._running.get(team_id)
            if running is not None and not running.done():
                continue
            self._running[team_id] = self._pool.submit(self._tick_one, team_id, team)
            started += 1
        return started

    @staticmethod
    def _tick_one(team_id: str, team: _TeamWorker) -> int:
        try:
            return team.worker.tick()
        except Exception:  # one workspace's trouble must not stop the others' jobs
            log.exception("worker tick of workspace %s failed; retrying on the next tick", team_id)
            return 0

    def close(self) -> None:
        self.stopping.set()
        self._pool.shutdown(wait=True)
        for team in self._teams.values():
            team.close()
        self._teams = {}

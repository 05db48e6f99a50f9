"""Installing the app into many workspaces: Bolt's OAuth flow on slack_sdk's SQLAlchemy stores.

- Installations and OAuth states live in DATABASE_URL, so every replica sees every installation and
  a `state` issued by one replica is consumed by another.
- Bot tokens are encrypted before they reach the store and decrypted when found (bot.vault); the
  token columns are TEXT (storage.models), since a ciphertext is about 180 characters and
  slack_sdk's VARCHAR(200) would only just hold it (and overflow on PostgreSQL for longer tokens).
- Their tables are created by the schema migration (storage/migrations/versions/0004_workspaces.py),
  like every other table, so replicas starting together never race to create them.
- A state is consumed by one atomic DELETE: of two replicas racing on one state only one succeeds.
- On SQLite the bot's own engine begins every transaction with BEGIN IMMEDIATE (storage.db), so a
  mere read would wait behind the worker's write for up to 2 s; Bolt looks the installation up on
  every request before the ack, so the stores get an engine of their own that reads without the
  write lock (WAL lets readers run beside the writer).
"""

from __future__ import annotations

import copy
import logging
from datetime import UTC, datetime
from typing import Any

import sqlalchemy
from slack_bolt.authorization.authorize import InstallationStoreAuthorize
from slack_bolt.oauth.oauth_flow import OAuthFlow
from slack_bolt.oauth.oauth_settings import OAuthSettings
from slack_sdk import WebClient
from slack_sdk.oauth.installation_store import Bot, Installation, InstallationStore
from slack_sdk.oauth.installation_store.sqlalchemy import SQLAlchemyInstallationStore
from slack_sdk.oauth.state_store.sqlalchemy import SQLAlchemyOAuthStateStore
from slack_sdk.oauth.state_utils import OAuthStateUtils
from sqlalchemy import Table, and_, event
from sqlalchemy.engine import Engine

from bot.vault import Vault, VaultError
from storage.db import BUSY_TIMEOUT_MS, normalize_url
from storage.models import slack_bots, slack_installations, slack_oauth_states

log = logging.getLogger(__name__)

# The bot scopes of manifest.yml (a unit test keeps the two equal).
BOT_SCOPES = [
    "commands",
    "chat:write",
    "channels:join",
    "channels:history",
    "groups:history",
    "im:history",
    "reactions:read",
    "users:read",
]
STATE_SECONDS = 600
_TOKEN_COLUMNS = ("bot_token", "bot_refresh_token", "user_token", "user_refresh_token")


def make_store_engine(url: str) -> Engine:
    """The engine the OAuth stores use. On SQLite: plain deferred transactions (a read never takes
    the write lock), the same busy timeout for their rare writes. Elsewhere: a normal pool."""
    url = normalize_url(url)
    if not url.startswith("sqlite"):
        return sqlalchemy.create_engine(url, pool_pre_ping=True)
    engine = sqlalchemy.create_engine(
        url, connect_args={"check_same_thread": False, "timeout": BUSY_TIMEOUT_MS / 1000}
    )

    @event.listens_for(engine, "connect")
    def _pragmas(dbapi_conn, _record):  # type: ignore[no-untyped-def]
        cur = dbapi_conn.cursor()
        cur.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        cur.close()

    return engine


class TokenStore(SQLAlchemyInstallationStore):
    """slack_sdk's store on the bot's own table definitions (storage.models: token columns wide
    enough for ciphertext, created by the migrations)."""

    @classmethod
    def build_installations_table(cls, metadata: sqlalchemy.MetaData, table_name: str) -> Table:
        return slack_installations

    @classmethod
    def build_bots_table(cls, metadata: sqlalchemy.MetaData, table_name: str) -> Table:
        return slack_bots

    def delete_older(self, team_id: str | None, installed_at: float) -> None:
        """Drop what a reinstall replaced: older rows (and tokens) of the same workspace."""
        cutoff = datetime.fromtimestamp(installed_at, tz=UTC).replace(tzinfo=None)
        with self.engine.begin() as conn:
            for table in (self.bots, self.installations):
                conn.execute(
                    table.delete().where(
                        and_(
                            table.c.client_id == self.client_id,
                            table.c.team_id == team_id,
                            table.c.installed_at < cutoff,
                        )
                    )
                )


class StateStore(SQLAlchemyOAuthStateStore):
    """Single use across replicas: consuming is one DELETE, and only the replica whose DELETE
    removed the row accepts the state (slack_sdk's SELECT-then-DELETE lets two accept it)."""

    @classmethod
    def build_oauth_states_table(cls, metadata: sqlalchemy.MetaData, table_name: str) -> Table:
        return slack_oauth_states

    def consume(self, state: str) -> bool:
        if not state:
            return False
        now = datetime.now(tz=UTC).replace(tzinfo=None)
        c = self.oauth_states.c
        try:
            with self.engine.begin() as conn:
                result = conn.execute(
                    self.oauth_states.delete().where(and_(c.state == state, c.expire_at > now))
                )
                return bool(result.rowcount == 1)
        except sqlalchemy.exc.SQLAlchemyError as exc:
            log.warning("OAuth state could not be checked: %s", type(exc).__name__)
            return False


class CookieOptionalStateUtils(OAuthStateUtils):
    """The state is single-use and kept server-side, which is what refuses a forged, reused or
    expired callback. The browser cookie Bolt also sets is checked when the browser sends it (a
    different install started in the same browser is refused), but its absence is not fatal: an
    installer whose browser drops cookies between slack.com and here can still finish."""

    def is_valid_browser(self, state: str | None, request_headers: dict[str, Any]) -> bool:
        if not state:
            return False
        cookies = request_headers.get("cookie") or []
        if isinstance(cookies, str):
            cookies = [cookies]
        sent = [
            part.strip().split("=", 1)[1]
            for header in cookies
            for part in header.split(";")
            if part.strip().startswith(f"{self.cookie_name}=")
        ]
        return not sent or state in sent


class EncryptedInstallationStore(InstallationStore):
    """Encrypts tokens (bound to their workspace) on the way in, decrypts them on the way out."""

    def __init__(self, inner: TokenStore, vault: Vault) -> None:
        self.inner = inner
        self.vault = vault

    @property
    def logger(self) -> logging.Logger:
        return log

    def _seal(self, obj: Any) -> Any:
        sealed = copy.copy(obj)
        for name in _TOKEN_COLUMNS:
            value = getattr(sealed, name, None)
            if value:
                setattr(sealed, name, self.vault.encrypt(obj.team_id or "", value))
        return sealed

    def _open(self, obj: Any) -> Any:
        if obj is None:
            return None
        for name in _TOKEN_COLUMNS:
            value = getattr(obj, name, None)
            if value:
                try:
                    setattr(obj, name, self.vault.decrypt(obj.team_id or "", value))
                except VaultError as exc:
                    log.error("installation of workspace %s unusable: %s", obj.team_id, exc)
                    return None
        return obj

    def save(self, installation: Installation) -> None:
        self.inner.save(self._seal(installation))
        self.inner.delete_older(installation.team_id, installation.installed_at)

    def save_bot(self, bot: Bot) -> None:
        self.inner.save_bot(self._seal(bot))

    def find_bot(
        self,
        *,
        enterprise_id: str | None,
        team_id: str | None,
        is_enterprise_install: bool | None = False,
    ) -> Bot | None:
        return self._open(
            self.inner.find_bot(
                enterprise_id=enterprise_id, team_id=team_id, is_enterprise_install=is_enterprise_install
            )
        )

    def find_installation(
        self,
        *,
        enterprise_id: str | None,
        team_id: str | None,
        user_id: str | None = None,
        is_enterprise_install: bool | None = False,
    ) -> Installation | None:
        return self._open(
            self.inner.find_installation(
                enterprise_id=enterprise_id,
                team_id=team_id,
                user_id=user_id,
                is_enterprise_install=is_enterprise_install,
            )
        )

    def delete_bot(self, *, enterprise_id: str | None, team_id: str | None) -> None:
        self.inner.delete_bot(enterprise_id=enterprise_id, team_id=team_id)

    def delete_installation(
        self, *, enterprise_id: str | None, team_id: str | None, user_id: str | None = None
    ) -> None:
        self.inner.delete_installation(enterprise_id=enterprise_id, team_id=team_id, user_id=user_id)

    def delete_all(self, *, enterprise_id: str | None, team_id: str | None) -> None:
        self.inner.delete_all(enterprise_id=enterprise_id, team_id=team_id)

    def teams(self) -> list[str]:
        """Every installed workspace (for the worker)."""
        c = self.inner.bots.c
        with self.inner.engine.connect() as conn:
            rows = conn.execute(
                sqlalchemy.select(c.team_id)
                .where(and_(c.client_id == self.inner.client_id, c.bot_token.is_not(None)))
                .distinct()
            )
            return [str(r[0]) for r in rows if r[0]]


class Installs:
    """Everything distribution needs from Slack's side, built once per process."""

    def __init__(
        self,
        *,
        client_id: str,
        client_secret: str,
        database_url: str,
        slack_api_base: str,
        vault: Vault,
    ) -> None:
        self.engine = make_store_engine(database_url)
        self.tokens = TokenStore(client_id=client_id, engine=self.engine)
        self.states = StateStore(expiration_seconds=STATE_SECONDS, engine=self.engine)
        self.store = EncryptedInstallationStore(self.tokens, vault)
        settings = OAuthSettings(
            client_id=client_id,
            client_secret=client_secret,
            scopes=BOT_SCOPES,
            user_scopes=[],
            installation_store=self.store,
            installation_store_bot_only=True,
            state_store=self.states,
            state_expiration_seconds=STATE_SECONDS,
            install_page_rendering_enabled=False,
            token_rotation_expiration_minutes=None,  # type: ignore[arg-type]  # rotation stays off (README)
        )
        settings.state_utils = CookieOptionalStateUtils(
            cookie_name=settings.state_cookie_name, expiration_seconds=STATE_SECONDS
        )
        # oauth.v2.access and auth.test of the new token go through SLACK_API_URL like every call.
        self.flow = OAuthFlow(client=WebClient(base_url=slack_api_base, timeout=10), settings=settings)
        self.authorize = InstallationStoreAuthorize(
            logger=log,
            installation_store=self.store,
            bot_only=True,
            # Bolt checks each found token with auth.test before the listener runs; cached per token
            # (a reinstall brings a new token, an uninstall removes the row find_bot reads).
            cache_enabled=True,
        )

    def installer(self, team_id: str) -> str | None:
        found = self.store.find_installation(enterprise_id=None, team_id=team_id)
        return found.user_id if found is not None else None

    def bot_token(self, team_id: str) -> str | None:
        bot = self.store.find_bot(enterprise_id=None, team_id=team_id)
        return bot.bot_token if bot is not None else None

    def forget(self, team_id: str) -> None:
        self.store.delete_all(enterprise_id=None, team_id=team_id)
        self.authorize.authorize_result_cache.clear()

    def close(self) -> None:
        self.engine.dispose()


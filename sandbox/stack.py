"""The whole system on 127.0.0.1: the Knowlify simulator, the Slack stand-in and the real bot
(HTTP mode, real SQLite file, real worker), plus a driver that sends signed Slack requests.

Used by `knowlify-slack demo`, the end-to-end tests and the benchmarks, so all three exercise the
same wiring a deployment runs.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bot.http_server import create_http_app
from bot.runtime import Runtime
from bot.settings import Settings
from sandbox.knowlify_sim import KnowlifySimulator, SimConfig
from sandbox.servers import ServerThread
from sandbox.slack_driver import SlackDriver
from sandbox.slack_standin import SlackStandIn

BOT_TOKEN = "xoxb-sandbox-0000000000-bot"
APP_TOKEN = "xapp-1-sandbox-app-token"
SIGNING_SECRET = "sandbox-signing-secret-0123456789"
API_KEY = "kn_" + "5a" * 32


@dataclass
class StackConfig:
    stage_seconds: float = 0.2
    window_seconds: float = 60.0
    poll_seconds: float = 0.05
    tick_seconds: float = 0.02
    database_path: str | None = None
    database_url: str | None = None  # any DATABASE_URL (PostgreSQL…); default: SQLite at database_path
    api_key: str = API_KEY
    revert_emoji: str = "rewind"
    sim: dict[str, Any] = field(default_factory=dict)


class LocalStack:
    def __init__(self, config: StackConfig | None = None) -> None:
        self.config = config or StackConfig()
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        url = self.config.database_url
        if url and url.startswith("sqlite:///"):  # a SQLite URL names the file the tests read too
            self.config.database_path, self.config.database_url = url.removeprefix("sqlite:///"), None
        if self.config.database_path is None and self.config.database_url is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="knowlify-slack-")
            self.config.database_path = str(Path(self._tmp.name) / "bot.db")
        self.sim = KnowlifySimulator(
            SimConfig(
                stage_seconds=self.config.stage_seconds,
                window_seconds=self.config.window_seconds,
                **self.config.sim,
            )
        )
        self.slack = SlackStandIn(bot_token=BOT_TOKEN, app_token=APP_TOKEN)
        self.sim_server = ServerThread(self.sim.app)
        self.slack_server = ServerThread(self.slack.app)
        self.runtime: Runtime | None = None
        self.bot_server: ServerThread | None = None
        self.driver: SlackDriver | None = None

    @property
    def database_url(self) -> str:
        return self.config.database_url or f"sqlite:///{self.config.database_path}"

    def settings(self, **overrides: Any) -> Settings:
        values: dict[str, Any] = dict(
            slack_bot_token=BOT_TOKEN,
            slack_signing_secret=SIGNING_SECRET,
            slack_app_token=APP_TOKEN,
            slack_api_url=f"{self.slack_server.url}/api/",
            knowlify_api_key=self.config.api_key,
            knowlify_api_base=self.sim_server.url,
            database_url=self.database_url,
            knowlify_poll_seconds=self.config.poll_seconds,
            knowlify_window_seconds=self.config.window_seconds,
            knowlify_revert_emoji=self.config.revert_emoji,
            worker_tick_seconds=self.config.tick_seconds,
        )
        values.update(overrides)
        return Settings(_env_file=None, **values)  # type: ignore[call-arg]

    def bot_env(self) -> dict[str, str]:
        """The same settings as environment variables, for a bot in another process."""
        s = self.settings()
        env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "KNOWLIFY_"))}
        env.update(
            SLACK_BOT_TOKEN=BOT_TOKEN,
            SLACK_SIGNING_SECRET=SIGNING_SECRET,
            SLACK_APP_TOKEN=APP_TOKEN,
            SLACK_API_URL=s.slack_api_url,
            KNOWLIFY_API_KEY=self.config.api_key,
            KNOWLIFY_API_BASE=s.knowlify_api_base,
            DATABASE_URL=s.database_url,
            KNOWLIFY_POLL_SECONDS=str(s.knowlify_poll_seconds),
            KNOWLIFY_WINDOW_SECONDS=str(s.knowlify_window_seconds),
            KNOWLIFY_REVERT_EMOJI=s.knowlify_revert_emoji,
            WORKER_TICK_SECONDS=str(s.worker_tick_seconds),
            # One replica under a stable name: after a kill, the restarted process takes its rows
            # back at once, as a pod restarted under the same name would.
            KNOWLIFY_WORKER_ID="sandbox-bot-1",
        )
        return env

    def driver_payloads(self) -> SlackDriver:
        """Payload builders for Socket Mode envelopes (no bot HTTP endpoint needed)."""
        return SlackDriver(
            "http://unused.invalid/slack/events", SIGNING_SECRET, hooks_base=self.slack_server.url
        )

    def start(self, *, bot: bool = True, worker: bool = True) -> LocalStack:
        self.sim_server.start()
        self.slack_server.start()
        if bot:
            self.start_bot(worker=worker)
        return self

    def start_bot(self, *, worker: bool = True, **overrides: Any) -> Runtime:
        """(Re)start the bot against the same database: what a deploy or a crash-restart does."""
        runtime = Runtime(self.settings(**overrides))
        self.runtime = runtime
        self.bot_server = ServerThread(create_http_app(runtime.app, SIGNING_SECRET, runtime.probes)).start()
        if self.driver is not None:
            self.driver.close()
        self.driver = SlackDriver(
            f"{self.bot_server.url}/slack/events", SIGNING_SECRET, hooks_base=self.slack_server.url
        )
        if worker:
            runtime.start_worker()
        return runtime

    def stop_bot(self) -> None:
        if self.bot_server is not None:
            self.bot_server.stop()
            self.bot_server = None
        if self.runtime is not None:
            self.runtime.stop()
            self.runtime = None

    def stop(self) -> None:
        self.stop_bot()
        if self.driver is not None:
            self.driver.close()
        self.slack_server.stop()
        self.sim_server.stop()
        if self._tmp is not None:
            self._tmp.cleanup()

    def __enter__(self) -> LocalStack:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

"""The bot as a real `knowlify-slack serve` process, for tests that must kill it the hard way.

`LocalStack.stop_bot()` shuts the in-process bot down politely; a crash is different: SIGKILL leaves
leases held, transactions half-done and HTTP requests unanswered. `BotProcess` runs
`python -m bot.cli serve` in a child process against the stack's SQLite file (the simulator and the
Slack stand-in stay in the test process), waits for `GET /healthz`, and can `kill()` (SIGKILL) and
`restart()` it. Its stderr (the bot's log) goes to a file that survives every restart, so tests can
read what it said across crashes.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import IO, Any

import httpx

from sandbox.slack_driver import SlackDriver
from sandbox.stack import SIGNING_SECRET, LocalStack


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


class BotProcess:
    """One `knowlify-slack serve` child process at a time, restartable on the same database."""

    def __init__(
        self,
        stack: LocalStack,
        log_path: str | Path,
        *,
        host: str = "127.0.0.1",
        log_level: str = "INFO",
        env: dict[str, str] | None = None,
        start_timeout: float = 20.0,
        launcher: list[str] | None = None,
    ) -> None:
        self.stack = stack
        self.log_path = Path(log_path)
        self.host = host
        self.log_level = log_level
        self.env = {**stack.bot_env(), **(env or {})}
        self.start_timeout = start_timeout
        # What runs `knowlify-slack`; arguments (--log-level, serve, --host, --port) are appended.
        self.launcher = launcher or [sys.executable, "-m", "bot.cli"]
        self.port: int | None = None
        self.proc: subprocess.Popen[bytes] | None = None
        self.driver: SlackDriver | None = None
        self.starts = 0
        self.kills = 0
        self._log: IO[bytes] | None = None

    @property
    def url(self) -> str:
        assert self.port is not None, "not started"
        return f"http://{self.host}:{self.port}"

    def start(self) -> BotProcess:
        """Start the child and block until it answers /healthz (raises with its log if it does not)."""
        if self.proc is not None and self.proc.poll() is None:
            raise RuntimeError("bot process already running")
        self.port = free_port(self.host)
        self._log = open(self.log_path, "ab")  # noqa: SIM115 (kept open for the child's lifetime)
        self._log.write(f"--- start #{self.starts + 1} on port {self.port} ---\n".encode())
        self._log.flush()
        cmd = [*self.launcher, "--log-level", self.log_level, "serve"]
        cmd += ["--host", self.host, "--port", str(self.port)]
        self.proc = subprocess.Popen(
            cmd, env=self.env, stdin=subprocess.DEVNULL, stdout=self._log, stderr=self._log
        )
        self.starts += 1
        self._wait_healthy()
        if self.driver is not None:
            self.driver.close()
        self.driver = SlackDriver(
            f"{self.url}/slack/events", SIGNING_SECRET, hooks_base=self.stack.slack_server.url
        )
        return self

    def _wait_healthy(self) -> None:
        deadline = time.monotonic() + self.start_timeout
        with httpx.Client(timeout=1.0) as client:
            while True:
                assert self.proc is not None
                if self.proc.poll() is not None:
                    raise RuntimeError(
                        f"bot exited with status {self.proc.returncode} during start-up:\n{self.log_tail()}"
                    )
                with contextlib.suppress(httpx.HTTPError):
                    if client.get(f"{self.url}/healthz").status_code == 200:
                        return
                if time.monotonic() > deadline:
                    self.kill()
                    raise RuntimeError(f"bot not healthy within {self.start_timeout}s:\n{self.log_tail()}")
                time.sleep(0.02)

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill(self) -> None:
        """SIGKILL: no shutdown hook runs, leases stay held, in-flight requests are cut off."""
        if self.proc is not None:
            if self.proc.poll() is None:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.kills += 1
            self.proc.wait(10)
            self.proc = None
        if self._log is not None:
            self._log.write(b"--- SIGKILL ---\n")
            self._log.close()
            self._log = None

    def restart(self) -> BotProcess:
        self.kill()
        return self.start()

    def stop(self) -> None:
        """Polite stop (SIGTERM, then SIGKILL), for test teardown."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.proc = None
        if self._log is not None:
            self._log.close()
            self._log = None
        if self.driver is not None:
            self.driver.close()
            self.driver = None

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join(self.log_text().splitlines()[-lines:])

    def __enter__(self) -> BotProcess:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

"""A throwaway PostgreSQL server for tests, benches and CI.

`start_postgres(base_dir)` runs `initdb` and `postgres` (PostgreSQL's own binaries, found on PATH)
on a free 127.0.0.1 port with its unix socket in a private temp directory, and stops the server on
exit from the `with` block (and at interpreter exit, and — via the parent-death signal — if the
Python process dies without cleaning up).

PostgreSQL refuses to run as root. When this process is root (CI containers), the server runs as the
unprivileged `nobody` user with its data directory in a fresh directory under the system temp dir
owned by that user: `base_dir` may sit below a root-only directory (pytest's tmp dirs are 0700) that
`nobody` cannot enter. Otherwise the data directory is `base_dir/pgdata` and the server runs as self.

Durability is traded for speed, which is what a throwaway test server wants: `fsync=off`,
`synchronous_commit=off` and `full_page_writes=off`. A crash of the machine loses the data, which
is deleted at the end anyway; a crash of a server *process* (what the tests exercise) loses nothing.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import psycopg

SUPERUSER = "postgres"
_PR_SET_PDEATHSIG = 1


class PostgresUnavailable(RuntimeError):
    """The PostgreSQL server binaries are not on PATH (or will not start here)."""


def binaries_available() -> bool:
    return all(shutil.which(b) for b in ("initdb", "postgres"))


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _die_with_parent() -> None:  # runs in the child between fork and exec
    with contextlib.suppress(Exception):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGINT, 0, 0, 0)


@dataclass
class PostgresServer:
    """A running server; `url` reaches its `postgres` database as the superuser."""

    port: int
    data_dir: Path
    socket_dir: Path
    process: subprocess.Popen[bytes]
    _owned_dir: Path | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _counter: int = 0

    @property
    def url(self) -> str:
        return self.url_for("postgres")

    def url_for(self, database: str) -> str:
        return f"postgresql+psycopg://{SUPERUSER}@127.0.0.1:{self.port}/{database}"

    def _connect(self) -> psycopg.Connection:
        return psycopg.connect(host="127.0.0.1", port=self.port, user=SUPERUSER, dbname="postgres",
                               autocommit=True)

    def new_database(self, name: str = "test", template: str = "template0") -> str:
        """Create a database (unique name derived from `name`) as a copy of `template` (default:
        empty) and return its URL.

        CREATE DATABASE … TEMPLATE copies the template's files: measured 0.1-0.3 s here on a loaded
        2-core machine, whether empty or holding the bot's migrated schema, so a test can start
        from a migrated copy instead of running the migrations (0.6-1 s). Truncating the tables of a
        shared database instead would be faster still but lets state leak between tests.
        The template must have no open connections while it is copied.
        """
        slug = re.sub(r"[^a-z0-9_]", "_", name.lower())[:40] or "db"
        with self._lock:
            self._counter += 1
            dbname = f"{slug}_{self._counter}"
        with self._connect() as conn:
            conn.execute(f'CREATE DATABASE "{dbname}" TEMPLATE "{template}"')
        return self.url_for(dbname)

    def drop_database(self, url: str) -> None:
        """Drop a database made by new_database, disconnecting whoever still uses it."""
        dbname = url.rsplit("/", 1)[1]
        with self._connect() as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{dbname}" WITH (FORCE)')

    def stop(self) -> None:
        """Fast shutdown (SIGINT: disconnect clients, checkpoint, exit), then remove the data."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self._owned_dir is not None:
            shutil.rmtree(self._owned_dir, ignore_errors=True)
            self._owned_dir = None


def _identity() -> tuple[dict[str, int | list[int]], int | None, int | None]:
    """Popen keyword arguments to drop root privileges, and the uid/gid to own the data."""
    if os.geteuid() != 0:
        return {}, None, None
    who = pwd.getpwnam("nobody")
    return {"user": who.pw_uid, "group": who.pw_gid, "extra_groups": []}, who.pw_uid, who.pw_gid


@contextlib.contextmanager
def start_postgres(base_dir: Path, *, timeout: float = 30.0) -> Iterator[PostgresServer]:
    """Start a fresh server; yields a PostgresServer; stops it and deletes its data afterwards."""
    server = launch_postgres(base_dir, timeout=timeout)
    try:
        yield server
    finally:
        server.stop()


def launch_postgres(base_dir: Path, *, timeout: float = 30.0) -> PostgresServer:
    """start_postgres without the `with`: the caller (or interpreter exit) calls `stop()`."""
    if not binaries_available():
        raise PostgresUnavailable("initdb/postgres not found on PATH")
    base_dir = Path(base_dir)
    base_dir.mkdir(parents=True, exist_ok=True)
    drop, uid, gid = _identity()
    root = Path(tempfile.mkdtemp(prefix="knowlify-pg-", dir=None if uid is not None else base_dir))
    owned: Path | None = root
    data_dir, socket_dir = root / "data", root / "sock"
    socket_dir.mkdir()
    if uid is not None and gid is not None:
        for p in (root, socket_dir):
            os.chown(p, uid, gid)
    env = {**os.environ, "LC_ALL": "C", "LANG": "C", "TZ": "UTC"}
    init = subprocess.run(
        ["initdb", "-D", str(data_dir), "-U", SUPERUSER, "--auth=trust", "-E", "UTF8", "--no-sync",
         "--no-instructions"],
        cwd=root, env=env, capture_output=True, **drop,  # type: ignore[call-overload]
    )
    if init.returncode != 0:
        if owned is not None:
            shutil.rmtree(owned, ignore_errors=True)
        raise PostgresUnavailable(f"initdb failed: {init.stderr.decode(errors='replace').strip()[-500:]}")
    log_path = base_dir / "postgres.log"
    last_error = ""
    for _attempt in range(3):  # a free port can be taken between choosing it and binding it
        port = _free_port()
        log = open(log_path, "ab")  # noqa: SIM115 (lives as long as the server)
        proc = subprocess.Popen(
            ["postgres", "-D", str(data_dir), "-p", str(port),
             "-c", "listen_addresses=127.0.0.1", "-c", f"unix_socket_directories={socket_dir}",
             "-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off",
             "-c", "max_connections=300", "-c", "shared_buffers=64MB"],
            cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            preexec_fn=_die_with_parent,  # only prctl between fork and exec
            **drop,  # type: ignore[call-overload]
        )
        log.close()
        server = PostgresServer(port=port, data_dir=data_dir, socket_dir=socket_dir, process=proc,
                                _owned_dir=owned)
        deadline = time.monotonic() + timeout
        while proc.poll() is None and time.monotonic() < deadline:
            try:
                server._connect().close()
            except psycopg.OperationalError as exc:
                last_error = str(exc)
                time.sleep(0.05)
                continue
            atexit.register(server.stop)
            return server
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        last_error = log_path.read_text(errors="replace")[-500:] or last_error
    if owned is not None:
        shutil.rmtree(owned, ignore_errors=True)
    raise PostgresUnavailable(f"postgres did not start: {last_error.strip()}")

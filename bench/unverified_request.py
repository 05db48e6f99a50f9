"""What one unsigned 64 MiB POST to /slack/events costs the served bot, next to stock Bolt.

Each row starts a fresh server process, resets its peak-RSS counter, sends one unsigned POST
(no X-Slack-Signature) of --mib MiB — once announced by Content-Length, once streamed chunked —
from a raw socket that keeps sending while it waits for the answer, then reads the process's
VmRSS/VmHWM (/proc/<pid>/status) and the growth of its log file, and checks it still answers.

Targets, all logging at INFO to a file as a deployment would:
  stock  a plain Bolt app behind slack_bolt.adapter.starlette.SlackRequestHandler, under uvicorn
  serve  `knowlify-slack serve` (sandbox.bot_process.BotProcess) against the local stack
  before `knowlify-slack serve` from another checkout (--before DIR), e.g. the previous commit:
             git archive <commit> | tar -x -C /tmp/before

    python bench/unverified_request.py [--quick] [--mib N] [--before DIR]
"""

from __future__ import annotations

import argparse
import contextlib
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import _common
from _common import table

_common.clean_env()

import httpx  # noqa: E402

from sandbox import raw_http  # noqa: E402
from sandbox.bot_process import BotProcess, free_port  # noqa: E402
from sandbox.stack import BOT_TOKEN, SIGNING_SECRET, LocalStack, StackConfig  # noqa: E402

MIB = 1024 * 1024


@dataclass
class Server:
    """A running server process: where to send, whom to measure, where it logs."""

    url: str
    pid: int
    log_path: Path
    stop: object  # () -> None


def _status_kb(pid: int) -> dict[str, int]:
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in ("VmRSS", "VmHWM"):
            fields[name] = int(value.split()[0])
    return fields


def _reset_peak(pid: int) -> bool:
    """Make VmHWM start again from the current RSS (Linux: write 5 to clear_refs)."""
    try:
        Path(f"/proc/{pid}/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def serve_stock(port: int) -> None:
    """Child mode: the plainest Bolt HTTP app, logging at INFO as Bolt's own examples set it up."""
    import logging

    import uvicorn
    from slack_bolt import App
    from slack_bolt.adapter.starlette import SlackRequestHandler
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.routing import Route

    # force: _common.clean_env() already configured this process to log errors only.
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s", force=True
    )
    app = App(token=BOT_TOKEN, signing_secret=SIGNING_SECRET, token_verification_enabled=False)

    @app.command("/knowlify")
    def _knowlify(ack):  # type: ignore[no-untyped-def]
        ack("ok")

    handler = SlackRequestHandler(app)

    async def events(request: Request):  # type: ignore[no-untyped-def]
        return await handler.handle(request)

    async def healthz(_: Request):  # type: ignore[no-untyped-def]
        from starlette.responses import JSONResponse

        return JSONResponse({"ok": True})

    uvicorn.run(
        Starlette(routes=[Route("/slack/events", events, methods=["POST"]), Route("/healthz", healthz)]),
        host="127.0.0.1",
        port=port,
        log_level="warning",
    )


def _wait_healthy(url: str, proc: subprocess.Popen[bytes], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{url}/healthz", timeout=1.0).status_code == 200:
                return
        if time.monotonic() > deadline:
            raise RuntimeError("server not healthy")
        time.sleep(0.05)


def start_stock(tmp: Path) -> Server:
    port = free_port()
    log_path = tmp / "stock.log"
    log = open(log_path, "ab")  # noqa: SIM115 (the child writes it)
    proc = subprocess.Popen(
        [sys.executable, __file__, "--serve-stock", str(port)], stdout=log, stderr=log, stdin=subprocess.DEVNULL
    )
    url = f"http://127.0.0.1:{port}"
    _wait_healthy(url, proc)

    def stop() -> None:
        proc.terminate()
        proc.wait(10)
        log.close()

    return Server(url, proc.pid, log_path, stop)


def start_bot(stack: LocalStack, tmp: Path, name: str, checkout: str | None = None) -> Server:
    launcher = None
    if checkout:
        boot = f"import sys; sys.path.insert(0, {checkout!r}); from bot.cli import main; sys.exit(main())"
        launcher = [sys.executable, "-c", boot]
    bot = BotProcess(stack, tmp / f"{name}.log", log_level="INFO", launcher=launcher).start()
    assert bot.proc is not None
    return Server(bot.url, bot.proc.pid, bot.log_path, bot.stop)


def measure(server: Server, mib: int, chunked: bool) -> list[object]:
    size = mib * MIB
    exact = _reset_peak(server.pid)
    before = _status_kb(server.pid)
    log_before = server.log_path.stat().st_size
    headers = {
        "Content-Type": "application/x-www-form-urlencoded",
        "X-Slack-Request-Timestamp": str(int(time.time())),
    }
    answer = raw_http.post(
        f"{server.url}/slack/events",
        raw_http.blocks(size),
        content_length=None if chunked else size,
        headers=headers,
        timeout=120,
    )
    after = _status_kb(server.pid)
    t0 = time.perf_counter()
    alive = httpx.get(f"{server.url}/healthz", timeout=10).status_code
    health_ms = (time.perf_counter() - t0) * 1000
    log_growth = server.log_path.stat().st_size - log_before
    peak_base = before["VmHWM"] if exact else before["VmRSS"]
    return [
        "chunked" if chunked else "Content-Length",
        answer.status,
        f"{answer.seconds:.3f}",
        f"{answer.body_bytes_sent / MIB:.1f}",
        f"{before['VmRSS'] / 1024:.0f}",
        f"{(after['VmHWM'] - peak_base) / 1024:.1f}" + ("" if exact else "*"),
        f"{(after['VmRSS'] - before['VmRSS']) / 1024:.1f}",
        f"{log_growth:,}",
        f"{alive} in {health_ms:.0f} ms",
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--mib", type=int, default=None, help="body size in MiB (default 64)")
    parser.add_argument("--quick", action="store_true", help="16 MiB instead of 64")
    parser.add_argument("--before", metavar="DIR", help="also measure `serve` from this checkout")
    parser.add_argument("--serve-stock", type=int, metavar="PORT", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_stock:
        serve_stock(args.serve_stock)
        return 0
    if args.mib is None:
        args.mib = 16 if args.quick else 64

    rows: list[list[object]] = []
    stack = LocalStack(StackConfig(stage_seconds=2.0, poll_seconds=5.0, tick_seconds=0.5)).start(bot=False)
    try:
        with tempfile.TemporaryDirectory(prefix="bench-unverified-") as tmp_name:
            tmp = Path(tmp_name)
            targets = [("stock Bolt adapter", lambda: start_stock(tmp))]
            if args.before:
                targets.append((f"serve @ {args.before}", lambda: start_bot(stack, tmp, "before", args.before)))
            targets.append(("knowlify-slack serve", lambda: start_bot(stack, tmp, "serve")))
            for name, start in targets:
                for chunked in (False, True):
                    server = start()  # a fresh process per row: no row inherits another's memory
                    try:
                        rows.append([name, *measure(server, args.mib, chunked)])
                    finally:
                        server.stop()  # type: ignore[operator]
    finally:
        stack.stop()

    table(
        [
            "target",
            "framing",
            "status",
            "answer s",
            "MiB sent by then",
            "RSS MB",
            "peak +MB",
            "RSS +MB after",
            "log +bytes",
            "healthz after",
        ],
        rows,
        title=f"One unsigned {args.mib} MiB POST /slack/events (a fresh process per row, logging at INFO)",
    )
    print(
        "peak +MB: VmHWM growth over the request (peak counter reset first; * = not resettable, "
        "growth over VmRSS). MiB sent by then: how much of the upload the server had taken when it "
        "answered. Targets: < 20 MB peak growth, < 10 KB log growth."
    )
    return 0


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        raise SystemExit(main())

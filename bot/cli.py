"""`knowlify-slack serve | socket | demo | simulator`.

Settings problems end the process with status 2 and one line naming the setting, never a traceback.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from typing import NoReturn

from bot.settings import Settings, SettingsError, load_settings


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        """A usage error is a start-up error: one line, JSON when KNOWLIFY_LOG_FORMAT=json asks for it."""
        from bot import log_setup

        if log_setup.requested_format() == "json":
            log_setup.startup_error(f"{self.prog}: {message}", "json")
            raise SystemExit(2)
        super().error(message)


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="knowlify-slack", description="Knowlify explainer videos in Slack")
    parser.add_argument("--log-level", default=os.environ.get("LOG_LEVEL", "INFO"))
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="HTTP mode: POST /slack/events and GET /healthz")
    serve.add_argument("--host", default="0.0.0.0")
    serve.add_argument("--port", type=int, default=3000)
    socket = sub.add_parser("socket", help="Socket Mode (no public URL needed)")
    socket.add_argument("--health-port", type=int, default=None)
    socket.add_argument(
        "--health-host",
        default="127.0.0.1",
        help="address the health server binds (default 127.0.0.1; 0.0.0.0 to be probed from outside)",
    )
    demo = sub.add_parser(
        "demo", help="the whole conversation offline, against the simulator and a Slack stand-in"
    )
    demo.add_argument("--stage-seconds", type=float, default=0.3)
    simulator = sub.add_parser("simulator", help="the bundled Knowlify API simulator")
    simulator.add_argument("--host", default="127.0.0.1")
    simulator.add_argument("--port", type=int, default=8400)
    simulator.add_argument("--stage-seconds", type=float, default=2.0)
    simulator.add_argument("--window-seconds", type=float, default=60.0)
    return parser


def _settings(mode: str) -> Settings:
    try:
        return load_settings(mode)  # type: ignore[arg-type]
    except SettingsError as exc:
        from bot import log_setup

        log_setup.startup_error(f"knowlify-slack: {exc}")
        raise SystemExit(2) from None


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    level = getattr(logging, str(args.log_level).upper(), logging.INFO)
    if args.command == "simulator":
        from sandbox.knowlify_sim import SimConfig, run_simulator

        if args.stage_seconds <= 0 or args.window_seconds <= 0:
            print(
                "knowlify-slack: --stage-seconds and --window-seconds must be greater than 0", file=sys.stderr
            )
            return 2
        logging.basicConfig(level=level)
        run_simulator(
            args.host,
            args.port,
            SimConfig(stage_seconds=args.stage_seconds, window_seconds=args.window_seconds),
        )
        return 0
    if args.command == "demo":
        from sandbox.demo import run_demo

        return run_demo(stage_seconds=args.stage_seconds)

    from bot import log_setup

    settings = _settings(args.command)
    fmt = settings.knowlify_log_format
    log_setup.install(settings.secrets(), level, fmt)
    from bot.runtime import Runtime

    try:
        runtime = Runtime(settings, socket_mode=args.command == "socket")
    except Exception as exc:  # Slack unreachable or the token refused at auth.test
        log_setup.startup_error(
            f"knowlify-slack: could not start: {type(exc).__name__}: {log_setup.RedactSecrets(settings.secrets()).scrub(str(exc))}",
            fmt,
        )
        return 1
    if args.command == "serve":
        import uvicorn

        from bot.http_server import create_http_app

        runtime.start_worker()
        try:
            uvicorn.run(
                create_http_app(runtime.app, settings.secret("slack_signing_secret"), runtime.probes),
                host=args.host,
                port=args.port,
                **log_setup.uvicorn_options(fmt),
            )
        finally:
            runtime.stop()
        return 0
    from bot.socket_mode import run_socket

    run_socket(runtime, args.health_port, args.health_host)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The two comparison apps of bench/ack_latency.py, each run as its own process like the bot.

    python bench/_ack_app.py bare|single [--log-level L] serve --host H --port P

  bare    a Bolt app whose `/knowlify` only acknowledges, behind the bot's own HTTP shell
          (bot.http_server: body limit, signature check, dispatch in the thread pool);
  single  the real bot (`knowlify-slack serve`, same settings from the environment) with its job
          rows committed one transaction per command: the group commit switched off.

The arguments after the mode are those BotProcess gives `knowlify-slack`.
"""

from __future__ import annotations

import argparse
import sys

import _common  # noqa: F401  (puts the checkout on sys.path)


def serve_bare(host: str, port: int) -> None:
    import uvicorn
    from slack_bolt import Ack, App
    from slack_sdk import WebClient

    from bot.http_server import create_http_app
    from bot.settings import Settings

    settings = Settings()
    secret = settings.slack_signing_secret.get_secret_value() if settings.slack_signing_secret else ""
    token = settings.slack_bot_token.get_secret_value() if settings.slack_bot_token else None
    app = App(
        client=WebClient(token=token, base_url=settings.slack_api_url),
        signing_secret=secret,
        process_before_response=True,
    )

    @app.command("/knowlify")
    def _ack(ack: Ack) -> None:
        ack(text="ok")

    uvicorn.run(create_http_app(app, secret), host=host, port=port, log_level="warning", access_log=False)


def main() -> None:
    mode, rest = sys.argv[1], sys.argv[2:]
    if mode == "bare":
        parser = argparse.ArgumentParser()
        parser.add_argument("--log-level")
        parser.add_argument("command")
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int)
        args = parser.parse_args(rest)
        serve_bare(args.host, args.port)
        return
    if mode == "single":
        import storage.store_base

        storage.store_base.group_commit_supported = lambda engine: False  # type: ignore[assignment]
    from bot.cli import main as cli

    raise SystemExit(cli(rest))


if __name__ == "__main__":
    main()

"""What an operator sees over real HTTP: `/metrics` after a conversation, `/healthz` and `/readyz`
while the database comes and goes."""

from __future__ import annotations

import os
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families

from bot.health import sqlite_path
from tests.helpers import card_ts, posted, wait_until


def scrape(base: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    response = httpx.get(f"{base}/metrics", timeout=5)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(response.text)
        for s in family.samples
    }


def value(samples: dict, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def test_metrics_move_as_a_conversation_goes(stack):
    base = stack.bot_server.url
    before = scrape(base)

    stack.driver.command("Explain how HTTPS works --duration 60")
    stack.driver.command("help")
    stack.slack.wait_for(posted("Your video is ready", thread=True), timeout=20)
    stack.driver.reply("Make scene 2 more dramatic", thread_ts=card_ts(stack))
    stack.slack.wait_for(posted("Edit applied", thread=True), timeout=20)
    after = scrape(base)

    def delta(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert delta("knowlify_slack_commands_received_total", kind="create") == 1
    assert delta("knowlify_slack_commands_received_total", kind="help") == 1
    assert delta("knowlify_slack_events_received_total", type="message") == 1
    assert delta("knowlify_slack_acks_total", outcome="ok") == 3
    assert delta("knowlify_slack_ack_seconds_count") == 3
    assert delta("knowlify_slack_ack_seconds_bucket", le="3.0") == 3, "every ack inside Slack's 3 s"
    assert delta("knowlify_slack_knowlify_requests_total", bucket="videos", method="POST", status="200") == 1
    assert delta("knowlify_slack_knowlify_requests_total", bucket="videos", method="GET", status="200") >= 1
    assert delta("knowlify_slack_knowlify_requests_total", bucket="edits", method="POST", status="202") == 1
    assert delta("knowlify_slack_knowlify_rate_limited_total", bucket="videos") == 0
    assert delta("knowlify_slack_link_lag_seconds_count") == 1
    assert delta("knowlify_slack_worker_tick_seconds_count") >= 1
    # Read from the database at scrape time: one finished video, one finished edit.
    assert value(after, "knowlify_slack_jobs", kind="video", state="complete") == 1
    assert value(after, "knowlify_slack_jobs", kind="edit", state="complete") == 1
    assert value(after, "process_resident_memory_bytes") > 0


def test_a_429_is_counted(stack):
    base = stack.bot_server.url
    before = scrape(base)
    stack.sim.inject_fault(path_prefix="/v1/videos", method="POST", status=429, times=1, retry_after=0.2)
    stack.driver.command("Explain tides")
    stack.slack.wait_for(posted("Your video is ready", thread=True), timeout=30)
    after = scrape(base)
    assert value(after, "knowlify_slack_knowlify_rate_limited_total", bucket="videos") - value(
        before, "knowlify_slack_knowlify_rate_limited_total", bucket="videos"
    ) == 1


def test_readyz_follows_the_database_and_healthz_stays_up(stack, db_kind, request):
    base = stack.bot_server.url
    assert httpx.get(f"{base}/healthz").status_code == 200
    assert httpx.get(f"{base}/readyz").status_code == 200

    if db_kind == "sqlite":
        # The volume is gone (as root, chmod would not stop the bot from reading the file).
        folder = Path(str(sqlite_path(stack.database_url))).parent
        away = folder.with_name(folder.name + "-away")
        lose, restore = (lambda: os.rename(folder, away)), (lambda: os.rename(away, folder))
    else:
        # The database is gone from the server (its connections cut), then back.
        server = request.getfixturevalue("pg_server")
        name = stack.database_url.rsplit("/", 1)[1]

        def restore() -> None:
            with server._connect() as conn:
                conn.execute(f'CREATE DATABASE "{name}"')

        lose = lambda: server.drop_database(stack.database_url)  # noqa: E731
    lose()
    try:
        wait_until(
            lambda: httpx.get(f"{base}/readyz", timeout=5).status_code == 503,
            timeout=15,
            what="readyz to report the lost database",
        )
        answer = httpx.get(f"{base}/readyz", timeout=5)
        assert "database" in answer.json()["status"]
        assert httpx.get(f"{base}/healthz").status_code == 200, "liveness does not depend on the database"
    finally:
        restore()
    wait_until(
        lambda: httpx.get(f"{base}/readyz", timeout=5).status_code == 200,
        timeout=15,
        what="readyz to recover",
    )

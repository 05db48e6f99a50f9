"""Prometheus metrics, all named `knowlify_slack_*`, served on `GET /metrics`.

The counters live in one registry per process (not prometheus_client's global one): the process is
what Prometheus scrapes, and tests that build several bots in one process read deltas without
tripping over duplicate registrations. What depends on one bot — the jobs by state, read from its
database at scrape time — is a collector that `exposition()` adds per bot.

Every helper here is cheap and never raises into the code it measures.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from typing import Any

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Histogram,
    PlatformCollector,
    ProcessCollector,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from slack_bolt import App, BoltRequest, BoltResponse
from sqlalchemy.engine import Engine

from bot.acks_first import REQUESTS

log = logging.getLogger(__name__)

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
REGISTRY = CollectorRegistry(auto_describe=True)
# RSS, CPU and open files of this process (process_*), and the Python version (python_info).
ProcessCollector(registry=REGISTRY)
PlatformCollector(registry=REGISTRY)

_FAST = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 3.0, 5.0, 10.0)
_SLOW = (0.1, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)

COMMANDS = Counter(
    "knowlify_slack_commands_received",
    "/knowlify commands received, by kind (create, help, list, form)",
    ["kind"],
    registry=REGISTRY,
)
EVENTS = Counter(
    "knowlify_slack_events_received",
    "Events API events and interactions received, by type (message, reaction_added, block_actions…)",
    ["type"],
    registry=REGISTRY,
)
ACKS = Counter(
    "knowlify_slack_acks",
    "Answers given to Slack, by outcome (ok, retry_later = 503 so Slack redelivers, unhandled, "
    "unauthorized, malformed, error)",
    ["outcome"],
    registry=REGISTRY,
)
ACK_SECONDS = Histogram(
    "knowlify_slack_ack_seconds",
    "Time from a parsed Slack request to the bot's answer (Slack allows 3 s)",
    buckets=_FAST,
    registry=REGISTRY,
)
KNOWLIFY_REQUESTS = Counter(
    "knowlify_slack_knowlify_requests",
    "Requests sent to Knowlify, by bucket (videos, edits), method and HTTP status "
    "(not_sent / no_answer when none arrived)",
    ["bucket", "method", "status"],
    registry=REGISTRY,
)
KNOWLIFY_SECONDS = Histogram(
    "knowlify_slack_knowlify_request_seconds",
    "Duration of Knowlify requests, by bucket",
    ["bucket"],
    buckets=_FAST,
    registry=REGISTRY,
)
RATE_LIMITED = Counter(
    "knowlify_slack_knowlify_rate_limited",
    "429 answers from Knowlify, by bucket (the bot's own budget should keep this at 0)",
    ["bucket"],
    registry=REGISTRY,
)
BUDGET_WAITS = Counter(
    "knowlify_slack_budget_waits",
    "Knowlify calls postponed before sending, by bucket, purpose (action, poll) and reason "
    "(budget = our own per-window cap, paused = a pause Knowlify imposed)",
    ["bucket", "purpose", "reason"],
    registry=REGISTRY,
)
LINK_LAG = Histogram(
    "knowlify_slack_link_lag_seconds",
    "From the poll that saw a render complete to the link posted in its thread",
    buckets=_FAST,
    registry=REGISTRY,
)
TICK_SECONDS = Histogram(
    "knowlify_slack_worker_tick_seconds",
    "Duration of one worker tick (claim due jobs, move each one step)",
    buckets=(0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
    registry=REGISTRY,
)
TICK_FAILURES = Counter(
    "knowlify_slack_worker_tick_failures",
    "Worker ticks that failed as a whole (database unavailable…)",
    registry=REGISTRY,
)


def _safely(fn: Any) -> Any:
    """A metric must never break what it measures."""

    def wrapper(*args: Any, **kwargs: Any) -> None:
        try:
            fn(*args, **kwargs)
        except Exception:
            log.debug("metric %s not recorded", fn.__name__, exc_info=True)

    wrapper.__name__ = fn.__name__
    wrapper.__doc__ = fn.__doc__
    return wrapper


# --- what Slack sends --------------------------------------------------------------------------


def command_kind(text: str) -> str:
    """The kind of a `/knowlify` text, by the same rule as the parser: only bare help/list are words."""
    words = text.split()
    if not words:
        return "form"
    if len(words) == 1 and words[0].lower() in ("help", "list"):
        return words[0].lower()
    return "create"


@_safely
def received(body: dict[str, Any]) -> None:
    if body.get("command"):
        COMMANDS.labels(command_kind(str(body.get("text") or ""))).inc()
        return
    kind = str(body.get("type") or "unknown")
    if kind == "event_callback":
        kind = str((body.get("event") or {}).get("type") or "unknown")
    EVENTS.labels(kind[:40]).inc()


def ack_outcome(status: int) -> str:
    if 200 <= status < 300:
        return "ok"
    return {401: "unauthorized", 503: "retry_later", 404: "unhandled"}.get(status, "error")


@_safely
def acked(outcome: str, seconds: float) -> None:
    ACKS.labels(outcome).inc()
    ACK_SECONDS.observe(seconds)


class MeteredApp(App):
    """A Bolt app that counts what it receives and times every answer, in HTTP and Socket Mode alike
    (both hand each request to `dispatch` and send back what it returns)."""

    def dispatch(self, req: BoltRequest) -> BoltResponse:
        started = time.perf_counter()
        if isinstance(req.body, dict):
            received(req.body)
        try:
            with REQUESTS.answering():  # Socket Mode's requests too (bot.acks_first)
                response = super().dispatch(req)
        except Exception:
            acked("malformed", time.perf_counter() - started)
            raise
        acked(ack_outcome(response.status), time.perf_counter() - started)
        return response


# --- what the bot calls and delivers -------------------------------------------------------------


@_safely
def knowlify_request(bucket: str, method: str, status: int | str, seconds: float) -> None:
    KNOWLIFY_REQUESTS.labels(bucket, method, str(status)).inc()
    KNOWLIFY_SECONDS.labels(bucket).observe(seconds)
    if status == 429:
        RATE_LIMITED.labels(bucket).inc()


@_safely
def budget_wait(bucket: str, purpose: str, reason: str) -> None:
    BUDGET_WAITS.labels(bucket, purpose, reason).inc()


@_safely
def link_posted(*, seen_at: float, now: float) -> None:
    """Called right after a completion's link reached its thread; `seen_at` is when the poll saw it."""
    LINK_LAG.observe(max(0.0, now - seen_at))


@_safely
def worker_tick(seconds: float, *, failed: bool = False) -> None:
    TICK_SECONDS.observe(seconds)
    if failed:
        TICK_FAILURES.inc()


# --- the database, read at scrape time -------------------------------------------------------------


class JobsByState:
    """`knowlify_slack_jobs{kind, state}`: two GROUP BY queries per scrape. Every replica sharing a
    database reports the same numbers (aggregate them with max, not sum)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def collect(self) -> Iterator[Metric]:
        family = GaugeMetricFamily(
            "knowlify_slack_jobs",
            "Jobs in the database, by kind (video, edit) and state",
            labels=["kind", "state"],
        )
        try:
            # A raw DBAPI connection: no BEGIN IMMEDIATE (the engine's SQLite hook), so a scrape never
            # takes the write lock the 3-second ack path needs.
            conn = self.engine.raw_connection()
            try:
                cursor = conn.cursor()
                for kind, table in (("video", "video_job"), ("edit", "edit_job")):
                    cursor.execute(f"SELECT state, count(*) FROM {table} GROUP BY state")
                    for value, count in cursor.fetchall():
                        family.add_metric([kind, str(value)], float(count))
                cursor.close()
                conn.rollback()
            finally:
                conn.close()
        except Exception as exc:  # the database is down: /readyz says so; the scrape still answers
            log.debug("jobs by state not read: %s", type(exc).__name__)
            return
        yield family


class _Exposition:
    def __init__(self, *collectors: Any) -> None:
        self.collectors = collectors

    def collect(self) -> Iterator[Metric]:
        for collector in self.collectors:
            yield from collector.collect()


def exposition(engine: Engine | None) -> bytes:
    """The text Prometheus scrapes: the process's metrics, plus this bot's jobs by state."""
    extra = (JobsByState(engine),) if engine is not None else ()
    return generate_latest(_Exposition(REGISTRY, *extra))  # type: ignore[arg-type]

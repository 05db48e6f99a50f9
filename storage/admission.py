"""Taking new video jobs: the per-person daily limit and the insert, in one transaction.

A `/knowlify` command is answered only after its row is committed, and the answer depends on the
person's count of the last 24 hours. Read in one transaction and written in another, two commands
of one person arriving together could both pass a limit with one left, and each check cost a query
of its own before the ack. Here one transaction serves a whole batch of new jobs (storage.group_commit
hands it everything that arrived meanwhile, or a single job without it):

1. on PostgreSQL, a transaction-scoped advisory lock per person with a limit, taken in one sorted
   order, so that replicas admitting the same person's requests queue instead of each passing the
   check (SQLite's BEGIN IMMEDIATE already makes writers take turns);
2. one SELECT of the counted requests in the window, for every person of the batch;
3. each job in arrival order: refused if the limit says so (a request already stored never is:
   it was counted when it was taken), else counted at once for the jobs behind it;
4. one INSERT … ON CONFLICT (request_key) DO NOTHING RETURNING for the rest: a request key stored
   already (Slack sent the request twice) comes back as a duplicate, stored once.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any

from sqlalchemy import bindparam, or_, select, text
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import IntegrityError

from storage.models import VideoJob

# Requests that never count (a video the bot could not post in the channel); storage.store_base
# re-exports it beside the edit states.
UNCOUNTED_VIDEO_STATES = ("needs_invite",)


@dataclass(frozen=True)
class DailyLimit:
    """A person's limit: `refuse_until(times, now)` gets the created_at of their counted requests
    inside the last `window` seconds and answers None (one more fits) or when the next one will."""

    window: float
    refuse_until: Callable[[Sequence[float], float], float | None]


@dataclass(frozen=True)
class Admission:
    """What became of one new job: stored under `job_id`; a duplicate of a stored request; or
    refused by the person's limit until `refused_until`."""

    job_id: int | None = None
    duplicate: bool = False
    refused_until: float | None = None


@dataclass
class NewJob:
    values: dict[str, Any]  # the row's columns (storage.admission.video_row)
    limit: DailyLimit | None


@cache
def _defaults() -> dict[str, Any]:
    """Every column's default, read once off the model: a new row is built as a dict, without an
    ORM object (its construction was a measurable share of the ack)."""
    blank = VideoJob(request_key="", team_id="", channel_id="", user_id="", key_id="", prompt="")
    return {c.name: getattr(blank, c.name) for c in _table().columns if c.name != "id"}


def _table() -> Any:
    return VideoJob.__table__  # type: ignore[attr-defined]


def video_row(values: dict[str, Any], now: float) -> dict[str, Any]:
    """A complete video_job row from the columns a listener knows, due now."""
    return {**_defaults(), **values, "created_at": now, "updated_at": now, "next_run_at": now}


def supports_batches(engine: Engine) -> bool:
    """Dialects with INSERT … ON CONFLICT DO NOTHING … RETURNING."""
    return engine.dialect.name in ("sqlite", "postgresql")


@cache
def _insert_statement(dialect: str) -> Any:
    table = _table()
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as dialect_insert
    else:
        from sqlalchemy.dialects.sqlite import insert as dialect_insert  # type: ignore[assignment]
    stmt = dialect_insert(table).on_conflict_do_nothing(index_elements=["request_key"])
    return stmt.returning(table.c.id, table.c.request_key)


@cache
def _counted_statement() -> Any:
    t = _table()
    return select(t.c.team_id, t.c.user_id, t.c.created_at).where(
        t.c.team_id.in_(bindparam("teams", expanding=True)),
        t.c.user_id.in_(bindparam("users", expanding=True)),
        t.c.created_at > bindparam("since"),
        t.c.state.not_in(UNCOUNTED_VIDEO_STATES),
        # A video that failed before Knowlify gave it a uuid cost nothing.
        or_(t.c.state != "failed", t.c.knowlify_uuid.is_not(None)),
    )


@cache
def _stored_keys_statement() -> Any:
    t = _table()
    return select(t.c.request_key).where(t.c.request_key.in_(bindparam("keys", expanding=True)))


def person_lock_key(team_id: str, user_id: str) -> int:
    """A stable signed 64-bit advisory-lock key per person (the same in every replica)."""
    digest = hashlib.blake2b(f"knowlify-person:{team_id}:{user_id}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


def admit(conn: Connection, jobs: Sequence[NewJob], now: float) -> list[Admission]:
    """Decide and store `jobs` (rows built by video_row) inside the caller's transaction; one
    Admission per job, in order. The caller commits, and tells nobody before it has."""
    limited = [job for job in jobs if job.limit is not None]
    times: dict[tuple[str, str], list[float]] = defaultdict(list)
    if limited:
        people = sorted({(j.values["team_id"], j.values["user_id"]) for j in limited})
        if conn.dialect.name == "postgresql":
            keys = sorted(person_lock_key(team, user) for team, user in people)
            conn.execute(
                text("SELECT pg_advisory_xact_lock(k) FROM unnest(CAST(:keys AS bigint[])) AS k"), {"keys": keys}
            )
        since = now - max(j.limit.window for j in limited if j.limit is not None)
        rows = conn.execute(
            _counted_statement(),
            {"teams": sorted({t for t, _ in people}), "users": sorted({u for _, u in people}), "since": since},
        )
        for team, user, created_at in rows:
            times[(team, user)].append(created_at)

    decided: list[Admission | None] = []
    taking: list[NewJob] = []
    refused: list[tuple[int, float]] = []
    seen: set[str] = set()
    for i, job in enumerate(jobs):
        person = (job.values["team_id"], job.values["user_id"])
        until = None
        if job.limit is not None:
            window_start = now - job.limit.window
            until = job.limit.refuse_until([t for t in times[person] if t > window_start], now)
        if until is not None:
            refused.append((i, until))
            decided.append(None)
            continue
        if job.values["request_key"] not in seen:  # a key twice in one batch counts once
            seen.add(job.values["request_key"])
            times[person].append(now)
        taking.append(job)
        decided.append(None)

    stored = _insert(conn, [j.values for j in taking])
    if refused:
        keys = [jobs[i].values["request_key"] for i, _ in refused]
        already = set(conn.execute(_stored_keys_statement(), {"keys": keys}).scalars())
        for i, until in refused:
            known = jobs[i].values["request_key"] in already
            decided[i] = Admission(duplicate=True) if known else Admission(refused_until=until)
    for i, job in enumerate(jobs):
        if decided[i] is None:
            # The first of a key stored in this batch takes its id; any other copy is a duplicate.
            job_id = stored.pop(job.values["request_key"], None)
            decided[i] = Admission(job_id=job_id) if job_id is not None else Admission(duplicate=True)
    return [d for d in decided if d is not None]


@cache
def _unnest_insert() -> Any:
    """PostgreSQL: the batch as one array per column, `INSERT … SELECT FROM unnest(…)`. The text of
    the statement is the same for every batch size, so psycopg parses it once; a multi-row VALUES
    list has a placeholder per value (1,500 for 50 jobs) and psycopg re-parses that text in Python
    for every batch, about 45 ms of CPU for 50 jobs, on the acks' interpreter."""
    from sqlalchemy.dialects import postgresql

    dialect = postgresql.dialect()  # type: ignore[no-untyped-call]
    columns = [c for c in _table().columns if c.name != "id"]
    names = ", ".join(c.name for c in columns)
    arrays = ", ".join(f"CAST(:{c.name} AS {c.type.compile(dialect=dialect)}[])" for c in columns)
    return text(
        f"INSERT INTO {_table().name} ({names}) SELECT * FROM unnest({arrays}) "
        "ON CONFLICT (request_key) DO NOTHING RETURNING id, request_key"
    ), [c.name for c in columns]


def _insert(conn: Connection, rows: list[dict[str, Any]]) -> dict[str, int]:
    """Insert what is new among `rows`; request_key → id of the rows stored now."""
    if not rows:
        return {}
    if conn.dialect.name == "postgresql":
        stmt, names = _unnest_insert()
        arrays = {name: [row[name] for row in rows] for name in names}
        return {key: row_id for row_id, key in conn.execute(stmt, arrays)}
    if supports_batches(conn.engine):
        return {key: row_id for row_id, key in conn.execute(_insert_statement(conn.dialect.name), rows)}
    stored: dict[str, int] = {}
    for row in rows:  # any other database: one row at a time, a duplicate rolled back alone
        try:
            with conn.begin_nested():
                result = conn.execute(_table().insert(), row)
        except IntegrityError:
            continue
        key = result.inserted_primary_key
        assert key is not None
        stored[row["request_key"]] = int(key[0])
    return stored

"""What must hold after any fault (docs/architecture.md, "The promises every flow keeps"), written
once for every fault test.

A test records what the users did in a `Ledger` (commands, thread replies, revert reactions), lets
the fault happen, waits for the bot to settle (`settle`) and then calls `check`, which asserts:
- each command has exactly one status card;
- each job is in its true final state: `complete`/`failed` as the simulator says (`unknown` only
  where the test allows it), and its completion or failure was told exactly once;
- Knowlify created exactly one video per job (POST /v1/videos has no idempotency key);
- one Knowlify edit per distinct reply (Idempotency-Key replays allowed), one result post per edit;
- one successful revert per revert intent, and one revert post for it.
It returns each user's wait for their result, for the delay table (tests/faults/report.py).

The bot's database is read with a plain driver connection (read-only sqlite3, or psycopg in
autocommit on PostgreSQL): it works the same whether the bot runs in-process or in a child process,
and never takes the write lock the bot needs.
"""

from __future__ import annotations

import sqlite3
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg.rows import dict_row

from sandbox.slack_standin import Call
from sandbox.stack import LocalStack
from tests.helpers import wait_until as wait_for

READY = "Your video is ready"
EDIT_RESULT = ("Edit applied", "The edit failed", "Knowlify no longer finds this edit")
REVERTED = ":rewind: Edit reverted"
VIDEO_FINAL = ("complete", "failed", "needs_invite")
EDIT_FINAL = ("complete", "error", "refused", "reverted")


# --- reading the bot's state -------------------------------------------------------------------


_pg: dict[str, psycopg.Connection[dict[str, Any]]] = {}  # the last PostgreSQL database read


def _pg_rows(url: str, sql: str, args: tuple[Any, ...]) -> list[dict[str, Any]]:
    conninfo = url.replace("postgresql+psycopg://", "postgresql://", 1)
    con = _pg.get(conninfo)
    if con is None or con.closed:
        for old in _pg.values():
            old.close()
        _pg.clear()
        con = _pg[conninfo] = psycopg.connect(conninfo, autocommit=True, row_factory=dict_row)
    try:
        return con.execute(sql.replace("?", "%s"), args).fetchall()
    except psycopg.errors.UndefinedTable:  # the bot has not created its tables yet
        return []


def db_rows(stack: LocalStack, sql: str, *args: Any) -> list[dict[str, Any]]:
    if not stack.database_url.startswith("sqlite"):
        return _pg_rows(stack.database_url, sql, args)
    con = sqlite3.connect(f"file:{stack.config.database_path}?mode=ro", uri=True, timeout=10)
    con.row_factory = sqlite3.Row
    try:
        return [dict(r) for r in con.execute(sql, args)]
    except sqlite3.OperationalError as exc:  # the bot has not created its tables yet
        if "no such table" in str(exc):
            return []
        raise
    finally:
        con.close()


def video_rows(stack: LocalStack) -> list[dict[str, Any]]:
    return db_rows(stack, "SELECT * FROM video_job ORDER BY id")


def edit_rows(stack: LocalStack) -> list[dict[str, Any]]:
    return db_rows(stack, "SELECT * FROM edit_job ORDER BY id")


def job_for(stack: LocalStack, prompt: str) -> dict[str, Any] | None:
    rows = [r for r in video_rows(stack) if r["prompt"] == prompt]
    return rows[-1] if rows else None


def card_ts_of(stack: LocalStack, prompt: str, timeout: float = 20.0) -> str:
    def stored() -> str | None:
        job = job_for(stack, prompt)
        return job["card_ts"] if job else None

    return str(wait_for(stored, timeout, f"the card of {prompt!r}"))


def sim_videos(stack: LocalStack) -> list[dict[str, Any]]:
    """Every video Knowlify created, with its current status."""
    with stack.sim._lock:
        uuids = list(stack.sim._videos)
    out = []
    for u in uuids:
        v = stack.sim.video(u)
        out.append({"uuid": u, "task": v["item"]["task"], "status": v["status"]})
    return out


def sim_edits(stack: LocalStack) -> list[dict[str, Any]]:
    """Every edit Knowlify created, with its current status."""
    with stack.sim._lock:
        ids = list(stack.sim._edits)
    out = []
    for edit_id in ids:
        e = stack.sim.edit(edit_id)
        out.append({"edit_id": edit_id, "edit_request": e["edit_request"], "status": e["status"]})
    return out


def posts(stack: LocalStack) -> list[Call]:
    return [c for c in stack.slack.calls_of("chat.postMessage") if c.response.get("ok")]


def knowlify_429s(stack: LocalStack) -> list[Any]:
    return [c for c in stack.sim.calls if c.status == 429]


# --- what the users did ------------------------------------------------------------------------


@dataclass
class VideoIntent:
    prompt: str
    channel: str
    sent_at: float
    expect: str = "complete"  # or "failed", "needs_invite"
    unknown_ok: bool = False  # the fault may leave this one `unknown` (user told, asked to retry)


@dataclass
class EditIntent:
    text: str
    prompt: str
    channel: str
    reply_ts: str
    sent_at: float
    expect: str = "complete"  # or "error", "refused"
    revert_sent_at: float | None = None
    kept: bool = False  # sent while the video was still rendering: its wait includes the render


@dataclass
class Ledger:
    videos: dict[str, VideoIntent] = field(default_factory=dict)
    edits: dict[str, EditIntent] = field(default_factory=dict)  # by reply_ts

    def command(
        self, prompt: str, *, channel: str = "C0DESIGN1", sent_at: float | None = None, **kw: Any
    ) -> None:
        assert prompt not in self.videos, "prompts must be unique within a test"
        self.videos[prompt] = VideoIntent(prompt, channel, time.time() if sent_at is None else sent_at, **kw)

    def edit(
        self, text: str, prompt: str, reply_ts: str, *, sent_at: float | None = None, **kw: Any
    ) -> EditIntent:
        assert all(e.text != text for e in self.edits.values()), "edit texts must be unique within a test"
        intent = EditIntent(
            text,
            prompt,
            self.videos[prompt].channel,
            reply_ts,
            time.time() if sent_at is None else sent_at,
            **kw,
        )
        self.edits[reply_ts] = intent
        return intent

    def revert(self, reply_ts: str, *, sent_at: float | None = None) -> None:
        intent = self.edits[reply_ts]
        if intent.revert_sent_at is None:
            intent.revert_sent_at = time.time() if sent_at is None else sent_at


# --- waiting until the bot has nothing left to do ----------------------------------------------


CARD_WORDS = {"complete": "Done", "failed": "Failed", "unknown": "did not answer"}


def card_text(stack: LocalStack, job: dict[str, Any]) -> str | None:
    """What the status card shows now (None if there is no card, or a user deleted it)."""
    if not job["card_ts"]:
        return None
    for m in stack.slack.messages(job["channel_id"]):
        if m["ts"] == job["card_ts"]:
            return str(m["text"])
    return None


def unsettled(stack: LocalStack, ledger: Ledger) -> list[str]:
    """What is still missing or in flight (empty when settled).

    A row is done when it is in a final state and either released, or its last post is stored: a
    process killed after that post may leave a stale lease behind on a row nobody needs to touch.
    """
    missing: list[str] = []
    videos = {r["prompt"]: r for r in video_rows(stack)}
    for intent in ledger.videos.values():
        job = videos.get(intent.prompt)
        final = (*VIDEO_FINAL, "unknown") if intent.unknown_ok else VIDEO_FINAL
        if job is None:
            missing.append(f"no job for {intent.prompt!r}")
            continue
        told = job["final_ts"] or job["unknown_notice_ts"]
        if job["state"] not in final or (job["lease_owner"] is not None and not told):
            missing.append(f"job {intent.prompt!r} is {job['state']} (lease {job['lease_owner']})")
            continue
        word, shown = CARD_WORDS.get(job["state"]), card_text(stack, job)
        if word and shown is not None and word not in shown:
            missing.append(f"job {intent.prompt!r} is {job['state']} but its card says {shown[-60:]!r}")
    edits = {r["reply_ts"]: r for r in edit_rows(stack)}
    for intent in ledger.edits.values():
        row = edits.get(intent.reply_ts)
        if row is None:
            missing.append(f"no edit for reply {intent.text!r}")
            continue
        reverting = intent.revert_sent_at is not None
        told = row["result_ts"] and (not reverting or row["revert_result_ts"])
        if row["state"] not in EDIT_FINAL or (row["lease_owner"] is not None and not told):
            missing.append(f"edit {intent.text!r} is {row['state']} (lease {row['lease_owner']})")
        elif reverting and row["revert_state"] not in ("reverted", "refused"):
            missing.append(f"revert of {intent.text!r} is {row['revert_state']}")
    return missing


def settle(stack: LocalStack, ledger: Ledger, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        started = time.monotonic()
        missing = unsettled(stack, ledger)
        if not missing:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"not settled after {timeout}s: " + "; ".join(missing[:8]))
        # The check reads every card and row: with 200 jobs it is costly, so it takes at most about
        # a fifth of the CPU the bot under test needs to settle.
        time.sleep(max(0.05, 4 * (time.monotonic() - started)))


# --- the checks --------------------------------------------------------------------------------


@dataclass
class Outcome:
    """Each user's wait for their result (seconds), keyed (kind, name); kinds: "create", "edit",
    "kept edit" (a reply sent during the render), "revert"."""

    waits: dict[tuple[str, str], float] = field(default_factory=dict)

    def longest(self, kind: str | None = None) -> float:
        values = [w for (k, _), w in self.waits.items() if kind is None or k == kind]
        return max(values, default=0.0)


def _told(stack: LocalStack, job: dict[str, Any], fragment: str) -> list[float]:
    """When the requester was told `fragment` about this job: thread post, response_url or DM."""
    times = [
        c.at
        for c in posts(stack)
        if c.args.get("channel") == job["channel_id"]
        and c.args.get("thread_ts") == job["card_ts"]
        and job["card_ts"]
        and fragment in (c.args.get("text") or "")
    ]
    if job["response_url"]:
        path = "/hooks/" + job["response_url"].split("/hooks/", 1)[-1]
        times += [
            h["at"]
            for h in stack.slack.hooks()
            if h["path"] == path and fragment in h["body"].get("text", "")
        ]
    times += [
        c.at
        for c in posts(stack)
        if c.args.get("channel") == job["user_id"] and fragment in (c.args.get("text") or "")
    ]
    return sorted(times)


def _thread_posts(stack: LocalStack, job: dict[str, Any], fragments: tuple[str, ...]) -> list[Call]:
    return [
        c
        for c in posts(stack)
        if job["card_ts"]
        and c.args.get("channel") == job["channel_id"]
        and c.args.get("thread_ts") == job["card_ts"]
        and any(f in (c.args.get("text") or "") for f in fragments)
    ]


def _post_at(stack: LocalStack, channel: str, ts: str | None) -> float | None:
    for c in posts(stack):
        if ts and c.response.get("ts") == ts and c.response.get("channel") == channel:
            return c.at
    return None


def check(stack: LocalStack, ledger: Ledger) -> Outcome:
    """Assert every invariant of the module docstring; returns the users' waits."""
    outcome = Outcome()
    jobs = video_rows(stack)
    by_prompt: dict[str, list[dict[str, Any]]] = {}
    for j in jobs:
        by_prompt.setdefault(j["prompt"], []).append(j)
    knowlify_videos = sim_videos(stack)
    created = Counter(v["task"] for v in knowlify_videos)
    sim_by_uuid = {v["uuid"]: v for v in knowlify_videos}
    cards = [c for c in posts(stack) if not c.args.get("thread_ts")]

    for intent in ledger.videos.values():
        name = intent.prompt
        rows = by_prompt.get(name, [])
        assert len(rows) == 1, f"{name!r}: {len(rows)} jobs for one command"
        job = rows[0]
        state = job["state"]
        its_cards = [c for c in cards if f"{name} —" in (c.args.get("text") or "")]
        if state == "needs_invite":
            assert intent.expect == "needs_invite", f"{name!r} ended needs_invite"
            assert not its_cards and created[name] == 0
            continue
        assert len(its_cards) == 1, f"{name!r}: {len(its_cards)} status cards for one command"
        assert its_cards[0].response["ts"] == job["card_ts"]
        shown = card_text(stack, job)
        if shown is not None:
            assert CARD_WORDS[state] in shown, f"{name!r} is {state} but its card says {shown!r}"
        if state == "unknown":
            assert intent.unknown_ok, f"{name!r} ended unknown"
            assert created[name] <= 1, f"{name!r}: an unknown create was resent ({created[name]} videos)"
            told = _told(stack, job, "answer never arrived")
            assert len(told) == 1, f"{name!r}: unknown outcome told {len(told)} times"
            continue
        assert state == intent.expect, f"{name!r} ended {state}, expected {intent.expect}"
        assert created[name] == 1, f"{name!r}: Knowlify created {created[name]} videos"
        truth = sim_by_uuid[job["knowlify_uuid"]]["status"]
        assert truth == state, f"{name!r}: the bot says {state}, Knowlify says {truth}"
        fragment = READY if state == "complete" else str(job["error_message"])
        told = _told(stack, job, fragment)
        assert len(told) == 1, f"{name!r}: the {state} result was told {len(told)} times"
        outcome.waits[("create", name)] = told[0] - intent.sent_at

    # Edits: one Knowlify edit per reply, one result post per edit.
    knowlify_edits = sim_edits(stack)
    per_text = Counter(e["edit_request"] for e in knowlify_edits)
    sim_edit = {e["edit_id"]: e for e in knowlify_edits}
    edit_calls = [
        c for c in stack.sim.calls if c.method == "POST" and c.path == "/v1/edits" and c.status == 202
    ]
    assert len({c.idempotency_key for c in edit_calls}) == len(knowlify_edits), (
        "an Idempotency-Key produced more than one edit, or an edit was sent without one"
    )
    rows_by_ts = {r["reply_ts"]: r for r in edit_rows(stack)}
    reverts = Counter(
        c.path.split("/")[3]
        for c in stack.sim.calls
        if c.method == "POST" and c.path.endswith("/revert") and c.status == 200
    )
    jobs_by_id = {j["id"]: j for j in jobs}
    results_per_video: Counter[int] = Counter()
    reverts_per_video: Counter[int] = Counter()
    for intent in ledger.edits.values():
        row = rows_by_ts.get(intent.reply_ts)
        assert row is not None, f"reply {intent.text!r} was lost"
        job = jobs_by_id[row["video_id"]]
        if row["state"] == "refused":
            assert intent.expect == "refused" or job["state"] == "unknown", (
                f"edit {intent.text!r} was refused"
            )
            assert per_text[intent.text] == 0, f"refused edit {intent.text!r} reached Knowlify"
            continue
        assert per_text[intent.text] == 1, (
            f"reply {intent.text!r}: Knowlify has {per_text[intent.text]} edits"
        )
        truth = sim_edit[row["knowlify_edit_id"]]["status"]
        want = "reverted" if intent.revert_sent_at is not None else intent.expect
        assert row["state"] == want == truth, (
            f"edit {intent.text!r}: bot {row['state']}, Knowlify {truth}, expected {want}"
        )
        results_per_video[row["video_id"]] += 1
        at = _post_at(stack, intent.channel, row["result_ts"])
        assert at is not None, f"edit {intent.text!r}: no result post"
        outcome.waits[("kept edit" if intent.kept else "edit", intent.text)] = at - intent.sent_at
        if intent.revert_sent_at is not None:
            assert reverts[row["knowlify_edit_id"]] == 1, (
                f"edit {intent.text!r}: {reverts[row['knowlify_edit_id']]} successful reverts"
            )
            reverts_per_video[row["video_id"]] += 1
            at = _post_at(stack, intent.channel, row["revert_result_ts"])
            assert at is not None, f"edit {intent.text!r}: no revert post"
            outcome.waits[("revert", intent.text)] = at - intent.revert_sent_at
        else:
            assert reverts[row["knowlify_edit_id"]] == 0, f"edit {intent.text!r} was reverted unasked"
    for video_id, n in results_per_video.items():
        job = jobs_by_id[video_id]
        got = len(_thread_posts(stack, job, EDIT_RESULT))
        assert got == n, f"{job['prompt']!r}: {got} edit result posts for {n} edits"
    for job in jobs:
        got = len(_thread_posts(stack, job, (REVERTED,)))
        want = reverts_per_video.get(job["id"], 0)
        assert got == want, f"{job['prompt']!r}: {got} revert posts for {want} reverts"
    return outcome


def max_in_window(times: list[float], window: float) -> int:
    """The most events that fall in any half-open span of `window` seconds."""
    times = sorted(times)
    best, start = 0, 0
    for end, t in enumerate(times):
        while t - times[start] >= window:
            start += 1
        best = max(best, end - start + 1)
    return best

"""What the database keeps per video: rows and bytes per table after N whole conversations.

Each conversation is what a user does most: `/knowlify <prompt of ~150 characters>`, the render
completes, one edit reply of ~60 characters, its result, and a :rewind: revert. Run against the
real bot (LocalStack, SQLite file, scaled-down time). Prints, per table, rows per video and the
bytes their values take (the sum of each column's text length), and the SQLite file's growth per
video after a checkpoint, beside the same file with the schema only (the baseline).

    python bench/rows_per_video.py [--videos N] [--quick]
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import time

import _common
from _common import table

_common.clean_env()

from sqlmodel import Session, select  # noqa: E402

from sandbox.stack import LocalStack, StackConfig  # noqa: E402
from storage.models import EditJob, VideoJob  # noqa: E402

PROMPT = (
    "Explain how a heat pump moves heat from a cold place to a warm one, for a new facilities "
    "engineer, take {n}"
)
EDIT = "make scene 2 slower and show the refrigerant loop in blue ({n})"


def _wait(predicate, timeout: float = 30.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError("conversation did not finish")
        time.sleep(0.02)


def _file_bytes(path: str) -> int:
    con = sqlite3.connect(path)
    con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    con.close()
    return os.path.getsize(path)


def _table_bytes(path: str) -> dict[str, tuple[int, int]]:
    con = sqlite3.connect(path)
    out = {}
    names = [r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table'")]
    for name in names:
        rows = con.execute(f'SELECT * FROM "{name}"').fetchall()
        out[name] = (len(rows), sum(len(str(v)) for row in rows for v in row if v is not None))
    con.close()
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--videos", type=int, default=None, help="conversations (default 20)")
    parser.add_argument("--quick", action="store_true", help="5 conversations")
    args = parser.parse_args()
    n = args.videos or (5 if args.quick else 20)

    stack = LocalStack(
        StackConfig(stage_seconds=0.05, poll_seconds=0.02, tick_seconds=0.02, window_seconds=1.0)
    ).start()
    try:
        assert stack.runtime is not None and stack.driver is not None
        engine, driver, path = stack.runtime.engine, stack.driver, stack.config.database_path
        assert path is not None
        empty = _file_bytes(path)
        for i in range(n):
            driver.command(PROMPT.format(n=i))

            def video() -> VideoJob | None:
                with Session(engine) as s:
                    return s.exec(select(VideoJob).order_by(VideoJob.id.desc())).first()  # type: ignore[union-attr]

            _wait(lambda: (v := video()) is not None and v.final_ts is not None)
            job = video()
            assert job is not None and job.card_ts is not None
            ts = driver.next_ts(after=job.card_ts)
            driver.reply(EDIT.format(n=i), thread_ts=job.card_ts, ts=ts)

            def edit(ts: str = ts) -> EditJob | None:
                with Session(engine) as s:
                    return s.exec(select(EditJob).where(EditJob.reply_ts == ts)).first()

            _wait(lambda: (e := edit()) is not None and e.result_ts is not None)
            driver.reaction(ts)
            _wait(lambda: (e := edit()) is not None and e.revert_result_ts is not None)
        stack.runtime.stop()  # the worker is idle; stop it so the file is quiet while measured
        stack.runtime = None
        full = _file_bytes(path)
        per_table = _table_bytes(path)
    finally:
        stack.stop()

    rows = []
    for name, (count, size) in sorted(per_table.items(), key=lambda kv: -kv[1][1]):
        if count:
            rows.append([name, count, f"{count / n:.1f}", f"{size / max(count, 1):.0f}", f"{size / n:.0f}"])
    table(
        ["table", "rows", "rows/video", "bytes/row", "bytes/video"],
        rows,
        title=f"{n} conversations (create, 1 edit, 1 revert): values stored, per table",
    )
    print(
        f"SQLite file: {empty:,} bytes with the schema only (baseline), {full:,} after {n} conversations: "
        f"{(full - empty) / n:,.0f} bytes per video with its edit, indexes and page slack included."
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

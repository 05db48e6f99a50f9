"""Small helpers shared by the bench scripts: a clean environment, percentiles, tables, windows.

Not a test helper: nothing here asserts timings. Each script prints its figures next to a baseline
measured in the same run.
"""

from __future__ import annotations

import logging
import math
import os
import statistics
import sys
import warnings
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # `python bench/x.py` from a checkout that is not installed
    sys.path.insert(0, str(ROOT))


def clean_env() -> None:
    """Bolt and pydantic-settings fall back to SLACK_*/KNOWLIFY_* variables; a bench must not see them."""
    for name in list(os.environ):
        if name.startswith(("SLACK_", "KNOWLIFY_")) or name in ("DATABASE_URL", "WORKER_TICK_SECONDS"):
            del os.environ[name]
    warnings.filterwarnings("ignore")
    # The bot logs warnings on purpose (e.g. a 429 it waits out); a bench prints only its tables.
    logging.basicConfig(level=logging.ERROR)
    logging.getLogger().setLevel(logging.ERROR)


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100) of a non-empty sequence."""
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


def summary_ms(values: Sequence[float]) -> tuple[str, str, str]:
    """median, p95 and worst of durations given in seconds, as milliseconds."""
    if not values:
        return ("-", "-", "-")
    return (
        f"{statistics.median(values) * 1000:.1f}",
        f"{percentile(values, 95) * 1000:.1f}",
        f"{max(values) * 1000:.1f}",
    )


def max_in_window(times: Iterable[float], window: float) -> int:
    """Most events inside any half-open span (t - window, t] — i.e. any window, wherever it starts."""
    ordered = sorted(times)
    best, lo = 0, 0
    for hi, t in enumerate(ordered):
        while ordered[lo] <= t - window:
            lo += 1
        best = max(best, hi - lo + 1)
    return best


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]], title: str | None = None) -> None:
    cells = [[str(h) for h in headers]] + [[str(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]

    def line(row: Sequence[str]) -> str:
        return "  ".join(
            c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths, strict=True))
        )

    if title:
        print(f"\n{title}")
    print(line(cells[0]))
    print("  ".join("-" * w for w in widths))
    for row in cells[1:]:
        print(line(row))


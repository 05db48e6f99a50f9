"""Per-person limits on videos and edits in any 24 hours (pure: times in, verdict out).

The times are the `created_at` of the person's requests that count (storage.repo decides which rows
count); they come from the database, so every replica and every restart sees the same count.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

DAY_SECONDS = 24 * 3600.0


def next_allowed(times: Sequence[float], limit: int, now: float, window: float = DAY_SECONDS) -> float | None:
    """None if one more request fits in the window ending now; otherwise when the next one will.

    `limit` 0 means no limit. With n requests in the window, n - limit + 1 of them (the oldest) must
    leave it before one more fits; the next allowed moment is rounded up to the minute, so a time
    shown to the minute is never a moment that is still refused.
    """
    if limit <= 0:
        return None
    recent = sorted(t for t in times if t > now - window)
    if len(recent) < limit:
        return None
    return math.ceil((recent[len(recent) - limit] + window) / 60.0) * 60.0

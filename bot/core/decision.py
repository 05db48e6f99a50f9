"""What a step of a job decided, as a value: the worker's `apply` carries it out.

A decision says what to post (and which column keeps the message's ts), what to store, when the row
runs next, whether the card changes, and what happens to the video's kept replies. Deciding is pure;
posting, storing and releasing happen in one place (bot.worker.apply), always in the same order:
post first, then store the state together with the post's ts, so a crash can repeat a post (one call
wide) but never lose it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

# next_run_at of a row with nothing left to do (finite, so every database stores it).
NEVER = 9.0e12
# The shortest wait: a zero Retry-After still leaves the row for the next tick.
MIN_WAIT = 0.01


class CardChange(StrEnum):
    KEEP = "keep"  # nothing visible changed
    IF_DUE = "if_due"  # progress: update if it looks different and Slack's pace allows
    FINAL = "final"  # a state change the card must show now


class Schedule(StrEnum):
    """A next run that the key's poll policy (bot.core.polling) sets once the values are stored:
    it weighs this job against the key's other renders or edits and their booked polls."""

    VIDEO_POLL = "video_poll"
    EDIT_POLL = "edit_poll"


class KeptReplies(StrEnum):
    """What happens to the replies kept while the video rendered."""

    KEEP = "keep"
    RELEASE = "release"  # the render completed: they go to Knowlify, in order
    SETTLE = "settle"  # the video will never complete: wake them so each one is told and ended


@dataclass(frozen=True)
class Post:
    """One message: a thread reply in the video's thread, or (``card``) the status card itself.

    ``kind`` records the message for reactions (None: not recorded); ``ts_field`` is the column that
    keeps its ts; ``requester_text`` reaches the requester another way if the post fails; a card
    post is required: if it fails, nothing of the decision is stored. ``link_seen_at`` (a
    completion's link) is when the poll saw the render complete, for the link-lag metric.
    ``deferrable``: if Slack answers 429, the whole decision may wait for Retry-After and be made
    again from a new observation (the row's state still leads there); False after a paid call
    whose answer could not be observed again.
    """

    text: str
    kind: str | None = None
    ts_field: str | None = None
    blocks: list[dict[str, Any]] | None = None
    card: bool = False
    retry_button: bool = False
    requester_text: str | None = None
    link_seen_at: float | None = None
    deferrable: bool = True


@dataclass(frozen=True)
class Decision:
    store: Mapping[str, Any] = field(default_factory=dict)
    next_run: float | Schedule | None = None  # None: keep the lease, the step goes on
    post: Post | None = None
    tell_requester: str | None = None  # no thread to post in: tell the requester directly
    card: CardChange = CardChange.KEEP
    kept_replies: KeptReplies = KeptReplies.KEEP
    frees_render_slot: bool = False  # the render ended: Knowlify promotes the key's first parked one

    def storing(self, values: Mapping[str, Any]) -> Decision:
        """The same decision, also storing ``values`` (the decision's own values win)."""
        return dataclasses.replace(self, store={**values, **self.store})


def later(now: float, delay: float) -> float:
    return now + max(delay, MIN_WAIT)


def wait_until(when: float) -> Decision:
    """Nothing to do yet: run again at ``when``."""
    return Decision(next_run=when)


def mark(**values: Any) -> Decision:
    """Store values before a call and keep the lease (e.g. `submitting`, so a crash is told apart)."""
    return Decision(store=values)

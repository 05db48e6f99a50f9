"""bot.worker.apply, the one place that posts, stores and releases: its order and its Slack 429s."""

from __future__ import annotations

from unittest.mock import MagicMock

import pytest

from bot.core import polling
from bot.core.decision import NEVER, CardChange, Decision, Post
from bot.slack_ops import SlackFailure
from bot.worker.apply import apply
from bot.worker.context import StepContext
from bot.worker.videos import video_step
from storage.db import init_schema, make_engine
from storage.models import VideoJob
from storage.repo import Store
from tests.unit.test_store import Clock, job


@pytest.fixture
def ctx(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'bot.db'}")
    init_schema(engine)
    clock = Clock()
    store = Store(engine, clock=clock)
    slack = MagicMock()
    slack.respond.return_value = True
    yield StepContext(store, MagicMock(), slack, "w", 5.0, "k", polling.PollPolicy(poll_seconds=5.0), clock)
    engine.dispose()


def claimed(ctx: StepContext, **values) -> VideoJob:
    ctx.store.add_video(job(1, state="rendering", card_ts="1.1", response_url="https://hooks/x", **values))
    (row,) = ctx.store.claim(VideoJob, "w", 60, 1, VideoJob.state == "rendering")
    return row


def test_posts_first_then_stores_the_state_with_the_ts_and_records_the_message(ctx):
    ctx.slack.post.return_value = "2.2"
    row = claimed(ctx)
    done = Decision(store={"state": "complete"}, post=Post("ready", kind="final", ts_field="final_ts"), next_run=NEVER)
    assert apply(ctx, row, done, row)
    ctx.slack.post.assert_called_once_with("C", "ready", None, "1.1")
    stored = ctx.store.get_video(row.id)
    assert (stored.state, stored.final_ts, stored.lease_owner, stored.next_run_at) == ("complete", "2.2", None, NEVER)
    assert ctx.store.thread_message("T", "C", "2.2").kind == "final"


def test_a_slack_429_defers_the_whole_decision_until_retry_after(ctx):
    ctx.slack.post.side_effect = SlackFailure("ratelimited", retry_after=7.0)
    row = claimed(ctx)
    done = Decision(store={"state": "complete"}, post=Post("ready", kind="final", ts_field="final_ts"), next_run=NEVER)
    assert not apply(ctx, row, done, row)
    stored = ctx.store.get_video(row.id)
    assert (stored.state, stored.final_ts, stored.lease_owner) == ("rendering", None, None)
    assert stored.next_run_at == ctx.clock() + 7.0
    ctx.slack.respond.assert_not_called()  # nobody is told another way: the post comes later


def test_a_429_on_a_post_that_cannot_wait_stores_the_decision_and_tells_the_requester(ctx):
    ctx.slack.post.side_effect = SlackFailure("ratelimited", retry_after=7.0)
    row = claimed(ctx)
    refused = Decision(
        store={"state": "failed"},
        post=Post(":x: no", kind="final", ts_field="final_ts", requester_text="no", deferrable=False),
        next_run=NEVER,
    )
    assert apply(ctx, row, refused, row)
    assert ctx.store.get_video(row.id).state == "failed"
    ctx.slack.respond.assert_called_once_with("https://hooks/x", "no")


def test_a_rate_limited_card_update_comes_back_for_the_card(ctx):
    ctx.slack.update.side_effect = SlackFailure("ratelimited", retry_after=3.0)
    row = claimed(ctx)
    final = Decision(store={"state": "complete", "final_ts": "2.2"}, card=CardChange.FINAL, next_run=NEVER)
    assert apply(ctx, row, final, row)
    stored = ctx.store.get_video(row.id)
    assert stored.card_stale and stored.next_run_at == ctx.clock() + 3.0 and stored.lease_owner is None
    # Claimed again for its card once Slack allows it; nothing else happens to a finished job.
    ctx.clock.now += 3.0
    ctx.slack.update.side_effect = None
    (again,) = ctx.store.claim(VideoJob, "w", 60, 1, VideoJob.card_stale.is_(True))
    video_step(ctx, again)
    stored = ctx.store.get_video(row.id)
    assert not stored.card_stale and stored.next_run_at == NEVER and ctx.slack.update.call_count == 2


def test_a_lost_lease_stores_nothing_more(ctx):
    row = claimed(ctx)
    ctx.clock.now += 61  # the lease expired: another worker may own the row now
    assert not apply(ctx, row, Decision(store={"state": "complete"}, next_run=NEVER), row)
    assert ctx.store.get_video(row.id).state == "rendering"

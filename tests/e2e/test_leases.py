"""Two replicas share one database and Knowlify answers slower than a worker's lease: the lease is
renewed while the row is worked, so the other replica never takes the row over mid-call."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from bot.runtime import Runtime
from bot.worker import Worker
from sandbox.stack import LocalStack, StackConfig
from tests.helpers import jobs, posted, sim_posts, wait_until

LEASE = 1.0  # seconds; every Knowlify answer below takes longer than that


def with_lease(runtime: Runtime, owner: str) -> Runtime:
    runtime.worker = Worker(
        runtime.store,
        runtime.knowlify,
        runtime.slack,
        key_id=runtime.key_id,
        poll_seconds=runtime.settings.knowlify_poll_seconds,
        owner=owner,
        lease_seconds=LEASE,
    )
    return runtime


@pytest.fixture
def two_replicas() -> Iterator[tuple[LocalStack, Runtime]]:
    stack = LocalStack(StackConfig(stage_seconds=0.3, poll_seconds=0.05, tick_seconds=0.02, window_seconds=1.0))
    stack.start(worker=False)
    assert stack.runtime is not None
    with_lease(stack.runtime, "replica-a").start_worker()
    other = with_lease(Runtime(stack.settings()), "replica-b")
    other.start_worker()
    try:
        yield stack, other
    finally:
        other.stop()
        stack.stop()


def test_a_create_slower_than_the_lease_is_neither_resent_nor_reported_unknown(two_replicas):
    stack, _ = two_replicas
    assert stack.driver is not None
    stack.sim.inject_fault(path_prefix="/v1/videos", method="POST", status=0, delay=3 * LEASE)
    stack.sim.inject_fault(path_prefix="/v1/videos/", method="GET", status=0, delay=2 * LEASE, times=2)
    stack.driver.command("Explain how leases work")
    stack.slack.wait_for(posted("Your video is ready", thread=True), timeout=30)

    assert len(sim_posts(stack, "/v1/videos")) == 1, "the create was sent once"
    unknown = [c for c in stack.slack.calls_of("chat.postMessage") if "never arrived" in (c.args.get("text") or "")]
    assert unknown == [], "no replica took the row over mid-create and called its outcome unknown"
    done = [c for c in stack.slack.calls_of("chat.postMessage") if "is ready" in (c.args.get("text") or "")]
    assert len(done) == 1, "the completion was posted once although its polls outlasted the lease"
    wait_until(lambda: [j.state for j in jobs(stack)] == ["complete"], what="the job stored as complete")

"""The store's view of a key for the poll policy, and the wake-up of the render Knowlify promotes."""

from __future__ import annotations

import pytest

from storage.db import init_schema, make_engine
from storage.models import EditJob, VideoJob
from storage.repo import Store


@pytest.fixture
def store(db_url):
    engine = make_engine(db_url)
    init_schema(engine)
    yield Store(engine)
    engine.dispose()


def video(store: Store, n: int, key: str = "k", next_run_at: float = 0.0, **kw) -> VideoJob:
    row = store.add_video(
        VideoJob(
            request_key=f"cmd:{key}:{n}",
            team_id="T",
            channel_id="C",
            user_id="U",
            key_id=key,
            prompt="p",
            **kw,
        )
    )
    assert row is not None
    store.update_where(VideoJob, {"next_run_at": next_run_at}, VideoJob.id == row.id)
    row.next_run_at = next_run_at
    return row


def test_renders_in_flight_lists_this_keys_rendering_jobs_only(store):
    a = video(store, 1, state="rendering", status="voiceover", next_run_at=50.0)
    b = video(store, 2, state="rendering", status="parked", next_run_at=60.0)
    video(store, 3, state="complete", status="complete")
    video(store, 4, key="other", state="rendering", status="queued")
    assert sorted(store.renders_in_flight("k")) == [(a.id, "voiceover", 50.0), (b.id, "parked", 60.0)]


def test_a_finished_render_wakes_the_first_parked_one_only(store):
    video(store, 1, state="rendering", status="generating_frames", next_run_at=500.0)
    first = video(store, 2, state="rendering", status="parked", next_run_at=500.0)
    second = video(store, 3, state="rendering", status="parked", next_run_at=500.0)
    assert store.wake_first_parked("k", 100.0) == 1
    assert store.get_video(first.id).next_run_at == 100.0
    assert store.get_video(second.id).next_run_at == 500.0
    # Already due earlier: left alone (a wake-up never moves a run later).
    assert store.wake_first_parked("k", 200.0) == 0
    assert store.get_video(first.id).next_run_at == 100.0
    assert store.wake_first_parked("nobody", 100.0) == 0


def test_edit_polls_are_the_other_submitted_edits_of_the_key(store):
    v = video(store, 1, state="complete")
    rows = []
    for i, state in enumerate(("submitted", "submitted", "complete")):
        edit = EditJob(
            video_id=v.id,
            key_id="k",
            team_id="T",
            channel_id="C",
            reply_ts=f"1.{i}",
            user_id="U",
            text="t",
            state=state,
            next_run_at=10.0 + i,
        )
        added = store.add_edit(edit, None)
        assert added is not None
        store.update_where(EditJob, {"next_run_at": 10.0 + i}, EditJob.id == added.id)
        rows.append(added)
    assert store.edit_polls("k", other_than=rows[0].id) == [11.0]
    assert sorted(store.edit_polls("k", other_than=0)) == [10.0, 11.0]

"""Behaviour of the Knowlify API simulator, driven by a hand-advanced fake clock (no sleeps to sync)."""

from __future__ import annotations

import re
import socket
import subprocess
import sys
import threading
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

with warnings.catch_warnings():  # Starlette 1.x nudges towards httpx2; httpx is what the project ships with
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

from sandbox.knowlify_sim import (
    KnowlifySimulator,
    SimCall,
    SimConfig,
    derive_scene_changes,
    make_server,
    upper_bound_credits,
)

KEY_A = "kn_" + "a1" * 32
KEY_B = "kn_" + "B2" * 32
ISO_RE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}\+00:00$")
S = 2.0  # default stage_seconds
RENDER = 7 * S  # pending, queued + 5 render stages


class FakeClock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def tick(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def make(clock: FakeClock, **overrides: Any) -> tuple[KnowlifySimulator, TestClient]:
    sim = KnowlifySimulator(SimConfig(**overrides), clock=clock)
    return sim, TestClient(sim.app)


@pytest.fixture
def env(clock: FakeClock) -> Iterator[tuple[KnowlifySimulator, TestClient]]:
    """Generous rate limits so behaviour tests are not about the limiter."""
    sim, client = make(clock, videos_limit=10_000, edits_limit=10_000)
    with client:
        yield sim, client


def h(key: str = KEY_A, **extra: str) -> dict[str, str]:
    return {"X-API-Key": key, **extra}


def create(
    client: TestClient, tasks: list[str] | None = None, key: str = KEY_A, **item: Any
) -> dict[str, Any]:
    videos = [{"task": t, **item} for t in (tasks or ["Explain HTTPS"])]
    r = client.post("/v1/videos", json={"videos": videos}, headers=h(key))
    assert r.status_code == 200, r.text
    return r.json()


def completed_video(
    client: TestClient, clock: FakeClock, task: str = "Explain HTTPS", key: str = KEY_A
) -> str:
    uuid = create(client, [task], key=key)["results"][0]["uuid"]
    clock.tick(RENDER)
    assert client.get(f"/v1/videos/{uuid}", headers=h(key)).json()["status"] == "complete"
    return uuid


def post_edit(client: TestClient, video: str, text: str, key: str = KEY_A, **fields: Any) -> httpx.Response:
    headers = h(key)
    if "idem" in fields:
        headers["Idempotency-Key"] = fields.pop("idem")
    return client.post(
        "/v1/edits", json={"video_uuid": video, "edit_request": text, **fields}, headers=headers
    )


def completed_edit(
    client: TestClient, clock: FakeClock, video: str, text: str = "Make scene 2 dramatic"
) -> str:
    r = post_edit(client, video, text)
    assert r.status_code == 202, r.text
    clock.tick(2 * S)
    return r.json()["edit_id"]


def revert(client: TestClient, edit_id: str, key: str = KEY_A) -> httpx.Response:
    return client.post(f"/v1/edits/{edit_id}/revert", headers=h(key))


# --------------------------------------------------------------------------- auth


def test_missing_and_malformed_keys_are_401(env: tuple[KnowlifySimulator, TestClient]) -> None:
    sim, client = env
    assert client.post("/v1/videos", json={"videos": [{"task": "x"}]}).status_code == 401
    for bad in ["kn_" + "a" * 63, "kn_" + "g" * 64, "sk_" + "a" * 64, "kn_" + "a" * 65]:
        r = client.get("/v1/edits/x", headers={"X-API-Key": bad})
        assert r.status_code == 401 and r.json() == {"detail": "invalid API key"}
    r = client.get("/v1/videos/x", headers={"Authorization": "Bearer abc"})
    assert r.status_code == 401
    assert "x-ratelimit-limit" not in r.headers  # 401 costs no quota
    assert all(c.status == 401 for c in sim.calls)


def test_foreign_and_unknown_resources(env: tuple[KnowlifySimulator, TestClient], clock: FakeClock) -> None:
    _, client = env
    video = completed_video(client, clock)
    r = client.get(f"/v1/videos/{video}", headers=h(KEY_B))
    assert (r.status_code, r.json()) == (403, {"detail": "API key does not own this video"})
    r = client.get("/v1/videos/00000000-0000-0000-0000-000000000000", headers=h())
    assert (r.status_code, r.json()) == (404, {"detail": "video not found"})
    assert post_edit(client, video, "scene 1", key=KEY_B).status_code == 403
    assert post_edit(client, "nope", "scene 1").status_code == 404
    edit_id = completed_edit(client, clock, video)
    r = client.get(f"/v1/edits/{edit_id}", headers=h(KEY_B))
    assert (r.status_code, r.json()) == (403, {"detail": "API key does not own this edit"})
    r = client.get("/v1/edits/unknown", headers=h())
    assert (r.status_code, r.json()) == (404, {"detail": "edit not found"})


def test_each_key_is_its_own_personal_caller(env: tuple[KnowlifySimulator, TestClient]) -> None:
    _, client = env
    a1, a2, b = create(client), create(client), create(client, key=KEY_B)
    assert a1["user_id"] == a2["user_id"] != b["user_id"]
    assert a1["org_id"] is None
    assert re.fullmatch(r"[0-9a-f-]{36}", a1["user_id"])


def test_unknown_route_and_wrong_method(env: tuple[KnowlifySimulator, TestClient]) -> None:
    _, client = env
    assert client.get("/v1/nothing", headers=h()).json() == {"detail": "Not Found"}
    r = client.get("/v1/videos", headers=h())
    assert (r.status_code, r.json()) == (405, {"detail": "Method Not Allowed"})


# --------------------------------------------------------------------------- create-video validation


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "videos"),
        ({"videos": []}, "videos"),
        ({"videos": [{"task": "x"}] * 51}, "videos"),
        ({"videos": [{"task": ""}]}, "videos[0].task"),
        ({"videos": [{"task": "x" * 5001}]}, "videos[0].task"),
        ({"videos": [{"task": "x", "video_duration_seconds": 29}]}, "videos[0].video_duration_seconds"),
        ({"videos": [{"task": "x", "video_duration_seconds": "60"}]}, "videos[0].video_duration_seconds"),
        ({"videos": [{"task": "x"}, {"task": "y", "aspect_ratio": "4:3"}]}, "videos[1].aspect_ratio"),
        ({"videos": [{"task": "x", "video_type": "tutorial"}]}, "videos[0].video_type"),
        ({"videos": [{"task": "x", "global_style_prompt": "s" * 5001}]}, "videos[0].global_style_prompt"),
        (
            {"videos": [{"task": "x", "color_palette": {"primary": "#12345"}}]},
            "videos[0].color_palette.primary",
        ),
        ({"videos": [{"task": "x", "color_palette": {"shadow": "#fff"}}]}, "videos[0].color_palette.shadow"),
        ({"videos": [{"task": "x"}], "email": "not-an-email"}, "email"),
        ({"videos": [{"task": "x"}], "org_id": "org_1"}, "org_id"),
    ],
)
def test_create_validation_is_400_naming_the_field(
    env: tuple[KnowlifySimulator, TestClient], body: dict[str, Any], field: str
) -> None:
    _, client = env
    r = client.post("/v1/videos", json=body, headers=h())
    assert r.status_code == 400
    detail = r.json()["detail"]
    assert isinstance(detail, str) and detail.startswith(field + ":")
    assert r.headers["x-ratelimit-limit"] == "10000"  # 4xx after the limiter still counts


def test_create_accepts_full_item_and_ignores_unknown_fields(
    env: tuple[KnowlifySimulator, TestClient],
) -> None:
    sim, client = env
    item = {
        "task": "Quarterly results",
        "video_duration_seconds": 300,
        "aspect_ratio": "9:16",
        "video_type": "corporate",
        "global_style_prompt": "minimal",
        "color_palette": {"primary": "#0066cc", "secondary": "#fff", "tertiary": "#ABC", "accent": "#ff6600"},
        "voice_id": "v1",
        "voice_description": "warm",
    }
    r = client.post("/v1/videos", json={"videos": [item], "email": "a@b.co", "whatever": 1}, headers=h())
    assert r.status_code == 200
    row = r.json()["results"][0]
    assert sim.video(row["uuid"])["item"]["aspect_ratio"] == "9:16"


def test_invalid_json_is_422(env: tuple[KnowlifySimulator, TestClient]) -> None:
    _, client = env
    r = client.post("/v1/videos", content=b"{not json", headers=h())
    assert (r.status_code, r.json()) == (422, {"detail": "request body is not valid JSON"})
    r = client.post("/v1/edits", content=b"", headers=h())
    assert r.status_code == 422


def test_per_item_error_rows(env: tuple[KnowlifySimulator, TestClient]) -> None:
    _, client = env
    r = client.post(
        "/v1/videos",
        json={
            "videos": [{"task": "ok"}, {"task": "v", "voice_id": "rejected"}, {"task": "boom [item-error]"}]
        },
        headers=h(),
    ).json()
    assert (r["status"], r["total"], r["enqueued"], r["parked"], r["errors"]) == ("ok", 3, 1, 0, 2)
    ok, voice, other = r["results"]
    assert ok["status"] == "queued" and "queue_position" not in ok
    assert voice["index"] == 1 and voice["status"] == "error" and voice["code"] == "ITEM_FAILED"
    assert voice["message"] == "voice_id was rejected by the upstream provider"
    assert other["code"] == "ITEM_FAILED" and other["message"]
    assert voice["chat_url"] == f"https://create.knowlify.com/p/chat/{voice['session_id']}"
    assert client.get(f"/v1/videos/{voice['uuid']}", headers=h()).status_code == 404


# --------------------------------------------------------------------------- concurrency and render


def test_parking_fifo_promotion_and_queue_positions(
    env: tuple[KnowlifySimulator, TestClient], clock: FakeClock
) -> None:
    sim, client = env
    r = create(client, [f"t{i}" for i in range(5)])
    assert (r["enqueued"], r["parked"]) == (3, 2)
    statuses = [(row["status"], row.get("queue_position")) for row in r["results"]]
    assert statuses == [("queued", None)] * 3 + [("parked", 1), ("parked", 2)]
    fourth, fifth = r["results"][3]["uuid"], r["results"][4]["uuid"]
    assert client.get(f"/v1/videos/{fourth}", headers=h()).json()["status"] == "pending"
    # a later batch parks behind the earlier parked jobs (positions are per caller)
    later = create(client, ["late"])["results"][0]
    assert (later["status"], later["queue_position"]) == ("parked", 3)
    # another caller has its own slots
    assert create(client, ["b"], key=KEY_B)["results"][0]["status"] == "queued"
    clock.tick(RENDER - 0.1)
    assert sim.video(fourth)["state"] == "parked"
    clock.tick(0.1)  # first three complete at once: three slots, three parked jobs promoted FIFO
    v4 = client.get(f"/v1/videos/{fourth}", headers=h()).json()
    assert v4["status"] == "pending" and v4["updated_at"] == v4["created_at"]
    clock.tick(S)
    assert client.get(f"/v1/videos/{fourth}", headers=h()).json()["status"] == "queued"
    assert sim.video(fifth)["state"] == "active" and sim.video(later["uuid"])["state"] == "active"


def test_promotion_when_one_slot_frees(clock: FakeClock) -> None:
    sim, client = make(clock, concurrent_renders=1, videos_limit=1000)
    rows = create(client, ["a", "b", "c"])["results"]
    assert [r.get("queue_position") for r in rows] == [None, 1, 2]
    clock.tick(RENDER)
    assert [sim.video(r["uuid"])["state"] for r in rows] == ["complete", "active", "parked"]
    assert sim.video(rows[2]["uuid"])["queue_position"] == 1
    clock.tick(RENDER)
    assert [sim.video(r["uuid"])["state"] for r in rows] == ["complete", "complete", "active"]
    clock.tick(RENDER)  # lazily computed, in time order, even with no request in between
    assert sim.video(rows[2]["uuid"])["state"] == "complete"


def test_stage_progression_percent_and_timestamps(
    env: tuple[KnowlifySimulator, TestClient], clock: FakeClock
) -> None:
    _, client = env
    uuid = create(client, ["Explain HTTPS"])["results"][0]["uuid"]
    seen: list[dict[str, Any]] = []
    for _ in range(8):
        seen.append(client.get(f"/v1/videos/{uuid}", headers=h()).json())
        clock.tick(S)
    assert [p["status"] for p in seen] == [
        "pending",
        "queued",
        "voiceover",
        "highlevel",
        "lowlevel",
        "scan_assets",
        "generating_frames",
        "complete",
    ]
    assert all(p["progress"]["stage"] == p["status"] for p in seen)
    percents = [p["progress"]["percent"] for p in seen]
    assert percents == sorted(percents) and percents[0] == 0 and percents[-1] == 100
    done = seen[-1]
    assert done["is_complete"] and not done["is_failed"] and done["error_message"] is None
    assert done["progress"] == {"stage": "complete", "percent": 100, "current_scene": 5, "total_scenes": 5}
    assert done["task"] == "Explain HTTPS" and "link" not in done
    assert ISO_RE.match(done["created_at"]) and ISO_RE.match(done["updated_at"])
    assert len({p["updated_at"] for p in seen}) == 8  # one status change per stage
    assert seen[0]["created_at"] == seen[0]["updated_at"]


def test_generating_frames_advances_scenes(
    env: tuple[KnowlifySimulator, TestClient], clock: FakeClock
) -> None:
    _, client = env
    uuid = create(client)["results"][0]["uuid"]
    clock.tick(6 * S)
    scenes, percents, updated = [], [], set()
    for _ in range(5):
        p = client.get(f"/v1/videos/{uuid}", headers=h()).json()
        assert p["status"] == "generating_frames"
        scenes.append(p["progress"]["current_scene"])
        percents.append(p["progress"]["percent"])
        updated.add(p["updated_at"])
        clock.tick(S / 5)
    assert scenes == [1, 2, 3, 4, 5]
    assert percents == [70, 76, 82, 88, 94]  # the documented example: scene 4 of 5 → 88 %
    assert len(updated) == 1  # scene progress is not a status change


def test_expose_link(clock: FakeClock) -> None:
    _, client = make(clock, expose_link=True)
    uuid = create(client)["results"][0]["uuid"]
    assert "link" not in client.get(f"/v1/videos/{uuid}", headers=h()).json()
    clock.tick(RENDER)
    link = client.get(f"/v1/videos/{uuid}", headers=h()).json()["link"]
    assert link == f"https://animation-encoder-videos.s3.us-west-2.amazonaws.com/{uuid}.mp4"


def test_fail_trigger_fails_in_generating_frames_and_frees_slot(clock: FakeClock) -> None:
    sim, client = make(clock, concurrent_renders=1)
    rows = create(client, ["oops [fail]", "next"])["results"]
    clock.tick(6 * S + S / 2)
    p = client.get(f"/v1/videos/{rows[0]['uuid']}", headers=h()).json()
    assert p["status"] == "failed" and p["is_failed"] and not p["is_complete"]
    assert p["progress"]["stage"] == "generating_frames" and p["progress"]["current_scene"] == 3
    assert p["error_message"] == "frame generation failed for scene 3: upstream provider error"
    assert sim.video(rows[1]["uuid"])["state"] == "active"
    clock.tick(10 * S)
    assert client.get(f"/v1/videos/{rows[0]['uuid']}", headers=h()).json()["updated_at"] == p["updated_at"]


def test_fail_video_control(env: tuple[KnowlifySimulator, TestClient], clock: FakeClock) -> None:
    sim, client = env
    rows = create(client, ["a", "b", "c", "d", "e"])["results"]
    clock.tick(3 * S)
    sim.fail_video(rows[0]["uuid"], "voiceover provider timed out")
    p = client.get(f"/v1/videos/{rows[0]['uuid']}", headers=h()).json()
    assert (p["status"], p["progress"]["stage"], p["error_message"]) == (
        "failed",
        "highlevel",
        "voiceover provider timed out",
    )
    assert sim.video(rows[3]["uuid"])["state"] == "active"  # promoted into the freed slot
    assert sim.video(rows[4]["uuid"])["queue_position"] == 1
    sim.fail_video(rows[4]["uuid"])  # a parked job leaves the park
    assert client.get(f"/v1/videos/{rows[4]['uuid']}", headers=h()).json()["is_failed"]
    clock.tick(RENDER)
    with pytest.raises(ValueError):
        sim.fail_video(rows[1]["uuid"])
    with pytest.raises(KeyError):
        sim.fail_video("unknown")


# --------------------------------------------------------------------------- rate limits


def test_rate_limit_headers_429_and_window_reset(clock: FakeClock) -> None:
    sim, client = make(clock)
    uuid = create(client)["results"][0]["uuid"]
    clock.tick(15)
    for i in range(29):
        r = client.get(f"/v1/videos/{uuid}", headers=h())
        assert r.status_code == 200
        assert r.headers["x-ratelimit-limit"] == "30"
        assert r.headers["x-ratelimit-remaining"] == str(28 - i)
        assert r.headers["x-ratelimit-reset"] == "45"
    r = client.get(f"/v1/videos/{uuid}", headers=h())
    assert r.status_code == 429
    assert r.json() == {"detail": "Rate limit exceeded: 30 requests per 60s. Retry in 45s."}
    assert r.headers["retry-after"] == "45" and r.headers["x-ratelimit-reset"] == "45"
    assert (r.headers["x-ratelimit-limit"], r.headers["x-ratelimit-remaining"]) == ("30", "0")
    assert r.headers["content-type"] == "application/json"
    clock.tick(44.5)
    r = client.post("/v1/videos", json={"videos": [{"task": "x"}]}, headers=h())  # POST shares the bucket
    assert (r.status_code, r.headers["retry-after"]) == (429, "1")
    # edits are a separate bucket of 10, another key a separate caller
    assert client.get("/v1/edits/none", headers=h()).headers["x-ratelimit-remaining"] == "9"
    assert client.get(f"/v1/videos/{uuid}", headers=h(KEY_B)).status_code == 403
    clock.tick(0.5)  # the window opened at the first request; 429s consumed nothing
    r = client.get(f"/v1/videos/{uuid}", headers=h())
    assert (r.status_code, r.headers["x-ratelimit-remaining"], r.headers["x-ratelimit-reset"]) == (
        200,
        "29",
        "60",
    )
    assert sim.count("GET", "/v1/videos/") == 32


def test_edits_bucket_and_scaled_window_text(clock: FakeClock) -> None:
    _, client = make(clock, window_seconds=2.4)
    for _ in range(10):
        assert client.get("/v1/edits/x", headers=h()).status_code == 404
    r = client.post("/v1/edits/x/revert", headers=h())
    assert r.status_code == 429
    assert r.json()["detail"] == "Rate limit exceeded: 10 requests per 2s. Retry in 3s."
    assert r.headers["retry-after"] == "3"
    clock.tick(2.4)
    assert client.get("/v1/edits/x", headers=h()).status_code == 404


# --------------------------------------------------------------------------- edits


def test_edit_lifecycle_result_and_charge(
    env: tuple[KnowlifySimulator, TestClient], clock: FakeClock
) -> None:
    sim, client = env
    video = completed_video(client, clock)
    r = post_edit(client, video, "Make scene 2 more dramatic with closer camera angles")
    assert r.status_code == 202
    body = r.json()
    assert body == {
        "edit_id": body["edit_id"],
        "video_uuid": video,
        "status": "processing",
        "queue_position": 0,
    }
    edit_id = body["edit_id"]
    polls = []
    for _ in range(5):
        polls.append(client.get(f"/v1/edits/{edit_id}", headers=h()).json())
        clock.tick(S / 2)
    assert [p["status"] for p in polls] == ["processing", "processing", "applying", "applying", "complete"]
    assert [p["progress"]["stage"] for p in polls] == ["edit", "frame_regen", "sync", "sync", "done"]
    percents = [p["progress"]["percent"] for p in polls]
    assert percents == sorted(percents) and percents[-1] == 100
    assert all(p["result"] is None for p in polls[:-1])
    done = polls[-1]
    assert done["is_complete"] and not done["is_failed"] and done["error_message"] is None
    result = done["result"]
    assert re.fullmatch(
        r"https://animation-encoder-videos\.s3\.us-west-2\.amazonaws\.com/[0-9a-f-]{36}\.mp4", result["link"]
    )
    assert result["link"] != f"https://animation-encoder-videos.s3.us-west-2.amazonaws.com/{video}.mp4"
    assert result == {
        "link": result["link"],
        "changed_scene_numbers": [2],
        "added_scene_numbers": [],
        "deleted_scene_numbers": [],
        "regenerated_scenes": [2],
        "kept_scenes": [1, 3, 4, 5],
        "video_synced": True,
    }
    assert sim.credits(KEY_A) == 10_000 - 9  # scene 2 is a Remotion scene
    assert sim.video(video)["planner_history"] == [edit_id]
    assert ISO_RE.match(done["updated_at"]) and done["updated_at"] > done["created_at"]


def test_edits_on_one_video_are_serialized(
    env: tuple[KnowlifySimulator, TestClient], clock: FakeClock
) -> None:
    sim, client = env
    video = completed_video(client, clock)
    other = completed_video(client, clock)
    first = post_edit(client, video, "scene 1 brighter").json()
    second = post_edit(client, video, "scene 3 darker").json()
    third = post_edit(client, video, "scene 5 louder").json()
    elsewhere = post_edit(client, other, "scene 1").json()
    assert [(x["status"], x["queue_position"]) for x in (first, second, third, elsewhere)] == [
        ("processing", 0),
        ("queued", 1),
        ("queued", 2),
        ("processing", 0),
    ]
    assert sim.edit(second["edit_id"])["progress"] == {"stage": "queued", "percent": 0}
    clock.tick(2 * S)
    assert sim.edit(first["edit_id"])["status"] == "complete"
    assert sim.edit(second["edit_id"])["status"] == "processing"
    clock.tick(4 * S)
    assert sim.edit(third["edit_id"])["status"] == "complete"
    assert sim.video(video)["planner_history"] == [first["edit_id"], second["edit_id"], third["edit_id"]]
    assert sim.credits(KEY_A) == 10_000 - 4 * 29  # scenes 1, 3, 5 (video) and 1 (other) are Veo


def test_scene_changes_add_delete_and_aspect(
    env: tuple[KnowlifySimulator, TestClient], clock: FakeClock
) -> None:
    sim, client = env
    video = completed_video(client, clock)
    added = sim.edit(completed_edit(client, clock, video, "Add a new closing scene that summarizes"))[
        "result"
    ]
    assert (added["added_scene_numbers"], added["regenerated_scenes"], added["kept_scenes"]) == (
        [6],
        [6],
        [1, 2, 3, 4, 5],
    )
    deleted = sim.edit(completed_edit(client, clock, video, "Delete scene 2"))["result"]
    assert (deleted["deleted_scene_numbers"], deleted["regenerated_scenes"]) == ([2], [])
    assert len(sim.video(video)["scenes"]) == 5
    r = post_edit(client, video, "vertical please", aspect_ratio="9:16")
    clock.tick(2 * S)
    whole = sim.edit(r.json()["edit_id"])["result"]
    assert whole["changed_scene_numbers"] == [1, 2, 3, 4, 5] and whole["kept_scenes"] == []


def test_derive_scene_changes() -> None:
    assert derive_scene_changes("Replace the bird in scene 3 with a hawk", 5)["changed_scene_numbers"] == [3]
    assert derive_scene_changes("make scenes 1, 2 and 4 faster", 5)["changed_scene_numbers"] == [1, 2, 4]
    r = derive_scene_changes("remove scene 2 and make scene 4 blue", 5)
    assert (r["deleted_scene_numbers"], r["changed_scene_numbers"], r["regenerated_scenes"]) == (
        [2],
        [4],
        [3],
    )
    r = derive_scene_changes("add a scene after scene 2", 5)
    assert (r["added_scene_numbers"], r["changed_scene_numbers"]) == ([6], [])
    assert derive_scene_changes("more upbeat music", 5)["changed_scene_numbers"] == [1]
    assert derive_scene_changes("fix scene 9", 5)["changed_scene_numbers"] == [1]
    assert upper_bound_credits(["veo", "remotion", "veo", "remotion", "veo"]) == 105


def test_idempotent_replay(env: tuple[KnowlifySimulator, TestClient], clock: FakeClock) -> None:
    sim, client = env
    video = completed_video(client, clock)
    first = post_edit(client, video, "scene 2", idem="op-1")
    clock.tick(2 * S)  # state has moved on; the replay is still the original answer
    again = post_edit(client, video, "a different body entirely", idem="op-1")
    assert (again.status_code, again.json()) == (202, first.json())
    assert len(sim.video(video)["edit_ids"]) == 1
    assert post_edit(client, video, "scene 3", key=KEY_B, idem="op-1").status_code == 403  # per caller
    fresh = post_edit(client, video, "scene 3", idem="op-2")
    assert fresh.json()["edit_id"] != first.json()["edit_id"]
    assert [c.idempotency_key for c in sim.calls if c.path == "/v1/edits"] == ["op-1", "op-1", "op-1", "op-2"]
    clock.tick(86400)
    expired = post_edit(client, video, "scene 4", idem="op-1")
    assert expired.json()["edit_id"] != first.json()["edit_id"]


def test_idempotency_does_not_remember_errors(
    env: tuple[KnowlifySimulator, TestClient], clock: FakeClock
) -> None:
    _, client = env
    uuid = create(client)["results"][0]["uuid"]
    assert post_edit(client, uuid, "scene 2", idem="k").status_code == 409
    clock.tick(RENDER)
    assert post_edit(client, uuid, "scene 2", idem="k").status_code == 202


def test_409_while_building_and_after_failure(
    env: tuple[KnowlifySimulator, TestClient], clock: FakeClock
) -> None:
    sim, client = env
    rows = create(client, ["building", "broken"])["results"]
    clock.tick(4 * S)
    r = post_edit(client, rows[0]["uuid"], "scene 1")
    assert r.status_code == 409
    assert (
        r.json()["detail"]
        == "video is still being built (status=lowlevel); wait for the initial render to finish"
    )
    sim.fail_video(rows[1]["uuid"])
    r = post_edit(client, rows[1]["uuid"], "scene 1")
    assert (r.status_code, r.json()["detail"]) == (
        409,
        "video has errored (status=failed); it cannot be edited",
    )


def test_402_insufficient_credits(env: tuple[KnowlifySimulator, TestClient], clock: FakeClock) -> None:
    sim, client = env
    video = completed_video(client, clock)
    sim.set_credits(KEY_A, 104)
    r = post_edit(client, video, "scene 2")
    assert (r.status_code, r.json()) == (
        402,
        {"detail": "INSUFFICIENT_CREDITS: edit could cost up to 105, have 104"},
    )
    sim.set_credits(KEY_A, 105)
    assert post_edit(client, video, "scene 1").status_code == 202
    clock.tick(2 * S)
    assert sim.credits(KEY_A) == 105 - 29
    r = post_edit(client, video, "scene 1")
    assert r.json()["detail"] == "INSUFFICIENT_CREDITS: edit could cost up to 105, have 76"


def test_edit_validation_422(env: tuple[KnowlifySimulator, TestClient], clock: FakeClock) -> None:
    _, client = env
    video = completed_video(client, clock)
    cases = [
        ({"edit_request": "x"}, "video_uuid"),
        ({"video_uuid": video}, "edit_request"),
        ({"video_uuid": video, "edit_request": ""}, "edit_request"),
        ({"video_uuid": video, "edit_request": "x" * 5001}, "edit_request"),
        (
            {"video_uuid": video, "edit_request": "x", "reference_image_urls": ["https://a.com/i.png"] * 6},
            "reference",
        ),
        ({"video_uuid": video, "edit_request": "x", "aspect_ratio": "1:1"}, "aspect_ratio"),
    ]
    for body, field in cases:
        r = client.post("/v1/edits", json=body, headers=h())
        assert r.status_code == 422 and r.json()["detail"].startswith(field), (body, r.text)


def test_content_safety_400(env: tuple[KnowlifySimulator, TestClient], clock: FakeClock) -> None:
    _, client = env
    video = completed_video(client, clock)
    r = post_edit(client, video, "scene 2 [unsafe]", skip_content_safety=True)
    assert (r.status_code, r.json()) == (
        400,
        {"detail": "edit_request was rejected by the content-safety scan"},
    )


@pytest.mark.parametrize(
    ("url", "status"),
    [
        ("http://cdn.example.com/a.png", 422),
        ("https://localhost/a.png", 422),
        ("https://10.1.2.3/a.png", 422),
        ("https://127.0.0.1/a.jpg", 422),
        ("https://169.254.169.254/latest.png", 422),
        ("https://[::1]/a.png", 422),
        ("https://240.0.0.1/a.png", 422),
        ("https://cdn.example.com/readme.txt", 415),
        ("https://cdn.example.com/huge-photo.jpg", 415),
        ("https://cdn.example.com/no-length.webp", 415),
        ("https://8.8.8.8/ok.gif", 202),
        ("https://cdn.knowlify.com/assets/style-ref.JPEG", 202),
    ],
)
def test_reference_image_urls(
    env: tuple[KnowlifySimulator, TestClient], clock: FakeClock, url: str, status: int
) -> None:
    _, client = env
    video = completed_video(client, clock)
    r = post_edit(client, video, "scene 2", reference_image_urls=["https://cdn.example.com/fine.png", url])
    assert r.status_code == status, r.text
    if status != 202:
        assert r.json()["detail"].startswith("reference_image_urls[1]:")


def test_ambiguous_edit_errors(env: tuple[KnowlifySimulator, TestClient], clock: FakeClock) -> None:
    sim, client = env
    video = completed_video(client, clock)
    bad = post_edit(client, video, "make it better [ambiguous]").json()
    queued = post_edit(client, video, "scene 4").json()
    clock.tick(S / 2)
    p = client.get(f"/v1/edits/{bad['edit_id']}", headers=h()).json()
    assert (p["status"], p["is_failed"], p["is_complete"], p["result"]) == ("error", True, False, None)
    assert p["error_message"] == "edit request was ambiguous; rephrase and retry."
    assert p["progress"]["stage"] == "error"
    assert sim.edit(queued["edit_id"])["status"] == "processing"  # the queue moves on
    assert sim.credits(KEY_A) == 10_000


def test_never_rendered_video_skips_applying(
    env: tuple[KnowlifySimulator, TestClient], clock: FakeClock
) -> None:
    sim, client = env
    video = completed_video(client, clock, task="planner only [no-render]")
    edit_id = post_edit(client, video, "scene 1 and scene 2").json()["edit_id"]
    clock.tick(S * 0.9)
    assert sim.edit(edit_id)["status"] == "processing"
    clock.tick(S * 0.1)
    done = sim.edit(edit_id)
    assert done["status"] == "complete" and done["result"]["video_synced"] is False
    assert done["result"]["link"] is None
    assert sim.credits(KEY_A) == 10_000 - 4  # only phase 2, only the Veo scene


# --------------------------------------------------------------------------- revert


def test_revert_success(env: tuple[KnowlifySimulator, TestClient], clock: FakeClock) -> None:
    sim, client = env
    video = completed_video(client, clock)
    original_link = sim.video(video)["link"]
    edit_id = completed_edit(client, clock, video, "Add a closing scene and refresh scene 2")
    assert len(sim.video(video)["scenes"]) == 6
    completed = client.get(f"/v1/edits/{edit_id}", headers=h()).json()
    clock.tick(1)
    r = revert(client, edit_id)
    assert r.status_code == 200
    body = r.json()
    assert (body["status"], body["is_complete"], body["is_failed"]) == ("reverted", True, False)
    assert body["progress"] == {"stage": "done", "percent": 100}
    assert body["result"]["link"] == completed["result"]["link"]
    assert body["result"]["revert_diff"] == {
        "changed_scene_numbers": [2],
        "added_scene_numbers": [],
        "deleted_scene_numbers": [6],
    }
    assert body["updated_at"] > completed["updated_at"]
    assert client.get(f"/v1/edits/{edit_id}", headers=h()).json() == body
    after = sim.video(video)
    assert (after["planner_history"], len(after["scenes"]), after["link"]) == ([], 5, original_link)


def test_revert_guards(env: tuple[KnowlifySimulator, TestClient], clock: FakeClock) -> None:
    sim, client = env

    def conflict(edit_id: str) -> str:
        r = revert(client, edit_id)
        assert r.status_code == 409, r.text
        return r.json()["detail"]

    assert revert(client, "missing").json() == {"detail": "edit not found"}
    video = completed_video(client, clock)
    first = completed_edit(client, clock, video, "scene 1")
    r = revert(client, first, key=KEY_B)
    assert (r.status_code, r.json()) == (403, {"detail": "API key does not own this edit"})

    running = post_edit(client, video, "scene 2").json()["edit_id"]
    assert conflict(running) == "edit is not in a revertable state (status=processing)"
    clock.tick(S)
    assert conflict(running) == "edit is not in a revertable state (status=applying)"
    assert conflict(first) == "cannot revert while another edit is processing or queued"
    clock.tick(S)
    assert conflict(first) == "a newer external edit exists on this video; revert the most recent edit first"

    sim.frontend_edit(video)
    assert sim.video(video)["planner_history"] == [first, running, "frontend"]
    assert conflict(running) == (
        "snapshot at the top of planner_history was not saved by this edit; cannot safely revert"
    )

    other = completed_video(client, clock)
    orphan = completed_edit(client, clock, other, "scene 3 [no-snapshot]")
    assert conflict(orphan) == "no snapshot available to revert"

    ok = completed_edit(client, clock, other, "scene 4")
    assert conflict(orphan) == "a newer external edit exists on this video; revert the most recent edit first"
    assert revert(client, ok).status_code == 200
    assert conflict(ok) == "edit is not in a revertable state (status=reverted)"

    failed = post_edit(client, other, "[ambiguous]").json()["edit_id"]
    queued = post_edit(client, other, "scene 1").json()["edit_id"]
    assert conflict(queued) == "edit is not in a revertable state (status=queued)"
    clock.tick(S / 2)
    assert conflict(failed) == "edit is not in a revertable state (status=error)"


def test_lifo_reverts_in_order(env: tuple[KnowlifySimulator, TestClient], clock: FakeClock) -> None:
    sim, client = env
    video = completed_video(client, clock)
    e1 = completed_edit(client, clock, video, "scene 1")
    e2 = completed_edit(client, clock, video, "scene 2")
    assert revert(client, e1).status_code == 409
    assert revert(client, e2).status_code == 200
    assert revert(client, e1).status_code == 200
    assert sim.video(video)["planner_history"] == []


# --------------------------------------------------------------------------- faults and controls


def test_fault_injection(env: tuple[KnowlifySimulator, TestClient], clock: FakeClock) -> None:
    sim, client = env
    sim.inject_fault(path_prefix="/v1/videos", method="POST", status=500, times=2)
    body = {"videos": [{"task": "x"}]}
    for _ in range(2):
        r = client.post("/v1/videos", json=body, headers=h())
        assert (r.status_code, r.json()) == (500, {"detail": "injected fault: HTTP 500"})
    ok = client.post("/v1/videos", json=body, headers=h())
    assert ok.status_code == 200 and ok.headers["x-ratelimit-remaining"] == "9999"  # faults cost no quota
    assert len([c for c in sim.calls if c.status == 500]) == 2

    sim.inject_fault(path_prefix="/v1/videos/", status=429, retry_after=7)
    r = client.get("/v1/videos/x", headers=h())
    assert (r.status_code, r.headers["retry-after"], r.headers["x-ratelimit-remaining"]) == (429, "7", "0")
    assert r.json() == {"detail": "Rate limit exceeded: 10000 requests per 60s. Retry in 7s."}

    sim.inject_fault(path_prefix="/v1/edits", status=200, body="{truncated")
    r = client.get("/v1/edits/x", headers=h())
    assert (r.status_code, r.text) == (200, "{truncated")

    sim.inject_fault(path_prefix="/v1/edits", method="GET", status=503, delay=0.05)
    started = time.monotonic()
    assert client.get("/v1/edits/x", headers=h()).status_code == 503
    assert time.monotonic() - started >= 0.05

    sim.inject_fault(path_prefix="/v1/videos", method="POST", status=0, delay=0.05)
    started = time.monotonic()
    slow = client.post("/v1/videos", json=body, headers=h())
    assert slow.status_code == 200 and time.monotonic() - started >= 0.05
    assert sim.video(slow.json()["results"][0]["uuid"])["state"] == "active"  # processed normally
    assert [c.status for c in sim.calls] == [500, 500, 200, 429, 200, 503, 200]
    with pytest.raises(ValueError):
        sim.inject_fault(path_prefix="/", status=0)


def test_calls_record_redacted_keys(env: tuple[KnowlifySimulator, TestClient]) -> None:
    sim, client = env
    create(client)
    call = sim.calls[-1]
    assert call == SimCall(
        "POST", "/v1/videos", 200, KEY_A[-6:], None, {"videos": [{"task": "Explain HTTPS"}]}, 1000.0
    )
    assert sim.count("post", "/v1/") == 1 and sim.count("GET", "/v1/") == 0
    assert all(KEY_A not in repr(c) for c in sim.calls)


def test_http_controls(env: tuple[KnowlifySimulator, TestClient], clock: FakeClock) -> None:
    sim, client = env
    rows = create(client, ["a", "b"])["results"]
    r = client.post("/_sim/faults", json={"path_prefix": "/v1/videos/", "status": 502})
    assert r.status_code == 200
    assert client.get(f"/v1/videos/{rows[0]['uuid']}", headers=h()).status_code == 502
    assert client.post("/_sim/faults", json={"status": 500}).status_code == 400
    assert client.post(f"/_sim/videos/{rows[1]['uuid']}/fail", json={"message": "gone"}).json()["is_failed"]
    assert client.post("/_sim/videos/nope/fail").status_code == 404
    clock.tick(RENDER)
    assert client.post(f"/_sim/videos/{rows[0]['uuid']}/frontend-edit").json() == {
        "planner_history": ["frontend"]
    }
    assert client.post("/_sim/credits", json={"api_key": KEY_A, "credits": 3}).status_code == 200
    assert post_edit(client, rows[0]["uuid"], "scene 1").json()["detail"].endswith("have 3")
    assert client.post("/_sim/credits", json={"api_key": "kn_short", "credits": 3}).status_code == 400
    calls = client.get("/_sim/calls").json()
    assert [c["status"] for c in calls] == [200, 502, 402]
    assert {c["key"] for c in calls} == {KEY_A[-6:]}
    assert client.get(f"/_sim/videos/{rows[0]['uuid']}").json()["status"] == "complete"
    assert all(not c.path.startswith("/_sim") for c in sim.calls)


def test_wait_for_calls(env: tuple[KnowlifySimulator, TestClient]) -> None:
    sim, client = env
    worker = threading.Thread(target=lambda: create(client, ["from another thread"]))
    worker.start()
    got = sim.wait_for_calls(lambda c: c.method == "POST" and c.path == "/v1/videos", timeout=5)
    worker.join()
    assert got[0].status == 200

    def edits_posted(call: SimCall) -> bool:
        return call.path == "/v1/edits"

    with pytest.raises(
        TimeoutError, match=r"edits_posted.*0 matched out of 1 recorded.*POST /v1/videos -> 200"
    ):
        sim.wait_for_calls(edits_posted, timeout=0.01)


# --------------------------------------------------------------------------- real sockets


def _listening_socket() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)  # connections queue up before the server starts accepting: no readiness polling
    return sock


def test_served_over_a_real_socket_with_timeout_fault() -> None:
    sock = _listening_socket()
    port = sock.getsockname()[1]
    sim = KnowlifySimulator(SimConfig(stage_seconds=0.01))
    server = make_server(sim, "127.0.0.1", port)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=5) as http:
            r = http.post("/v1/videos", json={"videos": [{"task": "x"}]}, headers=h())
            assert r.status_code == 200 and r.headers["x-ratelimit-remaining"] == "29"
            sim.inject_fault(path_prefix="/v1/videos/", status=0, delay=0.3)
            with pytest.raises(httpx.ReadTimeout):
                http.get(f"/v1/videos/{r.json()['results'][0]['uuid']}", headers=h(), timeout=0.05)
            assert sim.wait_for_calls(lambda c: c.method == "GET", timeout=5)[0].status == 200
    finally:
        server.should_exit = True
        thread.join(timeout=5)
        sock.close()
    assert not thread.is_alive()


def test_run_simulator_answers_over_a_real_socket() -> None:
    sock = _listening_socket()
    port = sock.getsockname()[1]
    code = (
        "import socket, sys\n"
        "from sandbox.knowlify_sim import SimConfig, run_simulator\n"
        "sock = socket.socket(fileno=int(sys.argv[1]))\n"
        "run_simulator('127.0.0.1', int(sys.argv[2]), SimConfig(), sock=sock)\n"
    )
    root = Path(__file__).resolve().parents[2]
    proc = subprocess.Popen(
        [sys.executable, "-c", code, str(sock.fileno()), str(port)], pass_fds=[sock.fileno()], cwd=root
    )
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=20) as http:
            assert http.get("/v1/videos/x").status_code == 401
            assert http.get("/v1/videos/x", headers=h()).json() == {"detail": "video not found"}
            assert [c["status"] for c in http.get("/_sim/calls").json()] == [401, 404]
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        sock.close()

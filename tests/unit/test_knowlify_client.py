"""KnowlifyClient against httpx.MockTransport: every documented status, one attempt per call, no sleeps."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from bot.core.retry import Call, backoff_seconds, retry
from bot.knowlify.budget import Bucket, Budget, InMemoryCallLog, key_fingerprint
from bot.knowlify.client import KnowlifyClient
from bot.knowlify.errors import (
    BudgetExhausted,
    KnowlifyError,
    MalformedResponse,
    OutcomeUnknown,
    RateLimited,
    ServerError,
    Unreachable,
    detail_text,
    failure_of,
    parse_seconds,
)
from bot.knowlify.models import EDIT_STATUSES, VIDEO_STAGES, EditStatus, VideoSpec, VideoStatus

API_KEY = "kn_" + "9f3a" * 16
BASE = "https://api.knowlify.test"
VIDEO = "550e8400-e29b-41d4-a716-446655440000"
EDIT = "e942890a-7776-4029-82d6-ce733d0a2cb2"
CALLS = {
    "create_video": Call.CREATE_VIDEO,
    "create_edit": Call.CREATE_EDIT,
    "get_video": Call.POLL_VIDEO,
    "get_edit": Call.POLL_EDIT,
    "revert_edit": Call.REVERT,
}


def retry_delay(err: KnowlifyError, attempt: int, call: str = "get_video") -> float | None:
    """The policy's answer for retry number ``attempt`` (1-based) of ``call`` after ``err``."""
    return retry(failure_of(err), CALLS[call], attempt - 1).delay


RL_HEADERS = {"X-RateLimit-Limit": "30", "X-RateLimit-Remaining": "27", "X-RateLimit-Reset": "42"}

CREATE_OK = {
    "status": "ok",
    "total": 2,
    "enqueued": 1,
    "parked": 1,
    "errors": 0,
    "user_id": "5b9e-c1",
    "org_id": None,
    "results": [
        {
            "index": 0,
            "uuid": VIDEO,
            "session_id": "550e8400-e29b-41d4-a716-446655440001",
            "chat_url": "https://create.knowlify.com/p/chat/550e8400-e29b-41d4-a716-446655440001",
            "status": "queued",
        },
        {
            "index": 1,
            "uuid": "550e8400-e29b-41d4-a716-446655440002",
            "session_id": "550e8400-e29b-41d4-a716-446655440003",
            "chat_url": "https://create.knowlify.com/p/chat/550e8400-e29b-41d4-a716-446655440003",
            "status": "parked",
            "queue_position": 1,
        },
    ],
}
VIDEO_MID = {
    "uuid": VIDEO,
    "status": "generating_frames",
    "is_complete": False,
    "is_failed": False,
    "progress": {"stage": "generating_frames", "percent": 88, "current_scene": 4, "total_scenes": 5},
    "error_message": None,
    "task": "Explain how HTTPS works in 30 seconds",
    "created_at": "2026-04-25T12:34:56.789012+00:00",
    "updated_at": "2026-04-25T12:36:18.123456+00:00",
}
REVERTED = {
    "edit_id": EDIT,
    "video_uuid": VIDEO,
    "status": "reverted",
    "is_complete": True,
    "is_failed": False,
    "progress": {"stage": "done", "percent": 100},
    "result": {
        "link": f"https://animation-encoder-videos.s3.us-west-2.amazonaws.com/{VIDEO}.mp4",
        "changed_scene_numbers": [2],
        "added_scene_numbers": [],
        "deleted_scene_numbers": [],
        "regenerated_scenes": [2],
        "kept_scenes": [1, 3, 4, 5],
        "video_synced": True,
        "revert_diff": {"changed_scene_numbers": [2], "added_scene_numbers": [], "deleted_scene_numbers": []},
    },
    "error_message": None,
    "created_at": "2026-05-25T15:30:01.000000+00:00",
    "updated_at": "2026-05-25T15:45:11.000000+00:00",
}
REVERT_GUARDS = [
    "edit is not in a revertable state (status=processing)",
    "cannot revert while another edit is processing or queued",
    "a newer external edit exists on this video; revert the most recent edit first",
    "snapshot at the top of planner_history was not saved by this edit; cannot safely revert",
    "no snapshot available to revert",
]


class FakeClock:
    def __init__(self, now: float = 1_700_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


Handler = Callable[[httpx.Request], httpx.Response]


class Harness:
    """A client wired to a mock handler, recording every request that reached the 'network'."""

    def __init__(self, handler: Handler) -> None:
        self.requests: list[httpx.Request] = []
        self.clock = FakeClock()
        self.log = InMemoryCallLog()
        self.budget = Budget(self.log, key_id=key_fingerprint(API_KEY), clock=self.clock)

        def record(request: httpx.Request) -> httpx.Response:
            self.requests.append(request)
            return handler(request)

        self.client = KnowlifyClient(API_KEY, BASE, self.budget, transport=httpx.MockTransport(record))


def reply(status: int, body: Any = None, headers: dict[str, str] | None = None) -> Handler:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(status, json=body, headers=headers)

    return handler


def fail_with(exc_type: type[httpx.TransportError], message: str = "boom") -> Handler:
    def handler(request: httpx.Request) -> httpx.Response:
        raise exc_type(message, request=request)

    return handler


@pytest.fixture
def harness_for() -> Callable[[Handler], Harness]:
    made: list[Harness] = []

    def make(handler: Handler) -> Harness:
        made.append(Harness(handler))
        return made[-1]

    yield make
    for h in made:
        h.client.close()


# -- success paths -------------------------------------------------------------------------------


def test_create_videos_sends_key_and_payload_without_unset_fields(harness_for) -> None:
    h = harness_for(reply(200, CREATE_OK, RL_HEADERS))
    specs = [
        VideoSpec(task="Explain HTTPS", video_duration_seconds=60, color_palette={"primary": "#0066cc"}),
        VideoSpec(task="Quarterly recap", aspect_ratio="9:16", voice_id="v-1"),
    ]
    out = h.client.create_videos(specs)

    (request,) = h.requests
    assert request.method == "POST" and request.url == f"{BASE}/v1/videos"
    assert request.headers["X-API-Key"] == API_KEY
    assert "Idempotency-Key" not in request.headers
    assert json.loads(request.content) == {
        "videos": [
            {"task": "Explain HTTPS", "video_duration_seconds": 60, "color_palette": {"primary": "#0066cc"}},
            {"task": "Quarterly recap", "aspect_ratio": "9:16", "voice_id": "v-1"},
        ]
    }
    assert (out.total, out.enqueued, out.parked, out.errors, out.org_id) == (2, 1, 1, 0, None)
    assert [r.status for r in out.results] == ["queued", "parked"]
    assert out.results[1].queue_position == 1
    assert out.results[0].uuid == VIDEO


def test_create_video_returns_a_per_item_error_row_instead_of_raising(harness_for) -> None:
    body = {
        **CREATE_OK,
        "total": 1,
        "enqueued": 0,
        "parked": 0,
        "errors": 1,
        "results": [
            {
                "index": 0,
                "uuid": VIDEO,
                "session_id": "s",
                "chat_url": "c",
                "status": "error",
                "code": "ITEM_FAILED",
                "message": "voice_id was rejected by the upstream provider",
            }
        ],
    }
    h = harness_for(reply(200, body))
    item = h.client.create_video(VideoSpec(task="x"))
    assert item.status == "error" and item.code == "ITEM_FAILED"
    assert item.message == "voice_id was rejected by the upstream provider"


def test_get_video_parses_progress_and_keeps_unknown_status_and_fields(harness_for) -> None:
    h = harness_for(reply(200, VIDEO_MID, RL_HEADERS))
    status = h.client.get_video(VIDEO)
    assert h.requests[0].method == "GET" and h.requests[0].url.path == f"/v1/videos/{VIDEO}"
    assert status.progress is not None and (status.progress.percent, status.progress.total_scenes) == (88, 5)
    assert status.status in VIDEO_STAGES and status.link is None

    h2 = harness_for(reply(200, {**VIDEO_MID, "status": "upscaling", "mp4_link": "https://cdn/x.mp4"}))
    odd = h2.client.get_video(VIDEO)
    assert odd.status == "upscaling" and not odd.is_complete and not odd.is_failed
    assert odd.link == "https://cdn/x.mp4"


def test_video_link_is_found_under_result_and_flags_derive_from_status_when_missing() -> None:
    done = VideoStatus.model_validate({"uuid": VIDEO, "status": "complete", "result": {"link": "https://l"}})
    assert done.is_complete and not done.is_failed and done.link == "https://l"
    failed = VideoStatus.model_validate({"uuid": VIDEO, "status": "failed", "error_message": "boom"})
    assert failed.is_failed and failed.link is None


def test_create_edit_sends_idempotency_key_and_only_given_options(harness_for) -> None:
    accepted = {"edit_id": EDIT, "video_uuid": VIDEO, "status": "processing", "queue_position": 0}
    h = harness_for(reply(202, accepted))
    out = h.client.create_edit(VIDEO, "Make scene 2 more dramatic", idempotency_key="slack:T1:C1:171.2")
    assert (out.edit_id, out.status, out.queue_position) == (EDIT, "processing", 0)
    request = h.requests[0]
    assert request.url.path == "/v1/edits"
    assert request.headers["Idempotency-Key"] == "slack:T1:C1:171.2"
    assert request.headers["X-API-Key"] == API_KEY
    assert json.loads(request.content) == {"video_uuid": VIDEO, "edit_request": "Make scene 2 more dramatic"}

    h.client.create_edit(
        VIDEO, "x", idempotency_key="k2", reference_image_urls=["https://cdn/ref.jpg"], aspect_ratio="9:16"
    )
    assert json.loads(h.requests[1].content) == {
        "video_uuid": VIDEO,
        "edit_request": "x",
        "reference_image_urls": ["https://cdn/ref.jpg"],
        "aspect_ratio": "9:16",
    }
    with pytest.raises(ValueError):
        h.client.create_edit(VIDEO, "x", idempotency_key="")


def test_get_edit_and_revert_parse_the_documented_shape(harness_for) -> None:
    h = harness_for(reply(200, REVERTED))
    reverted = h.client.revert_edit(EDIT)
    assert h.requests[0].method == "POST" and h.requests[0].url.path == f"/v1/edits/{EDIT}/revert"
    assert h.requests[0].content == b""
    assert reverted.status == "reverted" and reverted.is_complete and reverted.status in EDIT_STATUSES
    assert reverted.result is not None and reverted.result.revert_diff is not None
    assert reverted.result.revert_diff.changed_scene_numbers == [2]
    assert reverted.result.kept_scenes == [1, 3, 4, 5] and reverted.result.video_synced is True

    running = {**REVERTED, "status": "phase_two", "is_complete": False, "result": None, "progress": None}
    h2 = harness_for(reply(200, running))
    edit = h2.client.get_edit(EDIT)
    assert h2.requests[0].method == "GET" and h2.requests[0].url.path == f"/v1/edits/{EDIT}"
    assert edit.status == "phase_two" and edit.result is None and not edit.is_complete


def test_edit_result_tolerates_null_scene_lists() -> None:
    edit = EditStatus.model_validate(
        {"edit_id": EDIT, "status": "complete", "result": {"link": None, "kept_scenes": None}}
    )
    assert edit.is_complete and edit.result is not None and edit.result.kept_scenes == []


def test_ids_are_quoted_into_a_single_path_segment(harness_for) -> None:
    h = harness_for(reply(200, VIDEO_MID))
    h.client.get_video("../edits/x")
    assert h.requests[0].url.raw_path == b"/v1/videos/..%2Fedits%2Fx"
    with pytest.raises(ValueError):
        h.client.get_edit("..")


def test_base_url_with_a_path_prefix_is_kept(harness_for) -> None:
    requests: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        requests.append(request)
        return httpx.Response(200, json=VIDEO_MID)

    budget = Budget(InMemoryCallLog(), key_id=key_fingerprint(API_KEY), clock=FakeClock())
    with KnowlifyClient(
        API_KEY, "http://sim:8080/knowlify", budget, transport=httpx.MockTransport(handler)
    ) as c:
        c.get_video(VIDEO)
    assert str(requests[0].url) == f"http://sim:8080/knowlify/v1/videos/{VIDEO}"


def test_client_refuses_a_budget_of_another_key_and_bad_batches(harness_for) -> None:
    budget = Budget(InMemoryCallLog(), key_id=key_fingerprint("kn_someone_else"))
    with pytest.raises(ValueError):
        KnowlifyClient(API_KEY, BASE, budget)
    h = harness_for(reply(200, CREATE_OK))
    with pytest.raises(ValueError):
        h.client.create_videos([])
    with pytest.raises(ValueError):
        h.client.create_videos([VideoSpec(task="t")] * 51)
    assert h.requests == []


# -- error statuses --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "detail", "call"),
    [
        (400, "org_id does not match the API key's organization", "create_video"),
        (400, "edit_request was rejected by the content-safety scan", "create_edit"),
        (401, "Invalid API key", "get_video"),
        (402, "INSUFFICIENT_CREDITS: edit could cost up to 145, have 20", "create_edit"),
        (403, "API key does not own this edit", "revert_edit"),
        (404, "edit not found", "get_edit"),
        (409, "video is still being built", "create_edit"),
        (415, "reference image Content-Type must be image/*", "create_edit"),
    ],
)
def test_client_errors_keep_the_detail_verbatim_and_are_not_retried(
    harness_for, status, detail, call
) -> None:
    h = harness_for(reply(status, {"detail": detail}))
    with pytest.raises(KnowlifyError) as info:
        _invoke(h.client, call)
    err = info.value
    assert type(err) is KnowlifyError
    assert (err.status, err.detail, err.retry_after) == (status, detail, None)
    # A refused write is not sent again; a 401 on a read waits a minute (the key may be rotated).
    assert retry_delay(err, 1, call) == (60.0 if status == 401 else None)
    assert len(h.requests) == 1


@pytest.mark.parametrize("guard", REVERT_GUARDS)
def test_each_revert_guard_409_passes_through_verbatim(harness_for, guard: str) -> None:
    h = harness_for(reply(409, {"detail": guard}))
    with pytest.raises(KnowlifyError) as info:
        h.client.revert_edit(EDIT)
    assert info.value.status == 409 and info.value.detail == guard
    assert guard in str(info.value)


def test_422_list_detail_becomes_one_readable_string(harness_for) -> None:
    body = {
        "detail": [
            {"type": "missing", "loc": ["body", "edit_request"], "msg": "Field required", "input": {}},
            {
                "type": "too_long",
                "loc": ["body", "reference_image_urls"],
                "msg": "List should have at most 5 items after validation, not 6",
            },
        ]
    }
    h = harness_for(reply(422, body))
    with pytest.raises(KnowlifyError) as info:
        h.client.create_edit(VIDEO, "x", idempotency_key="k")
    assert info.value.status == 422
    assert info.value.detail == (
        "edit_request: Field required; "
        "reference_image_urls: List should have at most 5 items after validation, not 6"
    )


def test_detail_text_shapes() -> None:
    assert (
        detail_text({"detail": [{"loc": ["body", "videos", 0, "task"], "msg": "bad"}]})
        == "videos.0.task: bad"
    )
    assert detail_text({"detail": {"code": "X"}}) == '{"code":"X"}'
    assert detail_text({"message": "no detail"}) is None
    assert detail_text(["x"]) is None


def test_non_json_error_body_falls_back_to_text_or_reason(harness_for) -> None:
    h = harness_for(lambda r: httpx.Response(502, text="<html>Bad gateway</html>"))
    with pytest.raises(ServerError) as info:
        h.client.get_video(VIDEO)
    assert info.value.detail == "<html>Bad gateway</html>"
    h2 = harness_for(lambda r: httpx.Response(404))
    with pytest.raises(KnowlifyError) as info2:
        h2.client.get_video(VIDEO)
    assert info2.value.detail == "Not Found"


def test_429_raises_rate_limited_and_pauses_the_bucket_without_another_request(harness_for) -> None:
    headers = {
        "Retry-After": "45",
        "X-RateLimit-Limit": "30",
        "X-RateLimit-Remaining": "0",
        "X-RateLimit-Reset": "45",
    }
    h = harness_for(
        reply(429, {"detail": "Rate limit exceeded: 30 requests per 60s. Retry in 45s."}, headers)
    )
    with pytest.raises(RateLimited) as info:
        h.client.get_video(VIDEO)
    err = info.value
    assert (err.status, err.retry_after) == (429, 45.0)
    assert err.detail == "Rate limit exceeded: 30 requests per 60s. Retry in 45s."
    assert retry_delay(err, 7) == 45.0

    with pytest.raises(BudgetExhausted) as blocked:
        h.client.create_video(VideoSpec(task="x"))  # an action waits too
    assert blocked.value.retry_after == pytest.approx(46, abs=0.01)  # Retry-After + 1 s margin
    assert len(h.requests) == 1
    # The edits bucket is independent.
    assert h.budget.log.blocked_until(h.budget.scope(Bucket.EDITS)) == 0.0

    h.clock.now += 46
    with pytest.raises(RateLimited):
        h.client.get_video(VIDEO)
    assert len(h.requests) == 2


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"X-RateLimit-Reset": "12"}, 12.0),
        ({}, 60.0),
        ({"Retry-After": "soon", "X-RateLimit-Reset": "9"}, 9.0),
    ],
)
def test_429_wait_falls_back_to_reset_then_60_seconds(harness_for, headers, expected) -> None:
    h = harness_for(
        reply(429, {"detail": "Rate limit exceeded: 10 requests per 60s. Retry in 12s."}, headers)
    )
    with pytest.raises(RateLimited) as info:
        h.client.get_edit(EDIT)
    assert info.value.retry_after == expected


def test_remaining_zero_on_a_success_pauses_the_next_call(harness_for) -> None:
    headers = {"X-RateLimit-Limit": "10", "X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "20"}
    h = harness_for(reply(200, REVERTED, headers))
    h.client.get_edit(EDIT)
    with pytest.raises(BudgetExhausted) as info:
        h.client.get_edit(EDIT)
    assert info.value.retry_after == pytest.approx(21, abs=0.01)
    assert len(h.requests) == 1


def test_500_is_a_server_error_with_exponential_backoff_and_one_attempt(harness_for) -> None:
    h = harness_for(reply(500, {"detail": "Internal Server Error"}))
    with pytest.raises(ServerError) as info:
        h.client.create_videos([VideoSpec(task="x")])
    err = info.value
    assert err.status == 500 and not err.outcome_unknown
    assert [retry_delay(err, n, "create_video") for n in (1, 2, 3)] == [2.0, 4.0, 8.0]
    assert len(h.requests) == 1


def test_503_retry_after_is_honoured_when_longer_than_backoff(harness_for) -> None:
    h = harness_for(reply(503, {"detail": "maintenance"}, {"Retry-After": "30"}))
    with pytest.raises(ServerError) as info:
        h.client.get_video(VIDEO)
    assert retry_delay(info.value, 1) == 30.0 and retry_delay(info.value, 6) == 64.0


def test_gateway_error_on_create_video_is_not_replayed_blindly(harness_for) -> None:
    h = harness_for(reply(504, {"detail": "upstream timed out"}))
    with pytest.raises(ServerError) as info:
        h.client.create_video(VideoSpec(task="x"))
    assert info.value.outcome_unknown and retry_delay(info.value, 1, "create_video") is None
    with pytest.raises(ServerError) as edit:
        h.client.create_edit(VIDEO, "x", idempotency_key="k")
    assert not edit.value.outcome_unknown and retry_delay(edit.value, 1, "create_edit") == 2.0


# -- unusable answers and transport failures ------------------------------------------------------


def test_malformed_json_on_create_video_is_an_unknown_outcome(harness_for) -> None:
    h = harness_for(lambda r: httpx.Response(200, text="{not json"))
    with pytest.raises(MalformedResponse) as info:
        h.client.create_video(VideoSpec(task="x"))
    err = info.value
    assert isinstance(err, OutcomeUnknown) and err.status == 200
    assert retry_delay(err, 1, "create_video") is None


def test_wrong_shape_is_malformed_but_a_poll_may_simply_try_again(harness_for) -> None:
    h = harness_for(reply(200, {"unexpected": True}))
    with pytest.raises(MalformedResponse) as info:
        h.client.get_video(VIDEO)
    assert "VideoStatus" in info.value.detail
    assert retry_delay(info.value, 2) == 4.0


def test_read_timeout_on_create_video_is_outcome_unknown_not_retryable(harness_for) -> None:
    h = harness_for(fail_with(httpx.ReadTimeout, "timed out"))
    with pytest.raises(OutcomeUnknown) as info:
        h.client.create_videos([VideoSpec(task="x")])
    err = info.value
    assert not isinstance(err, Unreachable | MalformedResponse)
    assert err.status is None and retry_delay(err, 1, "create_video") is None
    assert len(h.requests) == 1


@pytest.mark.parametrize("exc_type", [httpx.ReadTimeout, httpx.RemoteProtocolError, httpx.ReadError])
def test_lost_answer_on_create_edit_may_be_replayed_thanks_to_idempotency_key(harness_for, exc_type) -> None:
    h = harness_for(fail_with(exc_type))
    with pytest.raises(OutcomeUnknown) as info:
        h.client.create_edit(VIDEO, "x", idempotency_key="k")
    assert info.value.replay_safe and retry_delay(info.value, 1, "create_edit") == 2.0
    with pytest.raises(OutcomeUnknown) as revert:
        h.client.revert_edit(EDIT)
    # A revert is looked up (GET) before it is sent again, so a lost answer is retried too.
    assert not revert.value.replay_safe and retry_delay(revert.value, 1, "revert_edit") == 2.0


def test_read_timeout_on_a_poll_is_unreachable(harness_for) -> None:
    h = harness_for(fail_with(httpx.ReadTimeout))
    with pytest.raises(Unreachable) as info:
        h.client.get_edit(EDIT)
    assert info.value.status is None and retry_delay(info.value, 3) == 8.0


@pytest.mark.parametrize("exc_type", [httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout])
def test_connect_failure_is_unreachable_and_safe_to_retry_even_for_create(harness_for, exc_type) -> None:
    h = harness_for(fail_with(exc_type, "[Errno 111] Connection refused"))
    with pytest.raises(Unreachable) as info:
        h.client.create_videos([VideoSpec(task="x")])
    assert info.value.status is None and retry_delay(info.value, 1, "create_video") == 2.0


def test_budget_refusal_sends_nothing_and_polls_leave_room_for_actions(harness_for) -> None:
    h = harness_for(reply(200, REVERTED))
    for _ in range(6):
        h.client.get_edit(EDIT)
    with pytest.raises(BudgetExhausted) as info:
        h.client.get_edit(EDIT)
    assert info.value.status is None and info.value.retry_after > 0
    assert retry_delay(info.value, 1, "get_edit") == info.value.retry_after
    assert len(h.requests) == 6
    h.client.revert_edit(EDIT)  # a user's action still finds room
    assert len(h.requests) == 7


# -- secrecy --------------------------------------------------------------------------------------


def test_api_key_never_reaches_error_text_or_logs(harness_for, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    echoes = iter(
        [
            httpx.Response(401, json={"detail": f"invalid key {API_KEY}"}),
            httpx.Response(500, text=f"trace: X-API-Key={API_KEY}"),
            httpx.Response(200, text=f"oops {API_KEY}"),
        ]
    )

    def handler(request: httpx.Request) -> httpx.Response:
        try:
            return next(echoes)
        except StopIteration:
            raise httpx.ReadTimeout(f"timed out sending {API_KEY}", request=request) from None

    h = harness_for(handler)
    errors: list[KnowlifyError] = []
    for call in ("get_video", "get_video", "create_video", "create_video"):
        with pytest.raises(KnowlifyError) as info:
            _invoke(h.client, call)
        errors.append(info.value)

    assert [type(e) for e in errors] == [KnowlifyError, ServerError, MalformedResponse, OutcomeUnknown]
    for err in errors:
        for text in (str(err), repr(err), err.detail, str(err.args)):
            assert API_KEY not in text and API_KEY[3:20] not in text
    assert "kn_[redacted]" in errors[0].detail
    assert API_KEY not in repr(h.client)

    assert API_KEY not in caplog.text and API_KEY[3:20] not in caplog.text
    for record in caplog.records:
        assert API_KEY not in record.getMessage()
    ours = [r.getMessage() for r in caplog.records if r.name == "bot.knowlify.client"]
    assert any(m.startswith(f"knowlify GET /v1/videos/{VIDEO} -> 401 in ") for m in ours)
    assert any("POST /v1/videos failed: ReadTimeout" in m for m in ours)


# -- retry policy ---------------------------------------------------------------------------------


def test_backoff_doubles_from_two_seconds_and_caps_at_five_minutes() -> None:
    assert [backoff_seconds(n) for n in range(1, 11)] == [2, 4, 8, 16, 32, 64, 128, 256, 300, 300]
    assert backoff_seconds(0) == 2 and backoff_seconds(10_000) == 300


def test_retry_after_may_be_an_http_date() -> None:
    assert parse_seconds("Wed, 21 Oct 2015 07:28:30 GMT", now=1445412480.0) == 30.0
    assert parse_seconds("-5") == 0.0 and parse_seconds("nan") is None and parse_seconds(None) is None


def _invoke(client: KnowlifyClient, call: str) -> object:
    if call == "create_video":
        return client.create_video(VideoSpec(task="x"))
    if call == "create_edit":
        return client.create_edit(VIDEO, "x", idempotency_key="k")
    if call == "get_video":
        return client.get_video(VIDEO)
    if call == "get_edit":
        return client.get_edit(EDIT)
    return client.revert_edit(EDIT)

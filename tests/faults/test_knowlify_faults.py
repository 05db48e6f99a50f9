"""Knowlify misbehaves: a stretch of 500s, 429 with Retry-After, timeouts, malformed answers, an
unknown status value. Each time every job must end where Knowlify says it is, with nothing created
twice and every result told once."""

from __future__ import annotations

import itertools
import json

from tests.faults import report
from tests.faults.conversation import create, reply
from tests.faults.invariants import Ledger, check, job_for, settle, wait_for


def _body_task(call) -> str | None:  # type: ignore[no-untyped-def]
    try:
        return call.body["videos"][0]["task"]
    except (TypeError, KeyError, IndexError):
        return None


def _rendering(stack, prompt: str) -> dict:  # type: ignore[no-untyped-def]
    return wait_for(
        lambda: (job := job_for(stack, prompt)) and job["knowlify_uuid"] and job, 10, f"{prompt!r} created"
    )


def test_a_stretch_of_500s_is_backed_off_from_2s_and_every_job_recovers(fstack, baseline):
    stack, driver, ledger = fstack, fstack.driver, Ledger()
    # Knowlify is down for the next three requests, whatever they are.
    stack.sim.inject_fault(path_prefix="/v1/", status=500, times=3)
    create(stack, driver, ledger, "k500-a how lighthouses work")
    create(stack, driver, ledger, "k500-b how canals work")
    settle(stack, ledger, timeout=40)
    a = job_for(stack, "k500-a how lighthouses work")
    thread = a["card_ts"]
    stack.sim.inject_fault(path_prefix="/v1/edits", method="POST", status=503, times=1)
    reply(driver, ledger, "k500-a how lighthouses work", "k500 edit: make scene 3 calmer", thread)
    settle(stack, ledger, timeout=20)
    outcome = check(stack, ledger)

    # Backoff starts at 2 s: no job asked again sooner after its 500.
    for prompt in ledger.videos:
        times = [c for c in stack.sim.calls if c.path == "/v1/videos" and _body_task(c) == prompt]
        for failed, retry in itertools.pairwise(times):
            if failed.status >= 500:
                assert retry.at - failed.at >= 2.0 - 0.05, (
                    f"{prompt!r} retried after {retry.at - failed.at:.2f}s"
                )
    edits = [c for c in stack.sim.calls if c.method == "POST" and c.path == "/v1/edits"]
    assert [c.status for c in edits] == [503, 202]
    assert edits[1].at - edits[0].at >= 2.0 - 0.05
    assert edits[0].idempotency_key == edits[1].idempotency_key
    assert sum(1 for c in stack.sim.calls if c.status >= 500) == 4
    report.record("Knowlify 500 ×3 then 503 on the edit", outcome, baseline)


def test_429_with_retry_after_is_waited_out_per_bucket(fstack, baseline):
    stack, driver, ledger = fstack, fstack.driver, Ledger()
    prompt = "k429 how glaciers move"
    stack.sim.inject_fault(path_prefix="/v1/videos", method="POST", status=429, retry_after=1)
    create(stack, driver, ledger, prompt)
    _rendering(stack, prompt)
    stack.sim.inject_fault(path_prefix="/v1/videos/", method="GET", status=429, retry_after=1)
    settle(stack, ledger)
    stack.sim.inject_fault(path_prefix="/v1/edits", method="POST", status=429, retry_after=1)
    reply(driver, ledger, prompt, "k429 edit: add a new scene about ice", job_for(stack, prompt)["card_ts"])
    settle(stack, ledger)
    outcome = check(stack, ledger)

    limited = [c for c in stack.sim.calls if c.status == 429]
    assert len(limited) == 3, "only the injected 429s: the bot's own pacing caused none"
    for hit in limited:
        bucket = hit.path.split("/")[2]
        later = [c for c in stack.sim.calls if c.at > hit.at and c.path.split("/")[2] == bucket]
        assert later, f"nothing was sent to {bucket} after the 429"
        assert later[0].at - hit.at >= 1.0 - 0.05, (
            f"{bucket} called again {later[0].at - hit.at:.2f}s after a 429 with Retry-After: 1"
        )
    report.record("Knowlify 429 Retry-After 1 (create, poll, edit)", outcome, baseline)


def test_timeouts_create_unknown_poll_and_edit_retried_without_duplicates(fstack, baseline):
    stack, ledger = fstack, Ledger()
    stack.stop_bot()
    stack.start_bot(knowlify_timeout_seconds=0.3)
    driver = stack.driver
    # The create's answer never arrives (Knowlify did create it): unknown, told once, not resent.
    stack.sim.inject_fault(path_prefix="/v1/videos", method="POST", status=0, delay=1.0)
    create(stack, driver, ledger, "ktimeout-u how volcanoes erupt", unknown_ok=True)
    prompt = "ktimeout-a how bridges stand"
    create(stack, driver, ledger, prompt)
    _rendering(stack, prompt)
    # One poll times out; the next one is fine.
    stack.sim.inject_fault(path_prefix="/v1/videos/", method="GET", status=0, delay=1.0)
    settle(stack, ledger)
    # The edit is accepted by Knowlify but its answer is lost: resent with the same key, replayed.
    stack.sim.inject_fault(path_prefix="/v1/edits", method="POST", status=0, delay=1.0)
    reply(driver, ledger, prompt, "ktimeout edit: make scene 2 slower", job_for(stack, prompt)["card_ts"])
    settle(stack, ledger)
    outcome = check(stack, ledger)

    assert job_for(stack, "ktimeout-u how volcanoes erupt")["state"] == "unknown"
    creates = [c for c in stack.sim.calls if c.method == "POST" and c.path == "/v1/videos"]
    assert len(creates) == 2, "an unanswered create is never resent on its own"
    sends = [c for c in stack.sim.calls if c.method == "POST" and c.path == "/v1/edits"]
    assert len(sends) == 2 and len({c.idempotency_key for c in sends}) == 1
    report.record("Knowlify timeouts (create unknown, poll, edit)", outcome, baseline)


def test_malformed_json_and_unknown_status_values(fstack, baseline):
    stack, driver, ledger = fstack, fstack.driver, Ledger()
    # A 200 whose body is not JSON: the create may or may not have happened -> unknown, told once.
    stack.sim.inject_fault(path_prefix="/v1/videos", method="POST", status=200, body="{not json")
    create(stack, driver, ledger, "kjson-u how clouds form", unknown_ok=True)
    prompt = "kjson-a how compasses point north"
    create(stack, driver, ledger, prompt)
    uuid = _rendering(stack, prompt)["knowlify_uuid"]
    stack.sim.inject_fault(
        path_prefix=f"/v1/videos/{uuid}", method="GET", status=200, body="<html>502</html>"
    )
    odd = {"uuid": uuid, "status": "transcoding", "progress": {"stage": "transcoding", "percent": 97}}
    stack.sim.inject_fault(path_prefix=f"/v1/videos/{uuid}", method="GET", status=200, body=json.dumps(odd))
    settle(stack, ledger)
    # The edit's 202 carries no edit_id (resent with the same key); its first poll has a new status.
    stack.sim.inject_fault(path_prefix="/v1/edits", method="POST", status=202, body='{"accepted": true}')
    weird = {"edit_id": "e", "status": "thinking", "progress": {"stage": "thinking", "percent": 50}}
    stack.sim.inject_fault(path_prefix="/v1/edits/", method="GET", status=200, body=json.dumps(weird))
    reply(driver, ledger, prompt, "kjson edit: make scene 4 warmer", job_for(stack, prompt)["card_ts"])
    settle(stack, ledger)
    outcome = check(stack, ledger)

    assert job_for(stack, "kjson-u how clouds form")["state"] == "unknown"
    polls = [c for c in stack.sim.calls if c.method == "GET" and c.path == f"/v1/videos/{uuid}"]
    assert len(polls) >= 3, "the bot kept polling through the malformed and the unknown answers"
    report.record("Knowlify malformed JSON / unknown status", outcome, baseline)

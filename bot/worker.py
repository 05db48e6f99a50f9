"""The worker: each tick claims due jobs from the database and moves each one step forward.

Every Knowlify and Slack call the bot makes after an ack happens here, in one place, so the rules of
PRODUCT.md §2 hold by construction:
- a row is claimed under a lease (storage.repo.Store.claim) before it is touched: two replicas never
  work on the same job, and a crashed worker's jobs are taken over when its lease expires;
- state that decides whether a paid call happens is committed *before* the call (`submitting`), so a
  crash mid-call is told apart from a failure on restart;
- nothing sleeps: a budget wait, a 429 or a 5xx backoff becomes the row's `next_run_at`.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from sqlmodel import col

from bot import metrics
from bot.core import lifecycle as lc
from bot.core import polling, texts
from bot.core.versions import EditView, current_version
from bot.knowlify.client import KnowlifyClient
from bot.knowlify.errors import (
    BudgetExhausted,
    KnowlifyError,
    OutcomeUnknown,
    RateLimited,
    ServerError,
    retry_delay,
)
from bot.knowlify.models import EditStatus, VideoSpec, VideoStatus
from bot.slack_ops import NO_ACCESS, SlackFailure, SlackOps
from bot.ui.card import CardView, card, retry_blocks
from storage.models import EditJob, VideoJob
from storage.repo import Store

log = logging.getLogger(__name__)

# next_run_at of a row with nothing left to do (finite, so every database stores it).
NEVER = 9.0e12
# A 5xx on a create is retried this many times (2 s, 4 s, … ≈ 2 min) before the user is told.
MAX_CREATE_ATTEMPTS = 7
# Slack failures that are worth another try later (anything else is logged and skipped).
SLACK_RETRY_SECONDS = 5.0


def edit_idempotency_key(team_id: str, channel_id: str, reply_ts: str) -> str:
    """Derived from the Slack message, so every retry of the same reply replays, never duplicates."""
    digest = hashlib.sha256(f"{team_id}:{channel_id}:{reply_ts}".encode()).hexdigest()[:32]
    return f"slack-edit-{digest}"


def options_of(job: VideoJob) -> dict[str, Any]:
    return json.loads(job.options_json or "{}")


class Worker:
    def __init__(
        self,
        store: Store,
        knowlify: KnowlifyClient,
        slack: SlackOps,
        *,
        key_id: str,
        poll_seconds: float,
        owner: str | None = None,
        clock: Callable[[], float] = time.time,
        lease_seconds: float = 120.0,
        batch: int = 25,
        poll_policy: polling.PollPolicy | None = None,
    ) -> None:
        self.store = store
        self.knowlify = knowlify
        self.slack = slack
        self.key_id = key_id
        self.poll_seconds = poll_seconds
        self.owner = owner or f"worker-{uuid.uuid4().hex[:12]}"
        self.clock = clock
        self.lease_seconds = lease_seconds
        self.batch = batch
        self.poll_policy = poll_policy or polling.PollPolicy(poll_seconds=poll_seconds)
        self.stopping = threading.Event()  # set by Runtime.stop: finish the current job, hand back the rest

    # --- the tick ------------------------------------------------------------------------

    def tick(self) -> int:
        """Move every due job one step; returns how many jobs were handled."""
        handled = 0
        videos = self.store.claim(
            VideoJob,
            self.owner,
            self.lease_seconds,
            self.batch,
            # Every key's rows: a row stamped with another key was made under an earlier
            # KNOWLIFY_API_KEY, and goes on under this one (see _key_changed).
            col(VideoJob.state).in_(lc.VIDEO_WORK_STATES),
        )
        # Oldest first: creates reach Knowlify in the order people asked (it parks them FIFO).
        for job in sorted(videos, key=lambda j: j.id or 0):
            if self._hand_back(job):
                continue
            handled += 1
            self._guarded(self._video_step, job)
        edits = self.store.claim(
            EditJob,
            self.owner,
            self.lease_seconds,
            self.batch,
            (col(EditJob.state).in_(lc.EDIT_WORK_STATES))
            | (col(EditJob.revert_state).in_(lc.REVERT_WORK_STATES)),
        )
        for edit in edits:
            if self._hand_back(edit):
                continue
            handled += 1
            self._guarded(self._edit_step, edit)
            if edit.revert_state not in lc.REVERT_WORK_STATES:
                # A reaction asked for a revert while this step held the lease: the release above
                # wrote its own next_run_at (often NEVER) over the listener's "now".
                self.store.update_where(
                    EditJob,
                    {"next_run_at": self.clock()},
                    EditJob.id == edit.id,
                    col(EditJob.revert_state).in_(lc.REVERT_WORK_STATES),
                    col(EditJob.lease_owner).is_(None),
                )
        return handled

    def _hand_back(self, row: VideoJob | EditJob) -> bool:
        """While stopping, give claimed rows back untouched so another worker (or the next start)
        takes them at once instead of after the lease expires."""
        if not self.stopping.is_set():
            return False
        self.store.release(row, self.owner, row.next_run_at)
        return True

    def _guarded(self, step: Callable[[Any], None], row: VideoJob | EditJob) -> None:
        """One job's surprise must not stop the others: log it and try that job again later."""
        try:
            step(row)
        except Exception:
            ref = uuid.uuid4().hex[:8]
            log.exception("worker step failed for %s %s (ref %s)", type(row).__name__, row.id, ref)
            attempts = row.attempts + 1
            self.store.release(row, self.owner, self.clock() + min(300.0, 2.0**attempts), attempts=attempts)

    def _later(self, row: VideoJob | EditJob, error: KnowlifyError, **values: Any) -> None:
        """Reschedule after a retryable Knowlify error.

        Waiting for the budget or a 429 is not a failure: only errors count as attempts, which set
        the backoff and, for creates, when to give up.
        """
        waiting = isinstance(error, BudgetExhausted | RateLimited)
        attempts = row.attempts if waiting else row.attempts + 1
        delay = retry_delay(error, max(attempts, 1))
        wait = max(delay if delay is not None else 2.0**attempts, 0.01)
        log.info("%s %s waits %.1fs: %s", type(row).__name__, row.id, wait, type(error).__name__)
        self.store.release(row, self.owner, self.clock() + wait, attempts=attempts, **values)

    # --- videos --------------------------------------------------------------------------

    def _key_changed(self, video: VideoJob, error: KnowlifyError) -> bool:
        """A 403/404 about a video made under an earlier key: the current key does not know it."""
        return error.status in (403, 404) and video.key_id != self.key_id

    def _video_step(self, job: VideoJob) -> None:
        if job.key_id != self.key_id and job.state in (lc.NEW, lc.READY):
            # Not sent yet: it simply goes to Knowlify under the current key.
            self.store.save(job, self.owner, key_id=self.key_id)
        if job.state == lc.NEW and not self._post_card(job):
            return
        if job.state == lc.READY:
            self._submit_video(job)
        elif job.state == lc.SUBMITTING:
            # Claimed while "submitting": the process died between sending the create and storing
            # its answer. Knowlify may have the video; only the user can decide to try again.
            self._outcome_unknown(job)
        elif job.state == lc.RENDERING:
            self._poll_video(job)

    def card_view(self, job: VideoJob, edits: list[EditJob] | None = None) -> CardView:
        if edits is None:
            edits = self.store.edits_of(job.id) if job.id is not None else []
        version = current_version(
            job.link or job.chat_url, [EditView(e.reply_ts, e.state, e.result_json) for e in edits]
        )
        progress = lc.Progress(
            job.status, job.percent, job.current_scene, job.total_scenes, job.queue_position
        )
        return card(
            prompt=job.prompt,
            user_id=job.user_id,
            options=options_of(job).get("summary", ""),
            state=job.state,
            progress=progress,
            error=job.error_message,
            link=version.link,
            edits_applied=version.edits_applied,
            note=job.joined_note,
        )

    def _post_card(self, job: VideoJob) -> bool:
        join_error = self.slack.join(job.channel_id) if job.channel_id.startswith(("C", "G")) else None
        # Private channels can't be joined (a bot that can post there is a member already); any other
        # refusal means the card may go out but replies in its thread would never reach the bot.
        note = None
        if join_error and join_error not in ("method_not_supported_for_channel_type", "already_in_channel"):
            log.info("could not join %s: %s", job.channel_id, join_error)
            note = texts.could_not_join(join_error)
        job.joined_note = note
        view = self.card_view(job, [])
        try:
            ts = self.slack.post(job.channel_id, view.text, view.blocks)
        except SlackFailure as exc:
            if exc.error in NO_ACCESS:
                self._tell_requester(job, texts.NEEDS_INVITE)
                self.store.release(job, self.owner, NEVER, state=lc.NEEDS_INVITE)
                return False
            log.warning("card for job %s not posted: %s", job.id, exc.error)
            self.store.release(job, self.owner, self.clock() + SLACK_RETRY_SECONDS, attempts=job.attempts + 1)
            return False
        self.store.save(
            job,
            self.owner,
            card_ts=ts,
            card_shown=view.fingerprint(),
            card_updated_at=self.clock(),
            state=lc.READY,
            joined_note=note,
        )
        self.store.add_thread_message(job.team_id, job.channel_id, ts, job.id, "card")  # type: ignore[arg-type]
        return True

    def _tell_requester(self, job: VideoJob, text: str) -> None:
        """Reach the requester without channel access: the command's response_url, else a DM."""
        if job.response_url and self.slack.respond(job.response_url, text):
            return
        try:
            self.slack.post(job.user_id, text)
        except SlackFailure as exc:
            log.warning("could not tell %s about job %s: %s", job.user_id, job.id, exc.error)

    def _submit_video(self, job: VideoJob) -> None:
        ahead = self.store.older_create_waiting(job.key_id, job.id or 0, (lc.NEW, lc.READY))
        if ahead is not None:
            # An older request waits for the budget: queue behind it rather than take the slot it
            # waits for. Same due time: claims go in id order, so it still leaves first.
            self.store.release(job, self.owner, max(ahead, self.clock()))
            return
        spec = VideoSpec(task=job.prompt, **options_of(job).get("fields", {}))
        if not self.store.save(job, self.owner, state=lc.SUBMITTING):
            return  # lease lost: another worker owns the job now
        try:
            item = self.knowlify.create_video(spec)
        except OutcomeUnknown as exc:
            if retry_delay(exc, job.attempts + 1) is None:
                self._outcome_unknown(job)
                return
            self._later(job, exc, state=lc.READY)
            return
        except ServerError as exc:
            if exc.outcome_unknown:
                self._outcome_unknown(job)
            elif job.attempts + 1 >= MAX_CREATE_ATTEMPTS:
                self._fail(job, texts.create_refused(exc.status, exc.detail))
            else:
                self._later(job, exc, state=lc.READY)
            return
        except KnowlifyError as exc:
            if retry_delay(exc, job.attempts + 1) is not None:
                self._later(job, exc, state=lc.READY)  # nothing was sent, or it was refused as a whole
            else:
                self._fail(job, texts.create_refused(exc.status, exc.detail))
            return
        if item.status == "error" or not item.uuid:
            self._fail(job, texts.item_failed(item.message))
            return
        status = "parked" if item.status == "parked" else item.status
        self.store.save(
            job,
            self.owner,
            state=lc.RENDERING,
            knowlify_uuid=item.uuid,
            chat_url=item.chat_url,
            status=status,
            queue_position=item.queue_position,
            attempts=0,
        )
        self._refresh_card(job, force=True)
        self.store.release(job, self.owner, self._next_video_poll(job))

    def _outcome_unknown(self, job: VideoJob) -> None:
        """Tell the thread first, then store the state with the notice's ts (as in _fail)."""
        ts = None
        if job.card_ts:
            try:
                ts = self.slack.post(
                    job.channel_id,
                    texts.UNKNOWN_OUTCOME,
                    retry_blocks(texts.UNKNOWN_OUTCOME, job.id or 0),
                    job.card_ts,
                )
            except SlackFailure as exc:
                log.warning("unknown-outcome notice for job %s not posted: %s", job.id, exc.error)
                self._tell_requester(job, texts.UNKNOWN_OUTCOME)
        self.store.save(job, self.owner, state=lc.UNKNOWN, unknown_notice_ts=ts)
        self._refresh_card(job, force=True)
        self.store.release(job, self.owner, NEVER)
        self._settle_waiting_edits(job)

    def _fail(self, job: VideoJob, message: str) -> None:
        """The job ends failed; the thread gets the reason once.

        Post first, then store the state with the reply's ts in one write: a crash in between can
        repeat the post (one call wide), never lose it.
        """
        final_ts = job.final_ts
        if final_ts is None and job.card_ts:
            try:
                final_ts = self.slack.post(job.channel_id, f":x: {message}", None, job.card_ts)
            except SlackFailure as exc:
                log.warning("failure of job %s not posted: %s", job.id, exc.error)
                self._tell_requester(job, message)
        elif final_ts is None:
            self._tell_requester(job, message)
        self.store.save(job, self.owner, state=lc.FAILED, error_message=message, final_ts=final_ts)
        if final_ts:
            self.store.add_thread_message(job.team_id, job.channel_id, final_ts, job.id, "final")  # type: ignore[arg-type]
        self._refresh_card(job, force=True)
        self.store.release(job, self.owner, NEVER)
        self._settle_waiting_edits(job)
        self.store.wake_first_parked(job.key_id, self.clock())  # its slot went to the next in line

    def _poll_video(self, job: VideoJob) -> None:
        assert job.knowlify_uuid
        if job.status == "parked":
            # Only the first few in line can move next; the rest wait without a request.
            now = self.clock()
            load, ahead = self._render_load(job, now)
            render = self._render(job, ahead)
            if not polling.is_polled(render, self.poll_policy):
                self.store.release(
                    job, self.owner, polling.next_video_poll(now, render, load, self.poll_policy)
                )
                return
        try:
            st: VideoStatus = self.knowlify.get_video(job.knowlify_uuid)
        except KnowlifyError as exc:
            if self._key_changed(job, exc):
                self._fail(job, texts.KEY_CHANGED_VIDEO)
            elif exc.status in (403, 404):
                self._fail(job, texts.video_gone(exc.detail))
            elif retry_delay(exc, job.attempts + 1) is None and exc.status == 401:
                log.error("Knowlify rejected the API key while polling job %s; retrying in 60 s", job.id)
                self.store.release(job, self.owner, self.clock() + 60.0)
            else:
                self._later(job, exc)
            return
        progress = st.progress
        values: dict[str, Any] = {
            "status": st.status,
            "percent": progress.percent if progress else None,
            "current_scene": progress.current_scene if progress else None,
            "total_scenes": progress.total_scenes if progress else None,
            "knowlify_updated_at": st.updated_at,
            "attempts": 0,
        }
        if st.status not in ("pending", "parked"):
            values["queue_position"] = None
        elif job.status == "parked":
            values["status"] = "parked"  # Knowlify shows parked jobs as pending; keep the position
        values["render_started_at"] = polling.learn_render_start(
            previous_status=job.status,
            previous_stage_started=_epoch(job.knowlify_updated_at, self.clock()),
            render_started=job.render_started_at,
            status=values["status"],
            stage_started=_epoch(st.updated_at, self.clock()),
            created_at=_epoch(st.created_at, self.clock()),
        )
        terminal = lc.is_terminal_status(st.status, st.is_complete, st.is_failed)
        if terminal == lc.COMPLETE:
            self.store.save(job, self.owner, **values, link=st.link)
            self._complete(job)
        elif terminal == lc.FAILED:
            self.store.save(job, self.owner, **values)
            self._fail(job, texts.render_failed(st.error_message))
        else:
            self.store.save(job, self.owner, **values)
            self._refresh_card(job)
            self.store.release(job, self.owner, self._next_video_poll(job))

    def _render_load(self, job: VideoJob, now: float) -> tuple[polling.KeyLoad, int]:
        """The key's renders in flight, as the poll policy sees them, and this job's place in line."""
        rows = self.store.renders_in_flight(job.key_id)
        return polling.key_load(rows, job.id or 0, now, self.poll_policy)

    def _render(self, job: VideoJob, parked_ahead: int) -> polling.Render:
        return polling.Render(
            status=job.status,
            stage_started=_epoch(job.knowlify_updated_at, self.clock()),
            render_started=job.render_started_at,
            parked_ahead=parked_ahead,
        )

    def _next_video_poll(self, job: VideoJob) -> float:
        now = self.clock()
        load, ahead = self._render_load(job, now)
        return polling.next_video_poll(now, self._render(job, ahead), load, self.poll_policy)

    def _next_edit_poll(self, edit: EditJob) -> float:
        now = self.clock()
        others = self.store.edit_polls(edit.key_id, other_than=edit.id or 0)
        booked = sorted(max(at, now) for at in others if at < now + 86_400)
        return polling.next_edit_poll(now, len(booked) + 1, booked, self.poll_policy)

    def _complete(self, job: VideoJob) -> None:
        link = job.link or job.chat_url or ""
        final_ts = job.final_ts
        if final_ts is None:
            try:
                final_ts = self.slack.post(
                    job.channel_id, texts.video_done(link, job.prompt), None, job.card_ts
                )
                metrics.link_posted(seen_at=job.updated_at, now=self.clock())
            except SlackFailure as exc:
                log.warning("completion of job %s not posted in the thread: %s", job.id, exc.error)
                self._tell_requester(job, texts.video_done(link, job.prompt))
        # State and the reply's ts in one write, right after the post: at most one post per job.
        self.store.save(job, self.owner, state=lc.COMPLETE, final_ts=final_ts)
        if final_ts:
            self.store.add_thread_message(job.team_id, job.channel_id, final_ts, job.id, "final")  # type: ignore[arg-type]
        self._refresh_card(job, force=True)
        self.store.release(job, self.owner, NEVER)
        self.store.wake_first_parked(job.key_id, self.clock())  # its slot went to the next in line
        # Replies kept during the render can go now.
        n = self.store.update_where(
            EditJob,
            {"state": lc.PENDING, "next_run_at": self.clock()},
            EditJob.video_id == job.id,
            col(EditJob.state).in_((lc.HELD, lc.WAITING)),
        )
        if n:
            log.info("job %s complete: %d kept edit(s) released", job.id, n)

    def _settle_waiting_edits(self, job: VideoJob) -> None:
        """Kept replies of a video that will never complete: wake them, and each one's own step
        (_hold, under its lease) tells the thread and ends it — post first, then store."""
        self.store.update_where(
            EditJob,
            {"next_run_at": self.clock()},
            EditJob.video_id == job.id,
            col(EditJob.state).in_((lc.HELD, lc.WAITING)),
        )

    def _refresh_card(self, job: VideoJob, *, force: bool = False) -> None:
        """chat.update only when what the card shows has changed, and not more often than allowed."""
        if not job.card_ts:
            return
        view = self.card_view(job)
        fingerprint = view.fingerprint()
        if fingerprint == job.card_shown:
            return
        now = self.clock()
        if not lc.card_update_due(now, job.card_updated_at, self.poll_seconds, force):
            return
        try:
            self.slack.update(job.channel_id, job.card_ts, view.text, view.blocks)
        except SlackFailure as exc:
            # A deleted card (message_not_found) or a closed channel must not stop the job.
            log.warning("card of job %s not updated: %s", job.id, exc.error)
            return
        self.store.update_where(
            VideoJob, {"card_shown": fingerprint, "card_updated_at": now}, VideoJob.id == job.id
        )
        job.card_shown, job.card_updated_at = fingerprint, now

    def _post_in_thread(self, job: VideoJob, text: str, *, edit: EditJob | None, kind: str) -> str | None:
        if not job.card_ts:
            return None
        try:
            ts = self.slack.post(job.channel_id, text, None, job.card_ts)
        except SlackFailure as exc:
            log.warning("%s for job %s not posted: %s", kind, job.id, exc.error)
            return None
        self.store.add_thread_message(
            job.team_id, job.channel_id, ts, job.id, kind, edit.id if edit else None
        )  # type: ignore[arg-type]
        return ts

    # --- edits ---------------------------------------------------------------------------

    def _edit_step(self, edit: EditJob) -> None:
        video = self.store.get_video(edit.video_id)
        assert video is not None
        if edit.revert_state in lc.REVERT_WORK_STATES:
            self._revert_step(edit, video)
            return
        if edit.state in (lc.HELD, lc.WAITING):
            self._hold(edit, video)
        elif edit.state in (lc.PENDING, lc.EDIT_SUBMITTING):
            self._submit_edit(edit, video)
        elif edit.state == lc.SUBMITTED:
            self._poll_edit(edit, video)
        else:
            self.store.release(edit, self.owner, NEVER)

    def _hold(self, edit: EditJob, video: VideoJob) -> None:
        if video.state == lc.COMPLETE:
            self.store.release(edit, self.owner, self.clock(), state=lc.PENDING)
            return
        if video.state in (lc.FAILED, lc.UNKNOWN, lc.NEEDS_INVITE):
            message = texts.EDIT_UNKNOWN_VIDEO if video.state == lc.UNKNOWN else texts.EDIT_VIDEO_FAILED
            self._post_in_thread(video, message, edit=edit, kind="edit_refused")
            self.store.release(edit, self.owner, NEVER, state=lc.REFUSED, error_message=message)
            return
        values: dict[str, Any] = {"state": lc.WAITING}
        if edit.state == lc.HELD:
            values["notice_ts"] = self._post_in_thread(video, texts.EDIT_KEPT, edit=edit, kind="edit_notice")
        # Waiting edits are normally released by _complete; the re-check covers a race with it.
        self.store.release(edit, self.owner, self.clock() + max(self.poll_seconds * 4, 1.0), **values)

    def _submit_edit(self, edit: EditJob, video: VideoJob) -> None:
        earlier = [
            e
            for e in self.store.edits_of(video.id)  # type: ignore[arg-type]
            if e.id != edit.id and e.reply_ts < edit.reply_ts and e.state in lc.EDIT_UNSUBMITTED
        ]
        if earlier:
            # Replies are submitted in the order they were written.
            self.store.release(edit, self.owner, self.clock() + min(self.poll_seconds, 1.0))
            return
        if not self.store.save(edit, self.owner, state=lc.EDIT_SUBMITTING):
            return
        refs = json.loads(edit.reference_urls_json or "[]")
        try:
            accepted = self.knowlify.create_edit(
                video.knowlify_uuid or "",
                edit.text,
                idempotency_key=edit_idempotency_key(edit.team_id, edit.channel_id, edit.reply_ts),
                reference_image_urls=refs or None,
            )
        except KnowlifyError as exc:
            delay = retry_delay(exc, edit.attempts + 1)
            if delay is not None or isinstance(exc, OutcomeUnknown | ServerError):
                # The Idempotency-Key makes a resend a replay, so even an unknown outcome is retried.
                if delay is None:
                    exc.retry_after = min(300.0, 2.0 ** (edit.attempts + 1))
                self._later(edit, exc)
                return
            if self._key_changed(video, exc):
                message = texts.KEY_CHANGED_EDIT
            else:
                message = texts.edit_refused(exc.status, exc.detail)
            self._post_in_thread(video, f":no_entry_sign: {message}", edit=edit, kind="edit_refused")
            self.store.release(edit, self.owner, NEVER, state=lc.REFUSED, error_message=message)
            return
        self.store.save(
            edit,
            self.owner,
            state=lc.SUBMITTED,
            knowlify_edit_id=accepted.edit_id,
            status=accepted.status,
            queue_position=accepted.queue_position,
            attempts=0,
        )
        text = texts.edit_accepted(accepted.status, accepted.queue_position)
        ignored = json.loads(edit.ignored_urls_json or "[]")
        if ignored:
            text += f"\n{texts.ignored_links(ignored)}"
        ts = self._post_in_thread(video, text, edit=edit, kind="edit_ack")
        self.store.release(
            edit,
            self.owner,
            self._next_edit_poll(edit),
            notice_ts=ts or edit.notice_ts,
        )

    def _poll_edit(self, edit: EditJob, video: VideoJob) -> None:
        try:
            st: EditStatus = self.knowlify.get_edit(edit.knowlify_edit_id or "")
        except KnowlifyError as exc:
            if exc.status in (403, 404):
                message = (
                    texts.KEY_CHANGED_EDIT if self._key_changed(video, exc) else texts.edit_gone(exc.detail)
                )
                ts = self._post_in_thread(video, f":x: {message}", edit=edit, kind="edit_result")
                self.store.release(
                    edit, self.owner, NEVER, state=lc.EDIT_ERROR, error_message=message, result_ts=ts
                )
            else:
                self._later(edit, exc)
            return
        if st.status == "reverted":
            self._finish_revert(edit, video, st)
            return
        if st.is_failed or st.status == "error":
            message = texts.edit_failed(st.error_message)
            ts = self._post_in_thread(video, f":x: {message}", edit=edit, kind="edit_result")
            self.store.release(
                edit,
                self.owner,
                NEVER,
                state=lc.EDIT_ERROR,
                status=st.status,
                error_message=message,
                result_ts=ts,
            )
            return
        if st.is_complete or st.status == "complete":
            result = st.result
            result_json = result.model_dump_json() if result else "{}"
            text = texts.edit_done(
                result.link if result else None,
                result.changed_scene_numbers if result else [],
                result.added_scene_numbers if result else [],
                result.deleted_scene_numbers if result else [],
                result.video_synced if result else None,
            )
            ts = self._post_in_thread(video, text, edit=edit, kind="edit_result")
            self.store.release(
                edit,
                self.owner,
                NEVER,
                state=lc.EDIT_COMPLETE,
                status=st.status,
                result_json=result_json,
                result_ts=ts,
                attempts=0,
            )
            self._refresh_card(video, force=True)
            return
        self.store.release(edit, self.owner, self._next_edit_poll(edit), status=st.status, attempts=0)

    # --- reverts -------------------------------------------------------------------------

    def _revert_step(self, edit: EditJob, video: VideoJob) -> None:
        if edit.state in (lc.EDIT_ERROR, lc.REFUSED):  # a refused edit has no edit_id: check it first
            self._revert_refused_locally(edit, video, texts.REVERT_NOTHING)
            return
        if edit.state in lc.EDIT_UNSUBMITTED or not edit.knowlify_edit_id:
            self._revert_refused_locally(edit, video, texts.REVERT_NOT_SUBMITTED)
            return
        if edit.state == lc.SUBMITTED:
            # Knowlify would answer 409 (not in a revertable state): say so without spending a call.
            status = edit.status or "processing"
            self._revert_refused_locally(
                edit, video, texts.revert_refused(409, f"status={status} not in a revertable state")
            )
            return
        if edit.revert_state == lc.REVERT_RUNNING:
            # Claimed mid-revert: a crash hid the answer. Revert is observable, so look before acting.
            try:
                st = self.knowlify.get_edit(edit.knowlify_edit_id)
            except KnowlifyError as exc:
                self._later(edit, exc)
                return
            if st.status == "reverted":
                self._finish_revert(edit, video, st)
                return
        if not self.store.save(edit, self.owner, revert_state=lc.REVERT_RUNNING):
            return
        try:
            st = self.knowlify.revert_edit(edit.knowlify_edit_id)
        except KnowlifyError as exc:
            if exc.status is not None and 400 <= exc.status < 500 and exc.status != 429:
                newer = self._newer_edit_link(edit, video) if "newer" in exc.detail else None
                message = texts.revert_refused(exc.status, exc.detail, newer)
                if self._key_changed(video, exc):
                    message = texts.KEY_CHANGED_EDIT
                self._post_in_thread(video, f":warning: {message}", edit=edit, kind="revert_result")
                self.store.release(
                    edit,
                    self.owner,
                    self._next_after_revert(edit),
                    revert_state=lc.REVERT_REFUSED,
                    revert_detail=exc.detail,
                )
            else:
                state = lc.REVERT_RUNNING if isinstance(exc, OutcomeUnknown) else lc.REVERT_REQUESTED
                if retry_delay(exc, edit.attempts + 1) is None:
                    exc.retry_after = min(300.0, 2.0 ** (edit.attempts + 1))
                self._later(edit, exc, revert_state=state)
            return
        self._finish_revert(edit, video, st)

    def _finish_revert(self, edit: EditJob, video: VideoJob, st: EditStatus) -> None:
        diff = st.result.revert_diff if st.result and st.result.revert_diff else None
        # The version after the revert: this edit no longer counts (its row is written after the post).
        version = current_version(
            video.link or video.chat_url,
            [
                EditView(e.reply_ts, lc.REVERTED if e.id == edit.id else e.state, e.result_json)
                for e in self.store.edits_of(video.id)  # type: ignore[arg-type]
            ],
        )
        text = texts.revert_done(
            diff.changed_scene_numbers if diff else [],
            diff.added_scene_numbers if diff else [],
            diff.deleted_scene_numbers if diff else [],
            version.link,
        )
        ts = self._post_in_thread(video, text, edit=edit, kind="revert_result")
        self.store.release(
            edit,
            self.owner,
            NEVER,
            state=lc.REVERTED,
            revert_state=lc.REVERT_DONE,
            status=st.status,
            revert_result_ts=ts,
            attempts=0,
        )
        self._refresh_card(video, force=True)

    def _revert_refused_locally(self, edit: EditJob, video: VideoJob, message: str) -> None:
        self._post_in_thread(video, f":warning: {message}", edit=edit, kind="revert_result")
        self.store.release(
            edit,
            self.owner,
            self._next_after_revert(edit),
            revert_state=lc.REVERT_REFUSED,
            revert_detail=message,
        )

    def _next_after_revert(self, edit: EditJob) -> float:
        """A refused revert leaves a still-running edit to its own lifecycle."""
        return self.clock() if edit.state in lc.EDIT_WORK_STATES else NEVER

    def _newer_edit_link(self, edit: EditJob, video: VideoJob) -> str | None:
        newer = [
            e
            for e in self.store.edits_of(video.id)  # type: ignore[arg-type]
            if e.reply_ts > edit.reply_ts and e.state == lc.EDIT_COMPLETE
        ]
        if not newer:
            return None
        target = newer[-1]
        return self.slack.permalink(video.channel_id, target.result_ts or target.reply_ts)


def _epoch(iso: str | None, now: float) -> float | None:
    """Knowlify's ISO timestamp as epoch seconds, never later than ``now`` (a fast server clock)."""
    if not iso:
        return None
    try:
        at = datetime.fromisoformat(iso.replace("Z", "+00:00"))
    except ValueError:
        return None
    return min((at if at.tzinfo else at.replace(tzinfo=UTC)).timestamp(), now)

"""`/knowlify`: parse, write the job row, ack — all well inside Slack's 3 seconds.

No Knowlify or slow Slack call happens here; the worker does them after the ack. The only Web API
call is views.open for the bare command, which must use the trigger_id within 3 seconds anyway.
"""

from __future__ import annotations

import json
import logging
import uuid
from typing import Any

from slack_bolt import Ack, BoltContext
from slack_sdk import WebClient
from sqlalchemy.exc import SQLAlchemyError

from bot.core import lifecycle as lc
from bot.core import texts
from bot.core.limits import DAY_SECONDS, next_allowed
from bot.core.mrkdwn import escape, mention
from bot.core.parse import (
    CreateCommand,
    HelpCommand,
    ListCommand,
    OpenModalCommand,
    UsageError,
    help_text,
    parse_command,
)
from bot.core.texts import command_taken, link_or_withheld, shorten
from bot.services import Services, services_of
from bot.ui.modal import build_create_modal, parse_submission
from storage.admission import Admission, DailyLimit

log = logging.getLogger(__name__)

DB_DOWN = (
    "I couldn't save your request because the bot's database is unavailable right now, so nothing was "
    "started. Please run the command again in a moment."
)


def new_job(
    services: Services,
    *,
    request_key: str,
    team_id: str,
    channel_id: str,
    user_id: str,
    command: CreateCommand,
    response_url: str | None,
) -> Admission:
    """Store the job before anything is called (its row is what a restart resumes from), unless the
    person's daily limit refuses it: both decided in the transaction that stores it."""
    options = {"fields": command.options.to_spec_fields(), "summary": command.options.describe()}
    admission = services.store.take_video(
        {
            "request_key": request_key,
            "team_id": team_id,
            "channel_id": channel_id,
            "user_id": user_id,
            "key_id": services.job_key_id(team_id),
            "prompt": command.prompt,
            "options_json": json.dumps(options),
            "response_url": response_url,
        },
        daily_limit(services.settings.knowlify_user_videos_per_day),
    )
    if admission.refused_until is not None:
        log.info("video request of %s refused: daily limit reached", user_id)
    return admission


def daily_limit(limit: int) -> DailyLimit | None:
    """The per-person video limit of the settings (0: none), for storage.admission."""
    if limit <= 0:
        return None
    return DailyLimit(DAY_SECONDS, lambda times, now: next_allowed(times, limit, now))


def list_text(services: Services, team_id: str, channel_id: str) -> str:
    jobs = services.store.recent_videos(team_id, channel_id, 10)
    if not jobs:
        return "No videos in this channel yet. Start one with `/knowlify <prompt>`."
    lines = ["*The ten most recent videos in this channel:*"]
    for job in jobs:
        state = lc.status_line(
            job.state,
            lc.Progress(job.status, job.percent, job.current_scene, job.total_scenes, job.queue_position),
            None,
        )
        link = job.link or job.chat_url
        where = f" · {link_or_withheld(link)}" if link and job.state == lc.COMPLETE else ""
        lines.append(f"• {escape(shorten(job.prompt, 80))} (by {mention(job.user_id)}): {state}{where}")
    return "\n".join(lines)


def on_command(ack: Ack, command: dict[str, Any], client: WebClient, context: BoltContext) -> None:
    services = services_of(context)
    try:
        parsed = parse_command(command.get("text") or "")
        if isinstance(parsed, HelpCommand):
            ack(text=help_text(services.settings.knowlify_revert_emoji))
        elif isinstance(parsed, ListCommand):
            ack(text=list_text(services, command["team_id"], command["channel_id"]))
        elif isinstance(parsed, UsageError):
            ack(text=parsed.message)
        elif isinstance(parsed, OpenModalCommand):
            meta = json.dumps({"channel": command["channel_id"]})
            client.views_open(trigger_id=command["trigger_id"], view=build_create_modal(meta))
            ack()
        elif isinstance(parsed, CreateCommand):
            ack(text=_create(services, command, parsed))
    except SQLAlchemyError:
        log.exception("database error while taking /knowlify")
        ack(text=DB_DOWN)
    except Exception:
        ref = uuid.uuid4().hex[:8]
        log.exception("/knowlify failed (ref %s)", ref)
        ack(text=f"Something went wrong on my side (ref {ref}); nothing was started. Please try again.")


def on_submit(ack: Ack, body: dict[str, Any], view: dict[str, Any], context: BoltContext) -> None:
    services = services_of(context)
    result = parse_submission(view.get("state", {}).get("values", {}))
    if isinstance(result, dict):
        ack(response_action="errors", errors=result)
        return
    meta = json.loads(view.get("private_metadata") or "{}")
    user = body["user"]["id"]
    team = (body.get("team") or {}).get("id") or body["user"].get("team_id", "")
    request_key = f"view:{team}:{view['id']}"
    try:
        admission = new_job(
            services,
            request_key=request_key,
            team_id=team,
            channel_id=meta.get("channel") or user,
            user_id=user,
            command=result,
            response_url=None,
        )
    except SQLAlchemyError:
        log.exception("database error while taking a modal submission")
        ack(response_action="errors", errors={next(iter(view["state"]["values"])): DB_DOWN})
        return
    if admission.refused_until is not None:
        # The modal stays open with the reason under the first field; nothing is started.
        limit = services.settings.knowlify_user_videos_per_day
        refusal = texts.video_limit(limit, admission.refused_until, plain=True)
        ack(response_action="errors", errors={next(iter(view["state"]["values"])): refusal})
        return
    ack()
    if admission.job_id is not None:
        services.kick()


def _create(services: Services, command: dict[str, Any], parsed: CreateCommand) -> str:
    # Slash commands are not retried by Slack, but a replayed or double-sent request carries the
    # same trigger_id: the unique key makes it a no-op.
    admission = new_job(
        services,
        request_key=f"cmd:{command['team_id']}:{command['trigger_id']}",
        team_id=command["team_id"],
        channel_id=command["channel_id"],
        user_id=command["user_id"],
        command=parsed,
        response_url=command.get("response_url"),
    )
    if admission.refused_until is not None:
        return texts.video_limit(services.settings.knowlify_user_videos_per_day, admission.refused_until)
    if admission.job_id is None:
        return "I already have this request; its status card is in the channel."
    services.kick()
    return command_taken(parsed.prompt)

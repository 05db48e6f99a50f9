"""Everything the bot says about a failure, in words a user can act on. Pure functions.

The results are mrkdwn. Whatever a person or Knowlify wrote (prompts, links, `detail`,
`error_message`) is escaped here and each Knowlify link is checked here, so callers pass raw values.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from bot.core.mrkdwn import checked_link, escape, mention
from bot.core.mrkdwn import link as mrkdwn_link

# What the thread and the card say instead of a Knowlify link that is not a plain https address.
# None of the link is shown: even a fragment of it could be turned into a link by Slack.
LINK_WITHHELD = (
    "Knowlify sent a link I won't post because it is not a plain https address; "
    "open the video from your Knowlify dashboard."
)
NO_LINK = "Knowlify sent no link; open the video from your Knowlify dashboard."


def knowlify_link(url: str | None, label: str) -> str | None:
    """A mrkdwn link to a Knowlify URL, or None when the URL is missing or fails the link check."""
    safe = checked_link(url)
    return mrkdwn_link(safe, label) if safe else None


def _link_or_why(url: str | None, label: str) -> str:
    return knowlify_link(url, label) or (LINK_WITHHELD if url else NO_LINK)


def link_or_withheld(url: str | None) -> str:
    """A short `link` for one line of a list, or a short note that Knowlify's link was withheld."""
    return knowlify_link(url, "link") or "link withheld (not a plain https address)"

# --- creating a video ---------------------------------------------------------------------


def create_refused(status: int | None, detail: str) -> str:
    """A `POST /v1/videos` that Knowlify answered with an error status."""
    if status == 401:
        return (
            "Knowlify rejected the bot's API key, so nothing was started. "
            "An admin needs to check KNOWLIFY_API_KEY (it may have been rotated or revoked)."
        )
    if status == 402:
        return f"Your Knowlify account does not have enough credits to start this video ({escape(detail)}). Top up, then run the command again."
    if status == 403:
        return f"Knowlify refused the bot's API key for this request ({escape(detail)})."
    if status in (400, 422):
        return f"Knowlify refused the request: {escape(detail)}. Fix it and run the command again."
    return f"Knowlify could not start the video ({status}: {escape(detail)})."


def item_failed(message: str | None) -> str:
    return f"Knowlify could not start this video: {escape(message) or 'no reason given'}. Run the command again to retry."


def render_failed(error_message: str | None) -> str:
    return f"The render failed: {escape(error_message) or 'Knowlify gave no reason'}."


UNKNOWN_OUTCOME = (
    "I sent this to Knowlify but the answer never arrived, so I can't tell whether the video was started. "
    "Knowlify has no way to de-duplicate a retry: retrying may start a second video and use credits twice. "
    "Check your Knowlify dashboard first, then retry if it is not there."
)


def could_not_join(error: str) -> str:
    return (
        f":warning: I couldn't join this channel ({escape(error)}), so replies in this thread may not reach me. "
        "To edit the video by replying, invite me with `/invite @knowlify`."
    )


NEEDS_INVITE = (
    "I can't post in this channel, so I did not start the video. Invite me with `/invite @knowlify`, "
    "then run the command again."
)


WHO_EDITS = (
    "Reply in this thread to edit it: the person who asked for the video just replies; "
    "anyone else mentions me in the reply."
)


def video_done(link: str | None, prompt: str) -> str:
    label = shorten(prompt, 80)
    shown = knowlify_link(link, label) or f"*{escape(label)}*. {LINK_WITHHELD if link else NO_LINK}"
    return f":tada: Your video is ready: {shown}\n{WHO_EDITS}"


# --- edits --------------------------------------------------------------------------------

_CREDITS = re.compile(r"could cost up to (\d+), have (\d+)")


def edit_refused(status: int | None, detail: str) -> str:
    """A `POST /v1/edits` that Knowlify turned down; each status gets its own advice."""
    if status == 400:
        return "Knowlify's content-safety check refused this edit. Rephrase it and reply again."
    if status == 402:
        m = _CREDITS.search(detail)
        if m:
            return (
                f"Not enough Knowlify credits for this edit: it could cost up to {m.group(1)} credits and "
                f"the account has {m.group(2)}. Top up, then reply again."
            )
        return f"Not enough Knowlify credits for this edit ({escape(detail)}). Top up, then reply again."
    if status == 409:
        if "errored" in detail or "failed" in detail:
            return "Knowlify can't edit this video because its render failed. Start a new one with /knowlify."
        return (
            "This video can't be edited right now: Knowlify is still building it. "
            "Reply again once the video is done."
        )
    if status == 415:
        return (
            "A reference image could not be used: each link must point straight to an image file "
            f"(image/*) of at most 5 MB. Knowlify said: {escape(detail)}"
        )
    if status == 422:
        if "reference" in detail or "url" in detail.lower():
            return (
                "Knowlify refused a reference image link: "
                f"{escape(detail)}. Reference images must be public https links (no private or local addresses)."
            )
        return f"Knowlify refused this edit: {escape(detail)}. Change the reply and send it again."
    if status == 404:
        return "Knowlify no longer knows this video, so it can't be edited."
    if status == 403:
        return "The bot's Knowlify key does not own this video, so it can't be edited."
    if status == 401:
        return "Knowlify rejected the bot's API key; an admin needs to check KNOWLIFY_API_KEY."
    return f"Knowlify could not accept this edit ({status}: {escape(detail)})."


def edit_failed(error_message: str | None) -> str:
    if error_message and "ambiguous" in error_message:
        return "Knowlify found this edit request ambiguous. Rephrase it more precisely and reply again."
    return f"The edit failed: {escape(error_message) or 'Knowlify gave no reason'}."


def edit_accepted(status: str | None, queue_position: int | None) -> str:
    if status == "queued" and queue_position:
        ahead = "edit" if queue_position == 1 else "edits"
        return f":inbox_tray: Edit accepted: queued behind {queue_position} other {ahead} on this video."
    return ":inbox_tray: Edit accepted: Knowlify is working on it."


EDIT_KEPT = (
    ":hourglass_flowing_sand: The video is still rendering; I'll submit this edit as soon as it's done."
)
EDIT_VIDEO_FAILED = "The video's render failed, so this edit can't be applied."
EDIT_UNKNOWN_VIDEO = "It is unknown whether this video was started, so this edit can't be applied."


def scenes(changed: Sequence[int], added: Sequence[int], deleted: Sequence[int]) -> str:
    def fmt(xs: Sequence[int]) -> str:
        return ", ".join(str(x) for x in xs) if xs else "none"

    return f"Scenes changed: {fmt(changed)} · added: {fmt(added)} · deleted: {fmt(deleted)}"


def edit_done(
    link: str | None,
    changed: Sequence[int],
    added: Sequence[int],
    deleted: Sequence[int],
    synced: bool | None,
) -> str:
    head = f":sparkles: Edit applied: {_link_or_why(link, 'watch the new version')}" if link else ":sparkles: Edit applied."
    tail = (
        ""
        if synced is not False
        else "\nThe video was not re-rendered yet; the change shows in the next render."
    )
    return f"{head}\n{scenes(changed, added, deleted)}{tail}"


# --- reverts ------------------------------------------------------------------------------


def revert_done(
    changed: Sequence[int], added: Sequence[int], deleted: Sequence[int], link: str | None
) -> str:
    watch = knowlify_link(link, "watch")
    now = "" if not link else f" The current version: {watch}." if watch else f" {LINK_WITHHELD}"
    return f":rewind: Edit reverted. What the restore changed: {scenes(changed, added, deleted)}.{now}"


def revert_refused(status: int | None, detail: str, newer_edit_link: str | None = None) -> str:
    """Each revert guard of Knowlify, in plain words, with what to do next."""
    d = detail.lower()
    if "newer external edit" in d:
        newer = knowlify_link(newer_edit_link, "this one")
        where = f" ({newer})" if newer else ""
        return f"A newer edit exists{where}: revert that one first, then react here again."
    if "another edit is processing or queued" in d:
        return "Another edit on this video is still running. React again once it has finished."
    if "snapshot at the top" in d:
        return (
            "Someone changed this video in the Knowlify editor after this edit, so reverting it here would "
            "undo their work too. Revert it in the Knowlify editor instead."
        )
    if "no snapshot" in d:
        return (
            "Knowlify has no saved snapshot for this edit, so there is nothing to restore. Nothing changed."
        )
    if "not in a revertable state" in d:
        m = re.search(r"status=([a-z_]+)", d)
        state = m.group(1) if m else ""
        if state == "reverted":
            return "This edit was already reverted."
        if state == "error":
            return "This edit failed, so there is nothing to revert."
        return "This edit is still running. React again once it has finished."
    if status == 404:
        return "Knowlify no longer knows this edit, so it can't be reverted."
    if status == 403:
        return "The bot's Knowlify key does not own this edit, so it can't be reverted."
    return f"Knowlify could not revert this edit ({status}: {escape(detail)})."


def revert_not_allowed(requester: str, creator: str) -> str:
    who = (
        mention(requester)
        if requester == creator
        else f"{mention(requester)} (who asked for it), {mention(creator)} (who created the video)"
    )
    return f"Only {who} or a workspace admin can revert this edit. Nothing was changed."


REVERT_NOT_SUBMITTED = "This edit hasn't reached Knowlify yet, so there is nothing to revert."
REVERT_NOTHING = "This edit didn't apply, so there is nothing to revert."
REVERT_ALREADY = "This edit was already reverted."
REVERT_WHERE = "To undo an edit, react on the reply that asked for it or on my message about it."


def shorten(text: str, limit: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


# --- echoes of what a person or Knowlify wrote -------------------------------------------


def command_taken(prompt: str) -> str:
    """The command's answer; it quotes the prompt, which must stay text (no mention, no link)."""
    return f":clapper: Got it: “{escape(shorten(prompt, 100))}”. A status card will appear in this channel."


def ignored_links(urls: Sequence[str]) -> str:
    """Links of a reply beyond the five Knowlify takes, shown as code so none becomes markup or a link."""
    shown = ", ".join(f"`{escape(url.replace('`', '%60'))}`" for url in urls)
    return f"Only the first 5 links go to Knowlify as reference images; ignored: {shown}"


def video_gone(detail: str) -> str:
    return f"Knowlify no longer finds this video ({escape(detail)})."


def edit_gone(detail: str) -> str:
    return f"Knowlify no longer finds this edit ({escape(detail)})."


# --- who may edit, per-person limits, key change, permissions ------------------------------
# (person-supplied strings go through bot.core.mrkdwn.escape; user ids are the bot's own mentions)


def edit_how_to(creator: str, bot_user_id: str | None) -> str:
    """Told once per thread to someone other than the creator whose reply was not an edit."""
    me = mention(bot_user_id) if bot_user_id else "me (@knowlify)"
    example = "`@knowlify make scene 2 slower`" if not bot_user_id else f"{me} make scene 2 slower"
    return (
        f"Replies in this thread are not sent to Knowlify as edits unless they come from {mention(creator)}, "
        f"who created the video, or mention {me}. Edits cost credits, so to ask for one, mention {me} "
        f"in your reply, e.g. {example}."
    )


EDIT_CANCELLED = (
    ":wastebasket: A reply that was waiting to be sent as an edit was deleted, so that edit is "
    "cancelled; nothing was sent to Knowlify."
)


def slack_date(epoch: float) -> str:
    """A time every reader sees in their own time zone (Slack's date markup, UTC as the fallback)."""
    from datetime import UTC, datetime

    when = int(epoch)
    fallback = datetime.fromtimestamp(when, UTC).strftime("%Y-%m-%d %H:%M UTC")
    return f"<!date^{when}^{{date_short_pretty}} at {{time}}|{fallback}>"


def utc_time(epoch: float) -> str:
    """The same time as plain text, for places that show no markup (a modal's error line)."""
    from datetime import UTC, datetime

    return datetime.fromtimestamp(int(epoch), UTC).strftime("%Y-%m-%d %H:%M UTC")


def video_limit(limit: int, next_at: float, *, plain: bool = False) -> str:
    when = utc_time(next_at) if plain else slack_date(next_at)
    noun = "video" if limit == 1 else "videos"
    return (
        f"You have started {limit} {noun} in the last 24 hours, the most one person may here, so "
        f"nothing was sent to Knowlify. You can start the next one {'at ' if plain else ''}{when}."
    )


def edit_limit(user: str, limit: int, next_at: float) -> str:
    noun = "edit" if limit == 1 else "edits"
    return (
        f":no_entry_sign: {mention(user)}, you have asked for {limit} {noun} in the last 24 hours, the most "
        f"one person may here, so this reply was not sent to Knowlify. You can ask for the next edit "
        f"{slack_date(next_at)}: reply again then."
    )


KEY_CHANGED_VIDEO = (
    "The bot's Knowlify API key was changed after this video was started, and Knowlify does not know "
    "this video under the new key, so I stopped following it. Look for it in the Knowlify dashboard "
    "of the old key, or start it again with /knowlify."
)
KEY_CHANGED_EDIT = (
    "The bot's Knowlify API key was changed after this video was made, and Knowlify does not know "
    "this video (or this edit) under the new key, so it can't be edited or reverted from here. "
    "Start a new video with /knowlify to keep editing."
)

PERMISSION_UNKNOWN = (
    "I couldn't check your permissions with Slack just now, so nothing was changed. Please try again "
    "in a moment."
)

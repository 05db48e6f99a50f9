"""The one way a person's or Knowlify's text reaches Slack mrkdwn.

Slack turns `<!channel>`, `<!here>`, `<@U…>` and `<url|label>` into live mentions and links, so any
string the bot did not write itself (prompts, replies, option values, Knowlify's `detail`,
`error_message` and scene texts) goes through `escape` before it is placed in a message, a block, the
card, `list`, App Home, a modal or a `response_url` body. Links that Knowlify supplies go through
`checked_link`: only a plain `https://` URL is ever linked.

Slack's own rules: https://api.slack.com/reference/surfaces/formatting#escaping
"""

from __future__ import annotations

import re

# Characters that would end a `<url|label>` link early or let a label hide the URL.
_UNSAFE_IN_LINK = re.compile(r"[\s<>|]")
# What Slack's user and channel ids look like; anything else is shown as text, never as markup.
_USER_ID = re.compile(r"[UW][A-Z0-9]{2,}")
_CHANNEL_ID = re.compile(r"[CGD][A-Z0-9]{2,}")


def escape(text: str | None) -> str:
    """`&`, `<`, `>` as Slack's entities, so the text shows as typed and never as markup."""
    if not text:
        return ""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def checked_link(url: str | None) -> str | None:
    """The URL if the bot may link it: `https://` with a host, and nothing Slack would read as markup."""
    if not url or not url.startswith("https://") or len(url) <= len("https://"):
        return None
    if _UNSAFE_IN_LINK.search(url):
        return None
    return url


def link(url: str, label: str | None = None) -> str:
    """A mrkdwn link to a URL already passed by `checked_link`; the label is escaped text."""
    target = url.replace("&", "&amp;")
    return f"<{target}|{escape(label)}>" if label else f"<{target}>"


def mention(user_id: str) -> str:
    """`<@U…>` for a Slack user id the bot means to mention; any other value stays escaped text."""
    return f"<@{user_id}>" if _USER_ID.fullmatch(user_id or "") else escape(user_id)


def channel_link(channel_id: str) -> str:
    """`<#C…>` for a Slack channel id; any other value stays escaped text."""
    return f"<#{channel_id}>" if _CHANNEL_ID.fullmatch(channel_id or "") else escape(channel_id)

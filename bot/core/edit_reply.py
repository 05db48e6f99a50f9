"""Turning a thread reply into an edit request: the text, and its https links as reference images."""

from __future__ import annotations

import re
from dataclasses import dataclass

MAX_EDIT_CHARS = 5000
MAX_REFERENCES = 5

# Slack wraps links as <https://x|label> or <https://x>; people also paste bare ones. One pattern for
# both, so the links are collected in the order they were written.
_LINK = re.compile(r"<(https?://[^>|\s]+)(?:\|([^>]*))?>|(?<![<|\w])(https://[^\s<>|]+)")
# Punctuation that ends a sentence rather than a bare link ("see https://x.com/a.png.").
_TRAILING = ".,;:!?)]}'\""


def _unescape(text: str) -> str:
    """Slack escapes <, > and & in message text (links included); &amp; last, so it decodes once."""
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def mentions(raw: str, user_id: str | None) -> bool:
    """Whether the message mentions `user_id` (Slack writes `<@U…>`, or `<@U…|name>`)."""
    return bool(user_id) and re.search(rf"<@{re.escape(user_id or '')}(?:\|[^>]*)?>", raw or "") is not None


def without_mention(raw: str, user_id: str | None) -> str:
    """The message with every mention of `user_id` removed: the bot's name is not part of the edit."""
    if not user_id:
        return raw
    return re.sub(rf"[ \t]*<@{re.escape(user_id)}(?:\|[^>]*)?>[,:]?[ \t]*", " ", raw or "").strip()


@dataclass(frozen=True)
class EditReply:
    text: str
    reference_urls: tuple[str, ...]
    ignored_urls: tuple[str, ...]


@dataclass(frozen=True)
class EditReplyError:
    problem: str


def parse_edit_reply(raw: str) -> EditReply | EditReplyError:
    """Unwrap Slack's link markup, collect https URLs (first five kept), and check the length."""
    urls: list[str] = []

    def unwrap(m: re.Match[str]) -> str:
        if m.group(3):  # a bare https link
            urls.append(_unescape(m.group(3).rstrip(_TRAILING)))
            return m.group(3)
        url, label = m.group(1), m.group(2)
        if url.startswith("https://"):
            urls.append(_unescape(url))
        return url if not label or label == url else f"{label} ({url})"

    text = _unescape(_LINK.sub(unwrap, raw or "")).strip()
    if not text:
        return EditReplyError(
            "This reply is empty, so there is nothing to edit. Describe the change in words."
        )
    if len(text) > MAX_EDIT_CHARS:
        return EditReplyError(
            f"This edit request is {len(text)} characters long; Knowlify takes at most {MAX_EDIT_CHARS}. "
            "Shorten it and reply again."
        )
    unique = list(dict.fromkeys(urls))
    return EditReply(text, tuple(unique[:MAX_REFERENCES]), tuple(unique[MAX_REFERENCES:]))

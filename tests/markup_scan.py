"""Find live Slack markup the bot did not mean to send, in anything it sent to Slack.

Slack reads `<…>` in mrkdwn as markup: `<!channel>`/`<!here>`/`<!everyone>`/`<!subteam^…>` notify
people, `<@U…>` mentions one, `<#C…>` links a channel and `<url|label>` shows a label of the sender's
choice over a URL. Text the bot escaped has none of these (`&lt;` is shown as `<`, never parsed).
The bot does mean a few: the mention of the person who asked, channel links in App Home, its own
`<!date^…>` times and links that passed its own check. A test names those in `Meant`; every other `<…>` is a finding.

Reusable: `scan_standin(stack.slack, meant)` walks every Web API call and `response_url` post the
Slack stand-in recorded (text, blocks, views, every string in them); `scan_text` checks one string,
e.g. a command's ack.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from bot.core.mrkdwn import checked_link
from sandbox.knowlify_sim import CHAT_URL, S3_URL

_MARKUP = re.compile(r"<([^<>]*)>")
_DATE = re.compile(r"!date\^\d+\^[^|^]*(\^[^|]*)?\|[^|]*")
# Links the simulator hands out when nothing overrides its answers.
SIM_LINK_PREFIXES = (CHAT_URL.split("{}")[0], S3_URL.split("{}")[0])


def sim_link(url: str) -> bool:
    """A link the Knowlify simulator itself produced (a chat URL or a rendered mp4)."""
    return url.startswith(SIM_LINK_PREFIXES)


@dataclass(frozen=True)
class Meant:
    """The markup the bot is expected to send: these users and channels, links that pass `links`."""

    users: frozenset[str] = frozenset()
    channels: frozenset[str] = frozenset()
    links: Callable[[str], bool] = sim_link

    @classmethod
    def of(
        cls,
        users: Iterable[str] = (),
        channels: Iterable[str] = (),
        links: Callable[[str], bool] = sim_link,
    ) -> Meant:
        return cls(frozenset(users), frozenset(channels), links)


@dataclass(frozen=True)
class Finding:
    where: str  # e.g. "chat.postMessage#3 blocks[0].text.text"
    markup: str  # the `<…>` as sent
    text: str = field(repr=False, default="")

    def __str__(self) -> str:
        return f"{self.where}: {self.markup!r}"


def unmeant(text: str, meant: Meant) -> list[str]:
    """Each `<…>` in `text` that Slack would render live and that `meant` does not cover."""
    found = []
    for m in _MARKUP.finditer(text):
        if not _is_meant(m.group(1), meant):
            found.append(m.group(0))
    return found


def _is_meant(inner: str, meant: Meant) -> bool:
    if _DATE.fullmatch(inner):
        return True  # the bot's own dates (`<!date^epoch^format|fallback>`) notify no one
    if inner.startswith("!"):
        return False  # @channel, @here, @everyone, user groups: the bot never sends these
    if inner.startswith("@"):
        return inner[1:] in meant.users
    if inner.startswith("#"):
        return inner[1:] in meant.channels
    url, _, label = inner.partition("|")
    url = url.replace("&amp;", "&")
    # A meant link is one the bot checked (https, nothing Slack reads as markup) and expected to send;
    # its label is the bot's own words or escaped text, so it carries no `<`.
    return checked_link(url) == url and meant.links(url) and "<" not in label


def scan_text(text: str, meant: Meant, where: str = "text") -> list[Finding]:
    return [Finding(where, markup, text) for markup in unmeant(text, meant)]


def scan_value(value: Any, meant: Meant, where: str) -> list[Finding]:
    """Every string inside a JSON-like value (message args, blocks, a view), wherever it sits."""
    if isinstance(value, str):
        return scan_text(value, meant, where)
    if isinstance(value, dict):
        return [f for k, v in value.items() for f in scan_value(v, meant, f"{where}.{k}")]
    if isinstance(value, list | tuple):
        return [f for i, v in enumerate(value) for f in scan_value(v, meant, f"{where}[{i}]")]
    return []


def scan_standin(slack: Any, meant: Meant) -> list[Finding]:
    """Every call the Slack stand-in received (Web API and response_url posts)."""
    findings: list[Finding] = []
    for n, call in enumerate(list(slack.calls)):
        args = {k: v for k, v in call.args.items() if k != "token"}
        findings += scan_value(args, meant, f"{call.method}#{n}")
    for n, hook in enumerate(slack.hooks()):
        findings += scan_value(hook["body"], meant, f"response_url#{n}")
    return findings


def sent_strings(slack: Any) -> list[str]:
    """All strings the bot sent to Slack, to check that hostile text arrived at all (as text)."""
    out: list[str] = []

    def walk(v: Any) -> None:
        if isinstance(v, str):
            out.append(v)
        elif isinstance(v, dict):
            for x in v.values():
                walk(x)
        elif isinstance(v, list | tuple):
            for x in v:
                walk(x)

    for call in list(slack.calls):
        walk(call.args)
    for hook in slack.hooks():
        walk(hook["body"])
    return out

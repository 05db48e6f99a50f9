"""Turn the text of `/knowlify` into a command, or into a usage error that says exactly what to fix.

The text arrives as Slack sends it: `&`, `<` and `>` typed by the user come escaped (`&amp;` …),
while `<…>` sequences are Slack's own markup (channel links, mentions). Option values and prompt
words are unescaped here so the prompt Knowlify receives is what the user wrote.

Quoting follows what people type in Slack, not a shell: a quote opens a group only at the start of a
word (or right after `--option=`), so apostrophes inside words ("Kafka's") stay literal; smart quotes
count as quotes; a single quote closes only where it is not followed by a letter or digit, and one
before a digit is an elision ("the '90s").
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field
from typing import TypeAlias

from bot.core.mrkdwn import escape
from bot.core.options import (
    ASPECT_RATIOS,
    MAX_DURATION_SECONDS,
    MAX_PROMPT_CHARS,
    MAX_STYLE_CHARS,
    MIN_DURATION_SECONDS,
    PALETTE_ROLES,
    VIDEO_TYPES,
    OptionError,
    VideoOptions,
    check_aspect,
    check_duration,
    check_hex,
    check_prompt,
    check_style,
    check_type,
    quote_value,
)

EXAMPLE = "/knowlify Explain how HTTPS works --duration 60 --aspect 9:16 --type explainer --primary #0066cc"

USAGE = (
    "*Usage:* `/knowlify PROMPT [options]` (options may stand anywhere; quotes group words)\n"
    f"• `--duration N` — length in seconds, {MIN_DURATION_SECONDS}–{MAX_DURATION_SECONDS}\n"
    f"• `--aspect R` — {' or '.join(ASPECT_RATIOS)}\n"
    f"• `--type T` — {', '.join(VIDEO_TYPES)}\n"
    f'• `--style "…"` — style direction for every scene, up to {MAX_STYLE_CHARS} characters\n'
    "• `--primary` / `--secondary` / `--tertiary` / `--accent #hex` — colours, #fff or #ffffff\n"
    f"*Example:* `{EXAMPLE}`\n"
    "`/knowlify help` explains more · `/knowlify list` shows recent videos · `/knowlify` alone opens a form"
)

OPTION_NAMES: tuple[str, ...] = ("duration", "aspect", "type", "style", *PALETTE_ROLES)
_OPTION_EXAMPLES = {
    "duration": "60",
    "aspect": "9:16",
    "type": "explainer",
    "style": '"clean, brand blue"',
    "primary": "#0066cc",
    "secondary": "#ffcc00",
    "tertiary": "#333333",
    "accent": "#ff3366",
}
# Words people reach for that are not option names, mapped to the option they mean.
_SYNONYMS = {
    "length": "duration",
    "len": "duration",
    "seconds": "duration",
    "secs": "duration",
    "time": "duration",
    "ratio": "aspect",
    "aspect-ratio": "aspect",
    "aspect_ratio": "aspect",
    "aspectratio": "aspect",
    "orientation": "aspect",
    "format": "aspect",
    "video-type": "type",
    "video_type": "type",
    "kind": "type",
    "preset": "type",
    "theme": "style",
    "look": "style",
    "color": "primary",
    "colour": "primary",
    "colors": "primary",
    "colours": "primary",
    "palette": "primary",
    "highlight": "accent",
}

_MAX_PROBLEMS_SHOWN = 5  # keeps the ephemeral answer readable and far below Slack's text limits

_DOUBLE_QUOTES = '"“”„‟'
_SINGLE_QUOTES = "'‘’‚‛"
# What closes each opening quote, for the "unterminated quote" message.
_CLOSING = dict(zip(_DOUBLE_QUOTES + _SINGLE_QUOTES, '"””“”' + "'’’‘’", strict=True))
# `--name`, or `—name` / `–name` after autocorrect turned the two hyphens into a dash.
_OPTION_RE = re.compile(r"(--|[—–]-?)([^\W\d_][^=]*)(?:=(.*))?", re.DOTALL)
_OPTION_EQ_RE = re.compile(r"(?:--|[—–]-?)[^\W\d_][^=]*=", re.DOTALL)


@dataclass(frozen=True)
class CreateCommand:
    """Create one video from `prompt` with `options`."""

    prompt: str
    options: VideoOptions = field(default_factory=VideoOptions)


@dataclass(frozen=True)
class HelpCommand:
    """`/knowlify help`."""


@dataclass(frozen=True)
class ListCommand:
    """`/knowlify list`."""


@dataclass(frozen=True)
class OpenModalCommand:
    """`/knowlify` with no text: the user wants the form."""


@dataclass(frozen=True)
class UsageError:
    """The text could not be turned into a command; answered ephemerally, no Knowlify call is made."""

    problem: str

    @property
    def message(self) -> str:
        return f"{self.problem}\n\n{USAGE}"


Command: TypeAlias = CreateCommand | HelpCommand | ListCommand | OpenModalCommand | UsageError
COMMAND_TYPES: tuple[type, ...] = (CreateCommand, HelpCommand, ListCommand, OpenModalCommand, UsageError)


def help_text(revert_emoji: str = "rewind") -> str:
    """The `/knowlify help` answer (mrkdwn); the revert emoji is configurable, so it is a parameter."""
    emoji = revert_emoji.strip().strip(":") or "rewind"
    return (
        "*Knowlify makes explainer videos from a prompt, right here in Slack.*\n\n"
        "*Create* — `/knowlify PROMPT [options]`\n"
        "I post a status card in the channel and keep it current while the video renders; "
        "the link to the finished video arrives in the card's thread.\n"
        "Options may stand anywhere in the text; quotes group words:\n"
        f"• `--duration N` — length in seconds, {MIN_DURATION_SECONDS}–{MAX_DURATION_SECONDS}\n"
        "• `--aspect 16:9` (landscape) or `--aspect 9:16` (portrait)\n"
        f"• `--type T` — {', '.join(VIDEO_TYPES)}\n"
        f'• `--style "…"` — style direction for every scene, up to {MAX_STYLE_CHARS} characters\n'
        "• `--primary`, `--secondary`, `--tertiary`, `--accent` with `#fff` or `#ffffff` — the palette "
        "(if Slack turns the colour into a channel link, write it without the `#`)\n"
        f"The prompt can be up to {MAX_PROMPT_CHARS} characters. Example:\n`{EXAMPLE}`\n\n"
        "*Edit* — reply in the video's thread with what to change, e.g. _make scene 2 slower_. "
        "Edits cost credits, so a reply is an edit only when it comes from the person who created the "
        "video, or when it mentions me (`@knowlify make scene 2 slower`); other replies are just talk. "
        "Up to 5 https image links in the reply are sent as reference images. "
        "A reply sent while the video is still rendering is kept and submitted as soon as it is done "
        "(deleting it before then cancels it). Each person may start a limited number of videos and "
        "edits a day; I say when the next one is possible.\n\n"
        f"*Undo* — react with :{emoji}: to the reply that asked for an edit (or to my message about it) "
        "to revert that edit. Only the latest edit can be reverted, so revert newer ones first. "
        "The person who asked for the edit, the person who created the video, "
        "or a workspace admin or owner may do this.\n\n"
        "*More*\n"
        "• `/knowlify list` — this channel's ten most recent videos, with their state and link\n"
        "• `/knowlify` on its own — opens a form with all the options\n"
        "• `/knowlify help` — this message\n"
        "In a private channel, invite me first: `/invite @knowlify`."
    )


@dataclass(frozen=True)
class _Token:
    text: str  # quotes removed, still Slack-escaped
    raw: str  # exactly as typed
    starts_quoted: bool  # a quoted word is never an option
    whole_quoted: bool  # the word is one quoted group and nothing else
    value_quoted: bool  # `--opt="…"`: an empty value was given on purpose


class _Unterminated(Exception):
    def __init__(self, problem: str) -> None:
        super().__init__(problem)
        self.problem = problem


def _closing_index(text: str, start: int, opener: str) -> int:
    """Index of the quote that closes the group opened at `start - 1`, or -1."""
    if opener in _DOUBLE_QUOTES:
        for j in range(start, len(text)):
            if text[j] in _DOUBLE_QUOTES:
                return j
        return -1
    for j in range(start, len(text)):
        if text[j] in _SINGLE_QUOTES and (j + 1 == len(text) or not text[j + 1].isalnum()):
            return j
    return -1


_QUOTES = frozenset(_DOUBLE_QUOTES + _SINGLE_QUOTES)


def _tokenize(text: str) -> list[_Token]:
    if _QUOTES.isdisjoint(text):
        # Most prompts quote nothing: then the words are exactly what str.split() gives (it splits
        # on the same isspace() characters as the loop below), at a fraction of its cost.
        return [_Token(word, word, False, False, False) for word in text.split()]
    tokens: list[_Token] = []
    i, n = 0, len(text)
    while i < n:
        if text[i].isspace():
            i += 1
            continue
        start = i
        buf: list[str] = []
        starts_quoted = value_quoted = False
        groups = 0
        last_group_end = -1
        while i < n and not text[i].isspace():
            char = text[i]
            is_quote = char in _DOUBLE_QUOTES or char in _SINGLE_QUOTES
            # Only the first "=" of an unquoted `--name=` can open a quoted value (checked once per word).
            after_eq = (
                is_quote
                and groups == 0
                and buf[-1:] == ["="]
                and buf.count("=") == 1
                and _OPTION_EQ_RE.fullmatch("".join(buf)) is not None
            )
            elision = char in _SINGLE_QUOTES and text[i + 1 : i + 2].isdigit()  # the '90s
            if is_quote and not elision and (not buf or after_eq):
                end = _closing_index(text, i + 1, char)
                if end < 0:
                    snippet = " ".join(text[i:].split())
                    snippet = snippet if len(snippet) <= 30 else snippet[:29] + "…"
                    raise _Unterminated(
                        f"Unterminated quote: the {char} that starts {snippet} is never closed. "
                        f"Add a closing {_CLOSING[char]} after the quoted words, or remove the {char}."
                    )
                starts_quoted = starts_quoted or not buf
                value_quoted = value_quoted or after_eq
                groups += 1
                buf.append(text[i + 1 : end])
                i = last_group_end = end + 1
                continue
            buf.append(char)
            i += 1
        whole = starts_quoted and groups == 1 and last_group_end == i
        tokens.append(_Token("".join(buf), text[start:i], starts_quoted, whole, value_quoted))
    return tokens


def _unescape(text: str) -> str:
    """Undo Slack's escaping of user-typed `&`, `<`, `>` (`&amp;` last, so `&amp;lt;` stays `&lt;`)."""
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


@dataclass(frozen=True)
class _Option:
    flag: str  # as typed, for messages
    name: str  # canonical, lower-case (may be unknown)
    value: str | None  # from `--opt=value`
    value_quoted: bool


def _as_option(token: _Token) -> _Option | None:
    if token.starts_quoted:
        return None
    match = _OPTION_RE.fullmatch(token.text)
    if match is None:
        return None
    prefix, name, value = match.group(1), match.group(2), match.group(3)
    canonical = name.lower()
    if prefix != "--" and canonical not in OPTION_NAMES:
        # A dash before an ordinary word is prose ("tides —the moon"), not a mistyped option.
        return None
    return _Option(prefix + name, canonical, value, token.value_quoted)


def _unknown_option(option: _Option) -> str:
    flag = option.flag
    if option.name == "help":
        return f'"{flag}" is not an option: send `/knowlify help` on its own to see how it works.'
    suggestion = _SYNONYMS.get(option.name)
    if suggestion is None:
        prefixed = [name for name in OPTION_NAMES if len(option.name) >= 2 and name.startswith(option.name)]
        close = difflib.get_close_matches(option.name, OPTION_NAMES, n=1, cutoff=0.6)
        suggestion = prefixed[0] if len(prefixed) == 1 else (close[0] if close else None)
    hint = (
        f"did you mean --{suggestion}?"
        if suggestion
        else "the options are " + ", ".join(f"--{name}" for name in OPTION_NAMES) + "."
    )
    return f'Unknown option "{flag}": {hint} If it belongs to your prompt, put it in quotes: "{flag}".'


def _check(name: str, value: str) -> str | int:
    if name == "duration":
        return check_duration(value)
    if name == "aspect":
        return check_aspect(value)
    if name == "type":
        return check_type(value)
    if name == "style":
        return check_style(value)
    return check_hex(name, value)


def _parse(text: str) -> Command:
    stripped = text.strip()
    if not stripped:
        return OpenModalCommand()
    if stripped.lower() == "help":
        return HelpCommand()
    if stripped.lower() == "list":
        return ListCommand()
    try:
        tokens = _tokenize(stripped)
    except _Unterminated as exc:
        return UsageError(escape(exc.problem))

    problems: list[str] = []
    given: dict[str, tuple[str, str]] = {}  # name -> (flag, raw value)
    checked: dict[str, str | int] = {}
    words: list[_Token] = []
    i = 0
    while i < len(tokens):
        token = tokens[i]
        option = _as_option(token)
        i += 1
        if option is None:
            words.append(token)
            continue
        if option.name not in OPTION_NAMES:
            problems.append(_unknown_option(option))
            continue
        example = f"--{option.name} {_OPTION_EXAMPLES[option.name]}"
        if option.value is not None and (option.value or option.value_quoted):
            value = option.value
        elif option.value is None and i < len(tokens) and _as_option(tokens[i]) is None:
            value = tokens[i].text
            i += 1
        else:
            problems.append(f'"{option.flag}" needs a value, e.g. {example}.')
            continue
        value = _unescape(value)
        if option.name in given:
            first_flag, first_value = given[option.name]
            problems.append(
                f'--{option.name} is given twice ("{first_flag} {first_value}" and '
                f'"{option.flag} {value}"): keep only one.'
            )
            continue
        given[option.name] = (option.flag, value)
        try:
            checked[option.name] = _check(option.name, value)
        except OptionError as exc:
            problems.append(f"{option.flag}: {exc.message}")

    if len(words) == 1 and words[0].whole_quoted:
        prompt = _unescape(words[0].text).strip()
    else:
        prompt = " ".join(_unescape(word.raw) for word in words if word.raw)
    if not prompt and given:
        shown = " ".join(f"{flag} {value}" if value else flag for flag, value in given.values())
        problems.append(
            f"You gave options ({quote_value(shown, 60)}) but no prompt: add what the video should explain, "
            f"e.g. `{EXAMPLE}`."
        )
    elif not prompt and problems:
        pass  # an unknown or incomplete option is the problem to report, not the missing prompt
    else:
        try:
            prompt = check_prompt(prompt)
        except OptionError as exc:
            problems.append(exc.message)

    if problems:
        # The answer is mrkdwn and echoes the user's values: escape them so "<!here>" stays text.
        if len(problems) == 1:
            return UsageError(escape(problems[0]))
        bullets = [f"• {problem}" for problem in problems[:_MAX_PROBLEMS_SHOWN]]
        if len(problems) > _MAX_PROBLEMS_SHOWN:
            bullets.append(f"• …and {len(problems) - _MAX_PROBLEMS_SHOWN} more.")
        return UsageError(escape("\n".join(bullets)))

    palette = tuple((role, str(checked[role])) for role in PALETTE_ROLES if role in checked)
    duration = checked.get("duration")
    options = VideoOptions(
        duration=int(duration) if duration is not None else None,
        aspect=_str_or_none(checked.get("aspect")),
        video_type=_str_or_none(checked.get("type")),
        style=_str_or_none(checked.get("style")),
        palette=palette,
    )
    return CreateCommand(prompt=prompt, options=options)


def _str_or_none(value: str | int | None) -> str | None:
    return None if value is None else str(value)


def parse_command(text: str) -> Command:
    """Parse the text of `/knowlify`; never raises, so a listener can always answer the user."""
    try:
        return _parse(text if isinstance(text, str) else "")
    except Exception as exc:  # a parser bug must still reach the user as an answer, not a timeout
        return UsageError(
            f"That command could not be read ({type(exc).__name__}): check its quotes and options, "
            "or send `/knowlify` alone to use the form."
        )

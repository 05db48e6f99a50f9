"""`/knowlify` text → command: every rule, every error message, and properties over arbitrary text."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from bot.core.options import (
    MAX_PROMPT_CHARS,
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
)
from bot.core.parse import (
    COMMAND_TYPES,
    USAGE,
    CreateCommand,
    HelpCommand,
    ListCommand,
    OpenModalCommand,
    UsageError,
    help_text,
    parse_command,
)

FAST = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def create(text: str) -> CreateCommand:
    result = parse_command(text)
    assert isinstance(result, CreateCommand), result
    return result


def usage_error(text: str) -> UsageError:
    result = parse_command(text)
    assert isinstance(result, UsageError), result
    assert result.problem
    assert result.message == result.problem + "\n\n" + USAGE
    return result


# --- subcommands -----------------------------------------------------------------------------------


@pytest.mark.parametrize("text", ["", "   ", "\n\t ", "\xa0"])
def test_empty_text_opens_the_modal(text: str) -> None:
    assert parse_command(text) == OpenModalCommand()


@pytest.mark.parametrize("text", ["help", "HELP", "  Help \n"])
def test_bare_help_is_help(text: str) -> None:
    assert parse_command(text) == HelpCommand()


@pytest.mark.parametrize("text", ["list", "List", "\tLIST  "])
def test_bare_list_is_list(text: str) -> None:
    assert parse_command(text) == ListCommand()


@pytest.mark.parametrize("text", ["help me understand DNS", "list the planets", "help --duration 60"])
def test_help_and_list_inside_other_text_are_prompts(text: str) -> None:
    assert create(text).prompt.split()[0].lower() in {"help", "list"}


# --- prompts and options ---------------------------------------------------------------------------


def test_example_from_usage_parses_to_all_options() -> None:
    cmd = create("Explain how HTTPS works --duration 60 --aspect 9:16 --type explainer --primary #0066cc")
    assert cmd == CreateCommand(
        "Explain how HTTPS works",
        VideoOptions(duration=60, aspect="9:16", video_type="explainer", palette=(("primary", "#0066cc"),)),
    )


def test_prompt_without_options_keeps_the_users_words_and_case() -> None:
    assert create("Explain TLS  to a   5-year-old") == CreateCommand(
        "Explain TLS to a 5-year-old", VideoOptions()
    )


def test_options_may_stand_anywhere() -> None:
    cmd = create("--duration 90 How tides --aspect 16:9 work --type narrative")
    assert cmd.prompt == "How tides work"
    assert cmd.options == VideoOptions(duration=90, aspect="16:9", video_type="narrative")


def test_equals_form_works_like_space_form() -> None:
    assert create("tides --duration=45 --type=Social") == create("tides --duration 45 --type social")


def test_quotes_group_an_option_value() -> None:
    cmd = create('Explain tides --style "clean, brand blue, sans-serif"')
    assert cmd.options.style == "clean, brand blue, sans-serif"
    assert cmd.prompt == "Explain tides"


@pytest.mark.parametrize(
    "quoted",
    ["“clean, brand blue”", "‘clean, brand blue’", "'clean, brand blue'", "”clean, brand blue”"],
)
def test_smart_and_single_quotes_group_words(quoted: str) -> None:
    assert create(f"tides --style {quoted}").options.style == "clean, brand blue"


def test_quoted_value_after_equals() -> None:
    assert create("tides --style=“flat, pastel” now").options.style == "flat, pastel"


def test_apostrophes_inside_words_are_not_quotes() -> None:
    cmd = create("Explain Kafka's log and the users' guide --style ‘it’s calm’")
    assert cmd.prompt == "Explain Kafka's log and the users' guide"
    assert cmd.options.style == "it’s calm"


def test_apostrophe_before_a_digit_is_an_elision() -> None:
    assert create("Music of the '90s").prompt == "Music of the '90s"


def test_a_prompt_that_is_one_quoted_group_loses_its_quotes() -> None:
    assert create('"How tides work" --duration 60').prompt == "How tides work"


def test_quotes_inside_a_prompt_are_kept() -> None:
    assert create('Explain "quantum entanglement" simply').prompt == 'Explain "quantum entanglement" simply'


def test_a_quoted_option_name_is_part_of_the_prompt() -> None:
    cmd = create('Explain the "--duration" flag --duration 60')
    assert cmd.prompt == 'Explain the "--duration" flag'
    assert cmd.options.duration == 60


@pytest.mark.parametrize("dash", ["—", "–", "—-"])
def test_autocorrected_dash_before_a_known_option_is_an_option(dash: str) -> None:
    cmd = create(f"tides {dash}duration 60 {dash}aspect=9:16")
    assert cmd.options == VideoOptions(duration=60, aspect="9:16")
    assert cmd.prompt == "tides"


def test_dashes_in_prose_stay_in_the_prompt() -> None:
    assert create("tides — the moon’s pull -- and —why it matters").prompt == (
        "tides — the moon’s pull -- and —why it matters"
    )


def test_option_names_are_case_insensitive() -> None:
    assert create("tides --DURATION 60 --Aspect 16:9").options == VideoOptions(duration=60, aspect="16:9")


def test_palette_is_normalised_and_kept_in_role_order() -> None:
    cmd = create("tides --accent #F36 --primary #0066CC --tertiary 333")
    assert cmd.options.palette == (("primary", "#0066cc"), ("tertiary", "#333"), ("accent", "#f36"))


def test_slack_escapes_are_undone_in_prompt_and_values() -> None:
    cmd = create("Compare a &lt; b &amp; c &gt; d, literally &amp;lt; --style &quot;x&amp;y")
    assert cmd.prompt == "Compare a < b & c > d, literally &lt;"
    assert cmd.options.style == "&quot;x&y"


def test_non_breaking_spaces_separate_words() -> None:
    cmd = create("tides\xa0--duration\xa060")
    assert (cmd.prompt, cmd.options.duration) == ("tides", 60)


# --- errors: each names the offending token and says how to fix it ------------------------------------


@pytest.mark.parametrize(
    ("text", "flag", "suggestion"),
    [
        ("tides --durtion 60", "--durtion", "--duration"),
        ("tides --dur 60", "--dur", "--duration"),
        ("tides --ratio 9:16", "--ratio", "--aspect"),
        ("tides --colour #fff", "--colour", "--primary"),
        ("tides --stlye calm", "--stlye", "--style"),
        ("tides --acent #fff", "--acent", "--accent"),
    ],
)
def test_unknown_option_names_it_and_suggests_the_closest(text: str, flag: str, suggestion: str) -> None:
    problem = usage_error(text).problem
    assert f'"{flag}"' in problem
    assert f"did you mean {suggestion}?" in problem
    assert "quotes" in problem


def test_unknown_option_without_a_close_match_lists_the_options() -> None:
    problem = usage_error("tides --zzzzzz 1").problem
    assert '"--zzzzzz"' in problem
    assert all(f"--{name}" in problem for name in ("duration", "aspect", "type", "style", *PALETTE_ROLES))


def test_dash_dash_help_points_to_the_help_subcommand() -> None:
    problem = usage_error("tides --help").problem
    assert "--help" in problem and "/knowlify help" in problem


@pytest.mark.parametrize(
    ("text", "flag", "example"),
    [
        ("tides --duration", "--duration", "--duration 60"),
        ("tides --aspect --duration 60", "--aspect", "--aspect 9:16"),
        ("tides --type=", "--type", "--type explainer"),
        ("tides —primary", "—primary", "--primary #0066cc"),
    ],
)
def test_option_missing_its_value(text: str, flag: str, example: str) -> None:
    problem = usage_error(text).problem
    assert f'"{flag}" needs a value' in problem
    assert example in problem


@pytest.mark.parametrize(
    ("text", "flag", "value", "fix"),
    [
        ("tides --duration 500", "--duration", "500", "30 to 300"),
        ("tides --duration 29", "--duration", "29", "30 to 300"),
        ("tides --duration 1.5", "--duration", "1.5", "whole number"),
        ("tides --duration sixty", "--duration", "sixty", "whole number"),
        ("tides --aspect 4:3", "--aspect", "4:3", "16:9"),
        ("tides --type funny", "--type", "funny", "explainer"),
        ("tides --primary blue", "--primary", "blue", "#rrggbb"),
        ("tides --secondary #12345", "--secondary", "#12345", "#rrggbb"),
    ],
)
def test_invalid_values_name_option_value_and_fix(text: str, flag: str, value: str, fix: str) -> None:
    problem = usage_error(text).problem
    assert problem.startswith(f"{flag}:")
    assert f'"{value}"' in problem
    assert fix in problem


def test_empty_quoted_style_is_refused() -> None:
    problem = usage_error('tides --style ""').problem
    assert problem.startswith("--style:") and "empty" in problem


def test_colour_escaped_as_a_channel_link_is_explained() -> None:
    problem = usage_error("tides --primary <#C0DESIGN1|0066cc>").problem
    assert problem.startswith("--primary:")
    assert "channel #0066cc" in problem
    assert "without the #" in problem


def test_echoed_values_are_escaped_for_mrkdwn() -> None:
    problem = usage_error("tides --duration <!here>").problem
    assert "&lt;!here&gt;" in problem and "<" not in problem


def test_same_option_twice_is_an_error_naming_both_values() -> None:
    problem = usage_error("tides --duration 60 --duration=90").problem
    assert "--duration is given twice" in problem
    assert '"--duration 60"' in problem and '"--duration 90"' in problem


def test_options_without_a_prompt() -> None:
    problem = usage_error("--duration 60 --aspect 9:16").problem
    assert "no prompt" in problem
    assert "--duration 60 --aspect 9:16" in problem


def test_prompt_longer_than_the_limit() -> None:
    problem = usage_error("x" * (MAX_PROMPT_CHARS + 7) + " --duration 60").problem
    assert f"{MAX_PROMPT_CHARS + 7} characters" in problem
    assert "shorten it by 7" in problem


def test_prompt_of_exactly_the_limit_is_fine() -> None:
    assert len(create("y" * MAX_PROMPT_CHARS).prompt) == MAX_PROMPT_CHARS


@pytest.mark.parametrize(
    ("text", "opener", "closer"), [('tides --style "calm', '"', '"'), ("tides “calm", "“", "”")]
)
def test_unterminated_quote_names_it(text: str, opener: str, closer: str) -> None:
    problem = usage_error(text).problem
    assert "Unterminated quote" in problem
    assert f"the {opener} that starts {opener}calm" in problem
    assert f"closing {closer}" in problem


def test_single_quote_needs_a_word_boundary_to_close() -> None:
    problem = usage_error("tides --style 'Kafka's look").problem
    assert "Unterminated quote" in problem


def test_several_problems_are_all_reported() -> None:
    problem = usage_error("tides --durtion 60 --aspect 4:3").problem
    assert problem.count("•") == 2
    assert "--durtion" in problem and '"4:3"' in problem


def test_a_flood_of_problems_is_capped() -> None:
    problem = usage_error("tides " + "--nope " * 50).problem
    assert problem.count("•") == 6 and "…and 45 more." in problem


def test_non_string_input_never_raises() -> None:
    assert parse_command(None) == OpenModalCommand()  # type: ignore[arg-type]


# --- texts -----------------------------------------------------------------------------------------


def test_usage_lists_every_option_and_the_example() -> None:
    for name in ("--duration", "--aspect", "--type", "--style", *(f"--{r}" for r in PALETTE_ROLES)):
        assert name in USAGE
    assert all(t in USAGE for t in VIDEO_TYPES)
    assert "30–300" in USAGE and "16:9" in USAGE and "9:16" in USAGE
    assert (
        "/knowlify Explain how HTTPS works --duration 60 --aspect 9:16 --type explainer --primary #0066cc"
        in USAGE
    )


def test_help_text_covers_the_conversation_and_uses_the_configured_emoji() -> None:
    text = help_text("back")
    assert ":back:" in text and ":rewind:" not in text
    for needle in ("--duration", "/knowlify list", "thread", "5", "admin", "form", "reference images"):
        assert needle in text
    assert ":rewind:" in help_text()
    assert ":rewind:" in help_text(":rewind:")


# --- validators ------------------------------------------------------------------------------------


def test_validators_normalise() -> None:
    assert check_duration(" 60 ") == 60
    assert check_duration("90s") == 90
    assert check_aspect("Portrait") == "9:16"
    assert check_aspect("16 x 9") == "16:9"
    assert check_type("MARKETING") == "marketing"
    assert check_style("  calm  ") == "calm"
    assert check_hex("accent", "#ABC") == "#abc"
    assert check_hex("accent", "AbCdEf") == "#abcdef"
    assert check_prompt("  hi ") == "hi"


@pytest.mark.parametrize(
    "call",
    [
        lambda: check_duration(""),
        lambda: check_duration("٦٠"),  # non-ASCII digits are not what Knowlify accepts
        lambda: check_duration("301"),
        lambda: check_aspect("1:1"),
        lambda: check_type(""),
        lambda: check_style(" "),
        lambda: check_style("s" * 5001),
        lambda: check_hex("primary", "#abcd"),
        lambda: check_hex("primary", "#ggg"),
        lambda: check_hex("background", "#fff"),
        lambda: check_prompt("\n"),
        lambda: check_prompt("p" * 5001),
    ],
)
def test_validators_refuse_with_a_message(call) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(OptionError) as info:
        call()
    assert info.value.message and info.value.message == str(info.value)


def test_video_options_spec_fields_and_description() -> None:
    options = VideoOptions(
        duration=60,
        aspect="9:16",
        video_type="explainer",
        style="calm",
        palette=(("accent", "#f36"), ("primary", "#0066cc")),
    )
    assert options.to_spec_fields() == {
        "video_duration_seconds": 60,
        "aspect_ratio": "9:16",
        "video_type": "explainer",
        "global_style_prompt": "calm",
        "color_palette": {"primary": "#0066cc", "accent": "#f36"},
    }
    assert options.describe() == '60 s · 9:16 · explainer · style "calm" · primary #0066cc · accent #f36'
    assert VideoOptions().to_spec_fields() == {}
    assert VideoOptions().describe() == ""
    assert VideoOptions(
        duration=60, aspect="9:16", video_type="explainer", palette=(("primary", "#0066cc"),)
    ).describe() == ("60 s · 9:16 · explainer · primary #0066cc")


def test_video_options_refuse_bad_palette_roles() -> None:
    with pytest.raises(ValueError):
        VideoOptions(palette=(("primary", "#fff"), ("primary", "#000")))
    with pytest.raises(ValueError):
        VideoOptions(palette=(("background", "#fff"),))


# --- properties ------------------------------------------------------------------------------------

_OPTION_TOKENS = [
    f"{prefix}{name}{suffix}"
    for prefix in ("--", "—", "–")
    for name in ("duration", "aspect", "type", "style", *PALETTE_ROLES, "durtion", "help", "")
    for suffix in ("", "=")
]
_FRAGMENTS = st.one_of(
    st.text(max_size=12),
    st.sampled_from(_OPTION_TOKENS),
    st.sampled_from(['"', "“", "”", "'", "‘", "’", "„", "--", "—", "–", "-", "=", " ", "\n", "\xa0"]),
    st.sampled_from(["<#C123|0066cc>", "&amp;", "&lt;", "help", "list", "#0066cc", "60", "9:16", "'90s"]),
)


@FAST
@given(st.lists(_FRAGMENTS, max_size=14), st.sampled_from(["", " "]))
def test_arbitrary_text_never_raises_and_gives_a_command(fragments: list[str], joiner: str) -> None:
    result = parse_command(joiner.join(fragments))
    assert isinstance(result, COMMAND_TYPES)
    if isinstance(result, UsageError):
        assert result.problem.strip()
        assert "could not be read" not in result.problem  # the never-raise net caught a parser bug
        assert result.message.endswith(USAGE)
    if isinstance(result, CreateCommand):
        assert 1 <= len(result.prompt) <= MAX_PROMPT_CHARS
        assert result.prompt == result.prompt.strip()


@FAST
@given(st.text())
def test_any_unicode_never_raises(text: str) -> None:
    result = parse_command(text)
    assert isinstance(result, COMMAND_TYPES)
    assert not (isinstance(result, UsageError) and "could not be read" in result.problem)


_QUOTES = "\"'“”‘’„‚‟‛"
_word = st.text(st.characters(exclude_categories=("Cs",)), min_size=1, max_size=10).filter(
    lambda w: not any(c.isspace() for c in w) and w[0] not in _QUOTES + "-—–"
)


def _slack_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


@st.composite
def _rendered_option(draw: st.DrawFn, name: str) -> tuple[str, object]:
    """One option as a user might type it, and the value it must parse to."""
    flag = draw(st.sampled_from(["--", "—", "–"])) + draw(st.sampled_from([name, name.upper(), name.title()]))
    if name == "duration":
        seconds = draw(st.integers(30, 300))
        text, expected = draw(st.sampled_from([str(seconds), f"{seconds}s"])), seconds
    elif name == "aspect":
        text, expected = draw(
            st.sampled_from([("16:9", "16:9"), ("9:16", "9:16"), ("landscape", "16:9"), ("9x16", "9:16")])
        )
    elif name == "type":
        kind = draw(st.sampled_from(VIDEO_TYPES))
        text, expected = draw(st.sampled_from([kind, kind.upper(), kind.title()])), kind
    elif name == "style":
        style = draw(
            st.text(
                st.characters(exclude_categories=("Cs",), exclude_characters='"“”„‟'), min_size=1, max_size=40
            )
        )
        style = style.strip()
        assume(style)
        opener, closer = draw(st.sampled_from([('"', '"'), ("“", "”")]))
        text, expected = f"{opener}{_slack_escape(style)}{closer}", style
    else:
        size = draw(st.sampled_from([3, 6]))
        digits = draw(st.text("0123456789abcdefABCDEF", min_size=size, max_size=size))
        text, expected = draw(st.sampled_from(["#", ""])) + digits, "#" + digits.lower()
    separator = draw(st.sampled_from([" ", "="]))
    return f"{flag}{separator}{text}", expected


@st.composite
def _valid_command(draw: st.DrawFn) -> tuple[str, CreateCommand]:
    words = draw(st.lists(_word, min_size=1, max_size=8))
    names = draw(
        st.lists(st.sampled_from(["duration", "aspect", "type", "style", *PALETTE_ROLES]), unique=True)
    )
    pieces = [_slack_escape(w) for w in words]
    values: dict[str, object] = {}
    for name in names:
        rendered, values[name] = draw(_rendered_option(name))
        pieces.insert(draw(st.integers(0, len(pieces))), rendered)
    separators = draw(st.lists(st.sampled_from([" ", "  ", "\n", "\xa0", " \t"]), min_size=len(pieces)))
    text = "".join(p + s for p, s in zip(pieces, separators, strict=False))
    prompt = " ".join(words)
    assume(names or prompt.lower() not in {"help", "list"})
    options = VideoOptions(
        duration=values.get("duration"),  # type: ignore[arg-type]
        aspect=values.get("aspect"),  # type: ignore[arg-type]
        video_type=values.get("type"),  # type: ignore[arg-type]
        style=values.get("style"),  # type: ignore[arg-type]
        palette=tuple((role, values[role]) for role in PALETTE_ROLES if role in values),  # type: ignore[misc]
    )
    return text, CreateCommand(prompt, options)


@FAST
@given(_valid_command())
def test_valid_prompt_and_options_in_any_order_round_trip(case: tuple[str, CreateCommand]) -> None:
    text, expected = case
    assert parse_command(text) == expected

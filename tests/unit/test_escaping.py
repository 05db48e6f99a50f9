"""Hostile text through every builder that produces mrkdwn: nothing a person or Knowlify wrote may come
out as a mention, a channel notification or a disguised link, and a Knowlify link that is not a plain
https address is never linked (nor shown in part)."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest

from bot.core import lifecycle as lc
from bot.core import texts
from bot.core.mrkdwn import channel_link, checked_link, escape, link, mention
from bot.core.parse import UsageError, parse_command
from bot.listeners.commands import list_text
from bot.listeners.home import SECTION_MAX, home_view
from bot.ui.card import card
from bot.ui.modal import build_create_modal, parse_submission
from storage.models import VideoJob
from tests.markup_scan import Meant, scan_text, scan_value, unmeant

ADA = "U0ADA0001"
MEANT = Meant.of(users=[ADA], channels=["C0DESIGN1"])
GOOD = "https://create.knowlify.com/p/chat/0b6f?a=1&b=2"

HOSTILE = [
    "Explain <!channel> <https://evil.example/phish|Q3 board deck> <@U0BOB>",
    "<!here> <!everyone> <!subteam^S0123|@admins> <#C0SECRET|secret> <@W0BOB|bob>",
    "<https://evil.example/phish> <mailto:ceo@evil.example|CEO> <tel:+1555|call>",
    "&lt;!channel&gt; and &amp;lt;!here&amp;gt; and &lt;@U0BOB&gt;",
    "a < b > c & d <<!channel>> <<https://x.example|y>>",
    "<javascript:alert(1)|click> <data:text/html,<script>alert(1)</script>|x>",
    "ünïcödé <!channel> 🎬 ‮ <@U0BOB> \u200b<!here>",
    "<!date^1392734382^{date}|Feb 18>",
    "line one\n<!channel>\n`code <!here>` *bold <@U0BOB>*",
    "x" * 4000 + "<!channel>" + "&" * 3000 + "<@U0BOB>",
]

HOSTILE_LINKS = [
    "javascript:alert(1)",
    "http://evil.example/phish",
    "data:text/html,<script>alert(1)</script>",
    "https://evil.example/x|Q3 board deck",
    "https://evil.example/a b",
    "https://evil.example/a\tb",
    "https://evil.example/a\nb",
    "https://evil.example/<!channel>",
    "https://evil.example/>x",
    "https://",
    "HTTPS://evil.example/shouty",
    " https://evil.example/leading-space",
    "https://evil.example/\u00a0nbsp",
    "",
]


def shown(mrkdwn: str) -> str:
    """What a reader sees of escaped text."""
    return mrkdwn.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def assert_clean(text: str, meant: Meant = MEANT) -> None:
    assert not scan_text(text, meant), f"live markup in {text[:300]!r}"


# --- the helpers -------------------------------------------------------------------------


@pytest.mark.parametrize("text", HOSTILE)
def test_escape_shows_the_text_as_typed_and_leaves_no_markup(text):
    out = escape(text)
    assert "<" not in out and ">" not in out
    assert shown(out) == text
    assert unmeant(out, Meant()) == []


def test_escape_of_entities_keeps_them_visible_instead_of_decoding_them():
    assert escape("&lt;!channel&gt;") == "&amp;lt;!channel&amp;gt;"
    assert escape("&amp;lt;") == "&amp;amp;lt;"
    assert escape(None) == "" and escape("") == ""


@pytest.mark.parametrize("url", HOSTILE_LINKS)
def test_checked_link_refuses_anything_but_a_plain_https_address(url):
    assert checked_link(url) is None


@pytest.mark.parametrize(
    "url",
    [GOOD, "https://animation-encoder-videos.s3.us-west-2.amazonaws.com/x.mp4", "https://bücher.example/ä"],
)
def test_checked_link_keeps_plain_https_addresses(url):
    assert checked_link(url) == url
    assert checked_link(url + "/" + "a" * 5000) is not None  # long is fine; Knowlify's presigned URLs are


def test_link_escapes_the_label_and_the_ampersands_of_the_url():
    out = link(GOOD, "<!channel> & <@U0BOB>")
    assert out == "<https://create.knowlify.com/p/chat/0b6f?a=1&amp;b=2|&lt;!channel&gt; &amp; &lt;@U0BOB&gt;>"
    assert unmeant(out, Meant.of(links=lambda u: u == GOOD)) == []


@pytest.mark.parametrize("bad", ["U0BOB>|<!channel", "U0ADA0001\n", "<!channel>", "u0lower", "", "U", "C0DESIGN1"])
def test_mention_and_channel_link_only_for_real_looking_ids(bad):
    assert unmeant(mention(bad), Meant()) == []
    assert unmeant(channel_link(bad if bad != "C0DESIGN1" else "U0ADA0001"), Meant()) == []
    assert mention("U0ADA0001") == "<@U0ADA0001>" and mention("W0ENT0001") == "<@W0ENT0001>"
    assert channel_link("C0DESIGN1") == "<#C0DESIGN1>"


# --- every builder of thread texts -------------------------------------------------------

STATUSES = [None, 400, 401, 402, 403, 404, 409, 415, 422, 429, 500]


def every_text(value: str, url: str | None) -> list[str]:
    """Each texts function fed the hostile value wherever it takes one."""
    out = [
        texts.item_failed(value),
        texts.render_failed(value),
        texts.could_not_join(value),
        texts.video_done(url, value),
        texts.edit_failed(value),
        texts.edit_failed(value + " ambiguous"),
        texts.edit_done(url, [1], [2], [3], True),
        texts.edit_done(url, [], [], [], False),
        texts.revert_done([1], [], [2], url),
        texts.command_taken(value),
        texts.ignored_links([value]),
        texts.video_gone(value),
        texts.edit_gone(value),
        texts.revert_not_allowed(ADA, value),
        texts.revert_not_allowed(value, value),
        texts.edit_how_to(value, value),
        texts.edit_limit(value, 3, 1_800_000_000),
    ]
    for status in STATUSES:
        out += [
            texts.create_refused(status, value),
            texts.edit_refused(status, value),
            texts.edit_refused(status, value + " reference url"),
            texts.edit_refused(status, value + " errored"),
            texts.revert_refused(status, value, url),
            texts.revert_refused(status, "a newer external edit exists " + value, url),
            texts.revert_refused(status, "not in a revertable state status=" + value, url),
        ]
    return out


@pytest.mark.parametrize("value", HOSTILE)
@pytest.mark.parametrize("url", [*HOSTILE_LINKS, None])
def test_no_thread_text_carries_markup_from_hostile_text_or_links(value, url):
    for text in every_text(value, url):
        assert_clean(text)
        if url and url not in value:
            assert url not in text, "no part of a withheld link is shown"


@pytest.mark.parametrize("url", HOSTILE_LINKS[:-1])
def test_a_withheld_link_is_said_to_be_withheld(url):
    assert texts.LINK_WITHHELD in texts.video_done(url, "Explain tides")
    assert texts.LINK_WITHHELD in texts.edit_done(url, [1], [], [], True)
    assert texts.LINK_WITHHELD in texts.revert_done([1], [], [], url)
    assert "link withheld" in texts.link_or_withheld(url)


def test_a_good_link_is_linked_with_the_prompt_as_escaped_label():
    text = texts.video_done(GOOD, "Explain <!channel> tides")
    assert "<https://create.knowlify.com/p/chat/0b6f?a=1&amp;b=2|Explain &lt;!channel&gt; tides>" in text
    assert_clean(text, Meant.of(links=lambda u: u == GOOD))
    assert "<https://create.knowlify.com" in texts.edit_done(GOOD, [1], [], [], True)
    assert "<https://create.knowlify.com" in texts.revert_done([1], [], [], GOOD)


def test_knowlify_detail_is_shown_as_typed():
    detail = "bad <!channel> & <https://evil.example|here>"
    assert shown(detail) == detail
    assert detail in shown(texts.create_refused(422, detail))
    assert detail in shown(texts.render_failed(detail))
    assert detail in shown(texts.edit_refused(422, detail))


def test_the_sixth_link_of_a_reply_is_named_as_text_not_unescaped_into_markup():
    # edit_reply decodes Slack's entities, so a link typed as ".../&lt;!channel&gt;" arrives with "<!channel>".
    text = texts.ignored_links(["https://evil.example/<!channel>", "https://evil.example/`<@U0BOB>`"])
    assert_clean(text)
    assert "https://evil.example/&lt;!channel&gt;" in text


def test_an_unknown_knowlify_status_is_escaped_in_the_status_line():
    line = lc.status_line(lc.RENDERING, lc.Progress("<!channel>_<@U0BOB>"))
    assert_clean(line)
    assert "<!channel>" in shown(line)


# --- the card ----------------------------------------------------------------------------


@pytest.mark.parametrize("value", HOSTILE)
@pytest.mark.parametrize("url", [*HOSTILE_LINKS, GOOD])
def test_card_shows_hostile_prompt_options_error_and_link_as_text(value, url):
    meant = Meant.of(users=[ADA], links=lambda u: u == GOOD)
    for state, error in [
        (lc.COMPLETE, None),
        (lc.FAILED, texts.render_failed(value)),
        (lc.FAILED, value),  # even a raw stored text cannot become markup
        (lc.RENDERING, None),
    ]:
        view = card(
            prompt=value,
            user_id=ADA,
            options=value,
            state=state,
            progress=lc.Progress(value),
            error=error,
            link=url,
            edits_applied=2,
            note=texts.could_not_join(value),
        )
        assert not scan_value({"text": view.text, "blocks": view.blocks}, meant, "card")
        assert f"<@{ADA}>" in view.text
        if state == lc.COMPLETE and url and url != GOOD:
            status = view.blocks[2]["text"]["text"]
            assert texts.LINK_WITHHELD in status and url not in status


def test_card_links_a_good_knowlify_link():
    view = card(prompt="p", user_id=ADA, options="", state=lc.COMPLETE, progress=lc.Progress("complete"), link=GOOD)
    assert "<https://create.knowlify.com/p/chat/0b6f?a=1&amp;b=2|watch the video>" in view.blocks[2]["text"]["text"]


# --- /knowlify list, App Home, the command's answer, the modal ------------------------------


def job(prompt: str, link: str | None, state: str = lc.COMPLETE, **kw) -> VideoJob:
    return VideoJob(
        request_key=prompt[:20],
        team_id="T0KN0W001",
        channel_id="C0DESIGN1",
        user_id=ADA,
        key_id="k",
        prompt=prompt,
        state=state,
        chat_url=link,
        **kw,
    )


def hostile_jobs() -> list[VideoJob]:
    rows = [job(v, GOOD) for v in HOSTILE]
    rows += [job(f"video {i}", u) for i, u in enumerate(HOSTILE_LINKS)]
    rows.append(job("<!channel> failed", None, lc.FAILED, error_message=texts.render_failed("<!here>")))
    rows.append(job("<@U0BOB> running", None, lc.RENDERING, status="<!channel>"))
    return rows


def test_list_shows_hostile_prompts_and_links_as_text():
    store = SimpleNamespace(recent_videos=lambda team, channel, n: hostile_jobs())
    text = list_text(SimpleNamespace(store=store), "T0KN0W001", "C0DESIGN1")  # type: ignore[arg-type]
    assert_clean(text, Meant.of(users=[ADA], links=lambda u: u == GOOD))
    assert "Explain &lt;!channel&gt; &lt;https://evil.example/phish|Q3 board deck&gt; &lt;@U0BOB&gt;" in text
    assert_withheld_lines(text)


def assert_withheld_lines(text: str) -> None:
    for i, url in enumerate(HOSTILE_LINKS[:-1]):
        (line,) = [line for line in text.split("\n") if f"video {i} " in line or f"video {i}:" in line]
        assert "link withheld" in line and url not in line.split("video", 1)[1]


def test_list_links_a_good_link():
    store = SimpleNamespace(recent_videos=lambda team, channel, n: [job("Explain tides", GOOD)])
    text = list_text(SimpleNamespace(store=store), "T0KN0W001", "C0DESIGN1")  # type: ignore[arg-type]
    assert "|link>" in text
    assert_clean(text, Meant.of(users=[ADA], links=lambda u: u == GOOD))


def test_home_shows_hostile_prompts_and_links_as_text_within_section_limits():
    view = home_view(hostile_jobs(), "rewind")
    assert not scan_value(view, Meant.of(users=[ADA], channels=["C0DESIGN1"], links=lambda u: u == GOOD), "home")
    body = "\n".join(b["text"]["text"] for b in view["blocks"] if b["type"] == "section")
    assert "Explain &lt;!channel&gt;" in body
    assert_withheld_lines(body)
    for block in view["blocks"]:
        if block["type"] == "section":
            assert len(block["text"]["text"]) <= SECTION_MAX


def test_home_of_ten_long_escaped_prompts_stays_within_section_limits():
    view = home_view([job("&<>" * 200, GOOD + "/" + "a" * 200) for _ in range(10)], "rewind")
    sections = [b for b in view["blocks"] if b["type"] == "section"]
    assert len(sections) > 2  # the videos did not fit one section
    assert all(len(b["text"]["text"]) <= SECTION_MAX for b in sections)
    assert json.dumps(view).count("|link>") == 10


@pytest.mark.parametrize("value", HOSTILE)
def test_usage_errors_echo_hostile_option_values_as_text(value):
    commands = [
        f"Explain tides --duration {value}",
        f'Explain --aspect "{value}"',
        f'--style "{value}"',
        f'Explain --primary "{value}" --primary "{value}"',
        f"Explain --x{value.split()[0]}",
    ]
    for command in commands:
        answer = parse_command(command)
        assert isinstance(answer, UsageError)
        assert_clean(answer.message)


def test_the_modal_has_no_live_markup():
    assert not scan_value(build_create_modal(json.dumps({"channel": "C0DESIGN1"})), Meant(), "modal")


@pytest.mark.parametrize("value", HOSTILE)
def test_the_modals_errors_quote_hostile_values_as_text(value):
    errors = parse_submission(
        {
            "prompt": {"prompt_input": {"value": value * 2}},
            "duration": {"duration_input": {"value": value}},
            "color_primary": {"color_primary_input": {"value": value}},
            "aspect": {"aspect_select": {"selected_option": {"value": value}}},
        }
    )
    assert isinstance(errors, dict) and {"duration", "color_primary", "aspect"} <= set(errors)
    for message in errors.values():
        assert_clean(message, Meant())


def test_the_scanner_lets_the_bots_own_dates_through_but_no_notification():
    assert unmeant(texts.slack_date(1_800_000_000), Meant()) == []
    assert unmeant("<!date^1392734382^{date}|Feb 18> <!here> <!channel|x>", Meant()) == ["<!here>", "<!channel|x>"]

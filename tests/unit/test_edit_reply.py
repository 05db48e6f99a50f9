"""A thread reply as Slack delivers it → the edit request and reference images Knowlify receives."""

from __future__ import annotations

from bot.core.edit_reply import MAX_EDIT_CHARS, MAX_REFERENCES, EditReply, EditReplyError, parse_edit_reply


def reply(raw: str) -> EditReply:
    result = parse_edit_reply(raw)
    assert isinstance(result, EditReply), result
    return result


def test_plain_text_passes_through_without_references():
    r = reply("  Slow down scene 2  ")
    assert r == EditReply("Slow down scene 2", (), ())


def test_slack_link_markup_is_unwrapped():
    r = reply("Use <https://cdn.example.com/a.png|this mood board> and <https://cdn.example.com/b.png>")
    assert r.text == ("Use this mood board (https://cdn.example.com/a.png) and https://cdn.example.com/b.png")
    assert r.reference_urls == ("https://cdn.example.com/a.png", "https://cdn.example.com/b.png")


def test_a_label_equal_to_the_url_is_not_repeated():
    r = reply("See <https://x.example/a.png|https://x.example/a.png>")
    assert r.text == "See https://x.example/a.png"
    assert r.reference_urls == ("https://x.example/a.png",)


def test_bare_urls_count_and_lose_trailing_punctuation():
    r = reply("Match https://x.example/a.png, then https://x.example/b.jpg.")
    assert r.reference_urls == ("https://x.example/a.png", "https://x.example/b.jpg")
    assert r.text == "Match https://x.example/a.png, then https://x.example/b.jpg."


def test_links_keep_the_order_they_were_written_in():
    r = reply("one https://x.example/1.png two <https://x.example/2.png> three https://x.example/3.png")
    assert r.reference_urls == tuple(f"https://x.example/{n}.png" for n in (1, 2, 3))


def test_only_https_links_are_references():
    r = reply(
        "Old one: <http://x.example/old.png>, also http://x.example/b.png; new: <https://x.example/n.png>"
    )
    assert r.reference_urls == ("https://x.example/n.png",)
    assert "http://x.example/old.png" in r.text and "http://x.example/b.png" in r.text


def test_more_than_five_links_keep_the_first_five_and_name_the_rest():
    urls = [f"https://x.example/{n}.png" for n in range(1, 9)]
    r = reply("Use " + " ".join(f"<{u}>" for u in urls))
    assert MAX_REFERENCES == 5
    assert r.reference_urls == tuple(urls[:5])
    assert r.ignored_urls == tuple(urls[5:])


def test_a_repeated_link_counts_once():
    r = reply("<https://x.example/a.png> again https://x.example/a.png and <https://x.example/b.png|b>")
    assert r.reference_urls == ("https://x.example/a.png", "https://x.example/b.png")
    assert r.ignored_urls == ()


def test_slack_escapes_are_undone_in_text_and_links():
    r = reply("Make A &lt;b&gt; &amp; C, see <https://x.example/a.png?w=1&amp;h=2|pic>; literal &amp;lt;")
    assert r.reference_urls == ("https://x.example/a.png?w=1&h=2",)
    assert r.text.startswith("Make A <b> & C, see pic (https://x.example/a.png?w=1&h=2)")
    assert r.text.endswith("literal &lt;"), "decoded once, as the user typed it"


def test_mentions_and_channel_links_are_left_alone():
    r = reply("Ask <@U0BOB0002> about scene 2 in <#C0DESIGN1|design>")
    assert r.text == "Ask <@U0BOB0002> about scene 2 in <#C0DESIGN1|design>"
    assert r.reference_urls == ()


def test_an_overlong_reply_is_refused_with_its_length():
    too_long = parse_edit_reply("x" * (MAX_EDIT_CHARS + 1))
    assert isinstance(too_long, EditReplyError)
    assert "5001" in too_long.problem and "5000" in too_long.problem
    assert isinstance(parse_edit_reply("x" * MAX_EDIT_CHARS), EditReply)


def test_the_limit_applies_to_the_text_knowlify_gets():
    # Link markup is unwrapped before counting: <url|label> becomes "label (url)".
    url = "https://x.example/a.png"
    raw = "y" * (MAX_EDIT_CHARS - len(url) - 2) + f"<{url}>"
    assert isinstance(parse_edit_reply(raw), EditReply)
    assert isinstance(parse_edit_reply(raw.replace(">", "|label>")), EditReplyError)


def test_an_empty_reply_is_refused():
    for raw in ("", "   ", "\n"):
        result = parse_edit_reply(raw)
        assert isinstance(result, EditReplyError) and "empty" in result.problem

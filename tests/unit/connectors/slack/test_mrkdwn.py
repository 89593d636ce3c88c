"""Bot markdown as Slack mrkdwn: formatting kept, every mention written by others inert,
long text split under Slack's limits with code blocks balanced."""

from __future__ import annotations

import re

from connectors.slack.mrkdwn import PART_LIMIT, escape, mention, parts, to_mrkdwn


def test_formatting_becomes_slack_s_own() -> None:
    """Bold, italic, strike, code, headings and links are written as Slack reads them."""
    got = to_mrkdwn("# Title\n\n**bold** _it_ ~~gone~~ `ps` [docs](https://example.org/a?b=1&c=2)")
    assert got.split("\n\n") == [
        "*Title*",
        "*bold* _it_ ~gone~ `ps` <https://example.org/a?b=1&amp;c=2|docs>",
    ]


def test_lists_quotes_and_fences() -> None:
    """Lists get bullets or numbers, quotes keep their marker, fences lose the language."""
    got = to_mrkdwn("- a\n- b\n\n3. c\n4. d\n\n> said\n\n```py\nx = 1\n```")
    assert got == "• a\n• b\n\n3. c\n4. d\n\n> said\n\n```\nx = 1\n```"


def test_a_table_becomes_aligned_columns_in_a_code_block() -> None:
    """Slack has no tables: the columns are aligned inside a code block."""
    got = to_mrkdwn("| name | state |\n|---|---|\n| coder | running |")
    assert got.startswith("```\n") and got.endswith("\n```")
    assert "name   state" in got and "coder  running" in got


def test_hostile_mentions_are_inert_everywhere() -> None:
    """<!channel>, <!here>, <@U…>, <!subteam^…> from agent text never reach Slack raw:
    in prose, in code, in code blocks, in link labels and in tables."""
    hostile = "<!channel> <!here> <@U0BOT1234> <!subteam^S0123|@team> & <https://x|y>"
    source = (
        f"{hostile}\n\n`{hostile}`\n\n```\n{hostile}\n```\n\n[{hostile}](https://e.org)\n\n"
        f"| a |\n|---|\n| {hostile.replace('|', '/')} |"
    )
    got = to_mrkdwn(source)
    assert re.findall(r"<[^>]*>", got) == ["<https://e.org>"]  # its label reads as an address
    label = to_mrkdwn("[<!channel> & <@U0BOT1234>](https://e.org)")
    assert re.findall(r"<[^>]*>", label) == [
        "<https://e.org|&lt;!channel&gt; &amp; &lt;@U0BOT1234&gt;>"
    ]
    assert "<!" not in got and "<@" not in got


def test_a_label_that_looks_like_an_address_shows_the_real_link() -> None:
    """Labels that read as an address once look-alikes are folded (Cyrillic, full-width,
    a one dot leader, an ideographic full stop, a zero-width space) show the real link."""
    for label in (
        "g\u0456thub.com",
        "\uff47\uff49\uff54\uff48\uff55\uff42\uff0e\uff43\uff4f\uff4d",
        "github\u2024com",
        "github\u3002com",
        "git\u200bhub.com",
        "\u0440\u0430\u0443\u0440\u0430l.com",
        "\u210ettps\uff1a//x",
    ):
        got = to_mrkdwn(f"[{label}](https://evil.example/)")
        assert re.findall(r"<[^>]*>", got) == ["<https://evil.example/>"], label
    for label in (
        "the guide",
        "\u041f\u0440\u0438\u0432\u0435\u0442 \u043c\u0438\u0440",
        "caf\u00e9 menu",
    ):
        assert to_mrkdwn(f"[{label}](https://e.org)") == f"<https://e.org|{label}>"


def test_a_label_with_a_dot_like_mark_for_its_dot_shows_the_real_link() -> None:
    """Middle dots, full stops of other scripts and the hyphenation point between two
    names read as a domain's dot: such a label shows the real link."""
    for mark in ("\u00b7", "\u30fb", "\u06d4", "\u2027", "\u2e31", "\uff65", "\u0589"):
        got = to_mrkdwn(f"[github{mark}com](https://evil.example/)")
        assert re.findall(r"<[^>]*>", got) == ["<https://evil.example/>"], hex(ord(mark))
    for label in ("a\u2056b", "caf\u00e9 \u2025 menu"):
        assert to_mrkdwn(f"[{label}](https://e.org)") == f"<https://e.org|{label}>"


def test_a_link_of_another_scheme_is_text() -> None:
    """Only http(s) and mailto links are links; anything else is shown as text."""
    assert "<" not in to_mrkdwn("[x](ftp://host/file)")


def test_code_cannot_end_its_block_early() -> None:
    """Three backticks inside a code block are broken up, so agent output cannot end it."""
    got = to_mrkdwn("````\na ``` b\n````")
    assert got.count("```") == 2


def test_escape_and_mention() -> None:
    """escape() handles the three control characters; mention() only takes user ids."""
    assert escape("a & <b> c") == "a &amp; &lt;b&gt; c"
    assert mention("U0123ABCD") == "<@U0123ABCD>"
    assert mention("!channel") is None and mention("U1>x") is None


def test_long_text_is_split_never_cut() -> None:
    """A text over the limit becomes several parts, each within it, holding every word."""
    words = [f"w{n}" for n in range(2000)]
    text = "\n\n".join(" ".join(words[i : i + 10]) for i in range(0, len(words), 10))
    got = parts(text)
    assert len(got) >= 2 and all(len(part) <= PART_LIMIT for part in got)
    assert " ".join(got).split() == words


def test_a_split_code_block_is_closed_and_reopened() -> None:
    """A code block cut between parts is closed at the cut and reopened in the next part."""
    code = "\n".join(f"line {n} <x>" for n in range(600))
    got = parts(f"intro\n\n```\n{code}\n```")
    assert len(got) >= 2
    assert all(part.count("```") % 2 == 0 for part in got)
    assert "<x>" not in "".join(got)


def test_blank_text_has_no_parts() -> None:
    """Nothing to say posts nothing."""
    assert parts("  \n ") == []


def test_a_link_whose_label_reads_as_another_address_shows_both() -> None:
    """`[https://github.com/o/r](https://evil.example/x)` never shows GitHub while opening
    evil.example: the label is text and the real address its own link."""
    [text] = parts("[https://github.com/o/r](https://evil.example/x) [docs](https://ok.example/)")
    assert "https://github.com/o/r (<https://evil.example/x>)" in text
    assert "<https://ok.example/|docs>" in text
    assert "|https://github.com" not in text

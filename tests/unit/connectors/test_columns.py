"""Tests for connectors.columns and the console's plain text fitted to a width: words are
never cut, a table wider than the terminal is narrowed, prose wraps between words, code
is left as it is."""

from __future__ import annotations

from connectors.columns import fit_widths, text_width, wrap_words
from connectors.markdown import to_plain


def _words(text: str) -> list[str]:
    """The words of ``text`` in order, a table's rules left out."""
    return [word for word in text.split() if word.strip("-")]


def test_text_width_counts_wide_characters_twice_and_combining_marks_not_at_all() -> None:
    """A CJK character takes two columns, a combining accent none."""
    assert text_width("abc") == 3
    assert text_width("日本") == 4
    assert text_width("e\u0301") == 1


def test_wrap_words_breaks_only_between_words() -> None:
    """Lines stay within the width, broken at spaces; a line that fits is kept as it is;
    a word wider than the width has a line of its own, whole."""
    assert wrap_words("List the agents and what each is doing.", 16) == [
        "List the agents",
        "and what each is",
        "doing.",
    ]
    assert wrap_words("a  b", 10) == ["a  b"]
    assert wrap_words("see https://example.com/a/very/long/path now", 10) == [
        "see",
        "https://example.com/a/very/long/path",
        "now",
    ]
    assert wrap_words("one\ntwo three", 5) == ["one", "two", "three"]


def test_fit_widths_narrows_the_widest_columns_first_never_below_a_word() -> None:
    """Rows that fit keep their widths; otherwise the widest column gives way first,
    each stopping at its longest word."""
    rows = [["command", "what it does"], ["ps", "List the agents and what each is doing."]]
    assert fit_widths(rows, 2, 80) == [7, 39]
    assert fit_widths(rows, 2, 30) == [7, 21]
    assert fit_widths(rows, 2, 10) == [7, 6]  # as narrow as whole words allow: still wider


def test_a_table_wider_than_the_terminal_is_fitted_with_its_cells_wrapped() -> None:
    """A wide table at 50 columns: no line past 50, every word whole, the widest column
    narrowed, its wrapped cell going on under its own column."""
    markdown = (
        "| command | what it does |\n|---|---|\n"
        "| `permissions NAME MODE` | Change what a running agent may do without asking. |\n"
        "| `ps` | List the agents. |\n"
    )
    text = to_plain(markdown, width=50)
    lines = text.splitlines()
    assert max(map(len, lines)) <= 50
    assert sorted(_words(text)) == sorted(_words(to_plain(markdown)))
    assert lines[2].startswith("permissions NAME MODE  Change what")
    assert lines[3].startswith(" " * 23) and lines[3].strip()  # the cell goes on below
    assert lines[-1].startswith("ps ")


def test_prose_wraps_between_words_and_code_is_left_alone() -> None:
    """Paragraphs, list items and quotes wrap at the width (list items under their text);
    a code block keeps its long line."""
    long = "word " * 20
    code = "x" * 60
    text = to_plain(f"{long}\n\n- {long}\n\n> {long}\n\n```\n{code}\n```", width=30)
    lines = text.splitlines()
    assert all(len(line) <= 30 for line in lines if line != code)
    assert code in lines
    assert any(line.startswith("  word") for line in lines)  # a list item's next line
    assert any(line.startswith("> word") for line in lines[5:])


def test_without_a_width_nothing_is_wrapped() -> None:
    """No width (a pipe): tables keep one row a line, prose its lines."""
    markdown = "| a | b |\n|---|---|\n| " + "x " * 60 + "| y |\n"
    assert len(to_plain(markdown).splitlines()) == 3

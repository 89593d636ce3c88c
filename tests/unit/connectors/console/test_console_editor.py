"""Tests for connectors.console.editor: the keys typed at the terminal made into lines."""

from __future__ import annotations

from connectors.console.editor import Did, Edit, LineEditor


def _lines(editor: LineEditor, data: bytes) -> list[str]:
    return [edit.text for edit in editor.feed(data) if edit.did is Did.ENTERED]


def test_typed_text_comes_in_runs_and_enter_ends_the_line() -> None:
    """Characters typed together are one edit; Enter (CR or LF) hands the line over and
    starts an empty one."""
    editor = LineEditor()
    assert editor.feed(b"ps") == [Edit(Did.TYPED, "ps")]
    assert editor.feed(b"\r") == [Edit(Did.ENTERED, "ps")]
    assert editor.line == ""
    assert _lines(editor, b"whoami\n") == ["whoami"]


def test_a_pasted_crlf_is_one_enter() -> None:
    """CR LF ends one line, not a line and an empty one."""
    assert [e.did for e in LineEditor().feed(b"ps\r\nwhoami\r\n")] == [
        Did.TYPED,
        Did.ENTERED,
        Did.TYPED,
        Did.ENTERED,
    ]


def test_backspace_ctrl_u_and_ctrl_w_edit_the_line() -> None:
    """Backspace takes the last character (with its combining mark), Ctrl-W the last
    word, Ctrl-U the whole line; erasing nothing does nothing."""
    editor = LineEditor()
    editor.feed("spawn démo".encode())
    assert editor.feed(b"\x7f") == [Edit(Did.CHANGED)]
    assert editor.line == "spawn dém"
    editor.feed("e\u0301".encode())
    editor.feed(b"\x08")
    assert editor.line == "spawn dém"
    editor.feed(b"\x17")
    assert editor.line == "spawn "
    editor.feed(b"x  \x17")
    assert editor.line == "spawn "
    editor.feed(b"\x15")
    assert editor.line == ""
    assert editor.feed(b"\x7f\x15\x17") == []


def test_escape_sequences_and_controls_never_reach_the_line() -> None:
    """Arrow keys (CSI and SS3), Alt-x, other controls and a byte that is not UTF-8 are
    swallowed; a tab is a space."""
    editor = LineEditor()
    editor.feed(b"a\x1b[D\x1b[1;5Cb\x1bOAc\x1bxd\x01\x07\xff\te\xe2\x80\xaef")
    assert editor.line == "abcd ef"


def test_ctrl_d_ends_the_input_only_on_an_empty_line() -> None:
    """Ctrl-D on an empty line is the end of input, and nothing after it is read; with
    text typed it does nothing."""
    editor = LineEditor()
    assert editor.feed(b"ps\x04") == [Edit(Did.TYPED, "ps")]
    assert editor.feed(b"\x15\x04whoami\n") == [Edit(Did.CHANGED), Edit(Did.ENDED)]


def test_ctrl_l_clears_the_screen() -> None:
    """Ctrl-L asks for the screen cleared, the line kept."""
    editor = LineEditor()
    assert editor.feed(b"ps\x0c") == [Edit(Did.TYPED, "ps"), Edit(Did.CLEARED)]
    assert editor.line == "ps"


def test_a_character_split_across_reads_is_whole() -> None:
    """A UTF-8 character whose bytes come in two reads is typed once, whole."""
    editor = LineEditor()
    data = "é".encode()
    assert editor.feed(data[:1]) == []
    assert editor.feed(data[1:]) == [Edit(Did.TYPED, "é")]

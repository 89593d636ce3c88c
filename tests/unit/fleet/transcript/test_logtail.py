"""Tests for fleet.transcript.logtail: the end of a log and the lines written since an offset,
bounded in bytes read whatever the file holds (``\\r`` progress bars, huge lines, split UTF-8)."""

from __future__ import annotations

import os
import random
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from fleet.transcript import logtail
from fleet.transcript.logtail import (
    BLOCK,
    MAX_LINE,
    MAX_READ,
    Cursor,
    Line,
    follow,
    read_from,
    size_of,
    tail,
    tail_lines,
)

MB = 1_000_000
LAST_STATE = "downloading 1000000/1000000 [done]"


def progress_bar(size: int) -> bytes:
    """A ``\\r``-only log of about ``size`` bytes: a progress bar that never wrote ``\\n``."""
    updates = [f"downloading {i:>7}/1000000 [{'#' * (i % 20):<20}]\r" for i in range(1, 10**6)]
    body = "".join(updates).encode()
    return body[: max(0, size - len(LAST_STATE) - 1)] + f"\r{LAST_STATE}\r".encode()


@pytest.fixture(scope="session")
def cr_log(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 33 MB log written with ``\\r`` only."""
    path = tmp_path_factory.mktemp("logs") / "progress.log"
    path.write_bytes(progress_bar(33 * MB))
    return path


class ReadCounter:
    """Counts the bytes ``os.pread`` returns, the one way logtail reads a log."""

    def __init__(self) -> None:
        self.bytes = 0
        self.calls = 0
        self._real: Callable[[int, int, int], bytes] = os.pread

    def __call__(self, fd: int, length: int, offset: int) -> bytes:
        data = self._real(fd, length, offset)
        self.bytes += len(data)
        self.calls += 1
        return data


@pytest.fixture
def reads(monkeypatch: pytest.MonkeyPatch) -> Iterator[ReadCounter]:
    counter = ReadCounter()
    monkeypatch.setattr(logtail.os, "pread", counter)
    yield counter


def texts(lines: tuple[Line, ...] | list[Line]) -> list[str]:
    return [line.text for line in lines]


def follow_all(path: Path, cursor: Cursor, **kwargs: int) -> tuple[list[Line], Cursor]:
    """Follow ``path`` to its end as if its run had ended."""
    lines: list[Line] = []
    while True:
        found = follow(path, cursor, final=True, **kwargs)
        lines += found.lines
        cursor = found.cursor
        if not found.more:
            return lines, cursor


# -- what a line is ----------------------------------------------------------------------------


def test_newline_crlf_and_bare_cr_all_end_lines(tmp_path: Path) -> None:
    """\\n, \\r\\n and a bare \\r end lines; a line \\r ended reads as its last state."""
    log = tmp_path / "out.log"
    log.write_bytes(b"one\r\ntwo\nthree\r3 of 3\nfour\r\n\r\nfive")
    assert tail_lines(log, 10) == ["one", "two", "3 of 3", "four", "", "five"]
    lines, _ = follow_all(log, Cursor())
    assert texts(lines) == ["one", "two", "3 of 3", "four", "", "five"]


def test_a_progress_bar_reads_as_its_last_state_with_text(tmp_path: Path) -> None:
    """Of a line rewritten by \\r, the last state with any text is what a terminal showed:
    a trailing \\r or an empty redraw does not blank it."""
    log = tmp_path / "out.log"
    log.write_bytes(b"start\n10%\r50%\r100%\r\ndone\r\r\nend\r")
    assert tail_lines(log, 10) == ["start", "100%", "done", "end"]
    lines, _ = follow_all(log, Cursor())
    assert texts(lines) == ["start", "100%", "done", "end"]


def test_missing_and_empty_logs_have_no_lines(tmp_path: Path) -> None:
    """A log not written yet, or empty, has no lines, and following it stays where it was."""
    missing, empty = tmp_path / "missing.log", tmp_path / "empty.log"
    empty.write_bytes(b"")
    for log in (missing, empty):
        assert tail(log, 40).lines == ()
        assert tail_lines(log, 40) == []
        assert follow(log, Cursor(), final=True).lines == ()
        assert follow(log, Cursor()).cursor == Cursor()
        assert read_from(log, 0) == ""
        assert size_of(log) == 0
    assert tail(missing, 0).lines == ()


# -- bounded reads --------------------------------------------------------------------------------


def test_the_tail_of_a_33_mb_cr_only_log_reads_at_most_the_cap(
    cr_log: Path, reads: ReadCounter
) -> None:
    """A 33 MB progress bar without \\n: its tail is its last state, found by reading at most
    MAX_READ bytes back from the end, in blocks (no quadratic prepends)."""
    found = tail(cr_log, 40)
    assert texts(found.lines) == [LAST_STATE]
    assert found.lines[0].whole
    assert found.capped
    assert found.start == found.size - MAX_READ
    assert reads.bytes == MAX_READ
    assert reads.calls == MAX_READ // BLOCK


def test_a_break_less_log_is_read_up_to_the_cap_and_says_its_line_is_not_whole(
    tmp_path: Path, reads: ReadCounter
) -> None:
    """A log that is one endless line: the tail reads MAX_READ bytes, and its one line says
    it began before them (text from its middle, size a lower bound)."""
    log = tmp_path / "out.log"
    log.write_bytes(b"x" * (12 * MB))
    [line] = tail(log, 40).lines
    assert (line.whole, line.cut, line.size) == (False, True, MAX_READ)
    assert len(line.text) == MAX_LINE
    assert reads.bytes == MAX_READ


def test_the_tail_of_a_log_of_short_lines_reads_only_the_blocks_it_needs(
    tmp_path: Path, reads: ReadCounter
) -> None:
    """40 lines of a 33 MB log of short lines take one 64 KiB block."""
    log = tmp_path / "out.log"
    log.write_bytes(b"".join(b"line %7d\n" % i for i in range(33 * MB // 13)))
    found = tail(log, 40)
    assert texts(found.lines) == [f"line {i:7d}" for i in range(33 * MB // 13 - 40, 33 * MB // 13)]
    assert not found.capped
    assert reads.bytes == BLOCK


def test_a_10_mb_line_is_cut_with_its_true_size(tmp_path: Path, reads: ReadCounter) -> None:
    """A 10 MB line: followed, it is one cut line with its exact size, no call reading more
    than MAX_READ; in a tail reading enough, its exact size too."""
    log = tmp_path / "out.log"
    head = "a" + "é" * (MAX_LINE // 2)  # a two-byte character sits on the cut: left out
    line = (head + "x" * (10 * MB)).encode()
    log.write_bytes(b"before\n" + line + b"\nafter\n")
    followed: list[Line] = []
    cursor = Cursor()
    while True:
        before = reads.bytes
        found = follow(log, cursor)
        assert reads.bytes - before <= MAX_READ
        followed += found.lines
        cursor = found.cursor
        if not found.more:
            break
    assert cursor.offset == log.stat().st_size
    assert texts(followed) == ["before", head[: MAX_LINE // 2], "after"]
    big = followed[1]
    assert (big.size, big.cut, big.whole) == (len(line), True, True)
    [from_tail] = tail(log, 2, max_read=16 * MB).lines[:1]
    assert from_tail == big


def test_a_multibyte_character_split_by_a_block_boundary_is_read_whole(tmp_path: Path) -> None:
    """A UTF-8 character whose bytes straddle the boundary of two blocks read backwards
    decodes whole: blocks are joined before decoding."""
    log = tmp_path / "out.log"
    for pad in range(3):  # 90 000 bytes of three-byte characters: more than a block
        last = "€" * 30_000 + "a" * pad
        data = ("first\n" + last + "\n").encode()
        if data[len(data) - BLOCK] & 0xC0 == 0x80:  # a character's second or third byte
            break
    log.write_bytes(data)
    assert tail_lines(log, 1) == [last]


def test_a_character_on_the_cut_of_a_long_line_is_left_out_not_garbled(tmp_path: Path) -> None:
    """A line cut in the middle of a character ends before it, with no U+FFFD."""
    log = tmp_path / "out.log"
    log.write_bytes(("a" + "€" * 10 + "\n").encode())
    [line] = tail(log, 1, max_line=6).lines
    assert (line.text, line.size, line.cut) == ("a€", 31, True)
    assert read_from(log, 0, limit=6) == "a€"


# -- the follower ---------------------------------------------------------------------------------


def test_a_partial_last_line_is_held_until_its_break_arrives(tmp_path: Path) -> None:
    """A line being written is not returned in pieces: the cursor stays at its start until
    its break arrives, or the run ends."""
    log = tmp_path / "out.log"
    log.write_bytes(b"hel")
    found = follow(log, Cursor())
    assert (found.lines, found.cursor) == ((), Cursor(0))
    with log.open("ab") as fh:
        fh.write(b"lo\nwor")
    found = follow(log, found.cursor)
    assert (texts(found.lines), found.cursor) == (["hello"], Cursor(6))
    assert texts(follow(log, found.cursor).lines) == []
    ended = follow(log, found.cursor, final=True)
    assert (texts(ended.lines), ended.cursor) == (["wor"], Cursor(9))


def test_a_crlf_split_between_two_reads_is_one_break(tmp_path: Path) -> None:
    """A \\r ending what was read may be half of a \\r\\n: it is read again, not taken as a
    line break followed by an empty line."""
    log = tmp_path / "out.log"
    log.write_bytes(b"one\r")
    first = follow(log, Cursor())
    assert first.lines == ()
    with log.open("ab") as fh:
        fh.write(b"\ntwo\r\n")
    assert texts(follow(log, first.cursor).lines) == ["one", "two"]


def test_a_progress_bar_followed_live_shows_its_last_state_once(tmp_path: Path) -> None:
    """Updates of a \\r progress bar read over several polls come out as one line, its last
    state, when the line closes, or when the run ends without closing it."""
    log = tmp_path / "out.log"
    cursor = Cursor()
    seen: list[str] = []
    for chunk in (b"10%\r", b"20%\r30", b"%\r", b"\r", b"\n", b"40%\r50%\r"):
        with log.open("ab") as fh:
            fh.write(chunk)
        found = follow(log, cursor)
        seen += texts(found.lines)
        cursor = found.cursor
    assert seen == ["30%"]
    assert texts(follow(log, cursor, final=True).lines) == ["50%"]


def test_a_line_longer_than_a_call_reads_is_read_past_with_its_size(tmp_path: Path) -> None:
    """A line longer than max_line, written over time: each call reads at most max_read
    bytes, passes over it keeping its head, and returns it once, cut, with its size."""
    log = tmp_path / "out.log"
    cursor = Cursor()
    seen: list[Line] = []
    for _ in range(10):
        with log.open("ab") as fh:
            fh.write(b"0123456789")
        found = follow(log, cursor, max_line=8, max_read=12)
        assert found.cursor.offset - cursor.offset <= 12
        seen += found.lines
        cursor = found.cursor
    with log.open("ab") as fh:
        fh.write(b"!\nnext\n")
    while True:
        found = follow(log, cursor, max_line=8, max_read=12)
        seen += found.lines
        cursor = found.cursor
        if not found.more:
            break
    assert seen == [Line("01234567", 101, cut=True), Line("next", 4)]


def test_a_log_cut_short_is_followed_from_its_new_end(tmp_path: Path) -> None:
    """A log shorter than the cursor (truncated or replaced) is followed from its end."""
    log = tmp_path / "out.log"
    log.write_bytes(b"abc\n")
    assert follow(log, Cursor(100)).cursor == Cursor(4)


def test_the_follower_refuses_a_step_no_longer_than_a_line() -> None:
    """max_read must leave room for a line too long and its break, or a call could stall."""
    with pytest.raises(ValueError, match="max_read"):
        follow(Path("/nonexistent"), Cursor(), max_line=10, max_read=11)


def reference(data: bytes) -> list[str]:
    """The lines of a finished log by the rules, the slow and obvious way."""
    out: list[str] = []
    *closed, rest = data.split(b"\n")
    for line in closed:
        states = [part for part in line.split(b"\r") if part]
        out.append(states[-1].decode("utf-8", "replace") if states else "")
    states = [part for part in rest.split(b"\r") if part]
    if states:
        out.append(states[-1].decode("utf-8", "replace"))
    return out


def test_following_in_any_pieces_and_the_tail_agree_with_the_rules(tmp_path: Path) -> None:
    """Logs of random \\r, \\n, \\r\\n and multibyte text, written and followed in random
    pieces with small limits: the follower and the tail give the lines the rules say."""
    log = tmp_path / "out.log"
    pieces = [b"a", b"b", b"\r", b"\n", b"\r\n", "é".encode(), b"xyz" * 7]
    for trial in range(400):
        rnd = random.Random(trial)
        data = b"".join(rnd.choice(pieces) for _ in range(rnd.randint(0, 60)))
        max_line = rnd.randint(1, 12)
        max_read = max_line + rnd.randint(2, 10)
        log.write_bytes(b"")
        cursor, written = Cursor(), 0
        lines: list[Line] = []
        while written < len(data):
            step = rnd.randint(1, 15)
            with log.open("ab") as fh:
                fh.write(data[written : written + step])
            written += step
            for _ in range(rnd.randint(0, 3)):
                found = follow(log, cursor, max_read=max_read, max_line=max_line)
                lines += found.lines
                cursor = found.cursor
        rest, _ = follow_all(log, cursor, max_read=max_read, max_line=max_line)
        lines += rest
        want = reference(data)
        assert [line.size for line in lines] == [len(w.encode()) for w in want], (trial, data)
        for line, expected in zip(lines, want, strict=True):
            assert line.cut == (len(expected.encode()) > max_line)
            assert expected.startswith(line.text) if line.cut else line.text == expected
        for count in (1, 3, 100):
            assert tail_lines(log, count) == want[-count:], (trial, count)

"""Tests for fleet.runs.output.reader: an agent's log read as events, run by run, as its last
entries and as a live follower."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fleet.runs.layout import append_marker
from fleet.runs.output.reader import (
    LogParser,
    last_entries,
    marker_text,
    read_new,
    started_runtime,
)
from fleet.transcript.events import (
    AgentEvent,
    Malformed,
    Marker,
    Oversized,
    PlainText,
    Said,
    StreamParser,
    Text,
    Unknown,
)
from fleet.transcript.logtail import Cursor, Line

MB = 1_000_000


class JsonLines:
    """A small stateful stream parser: ``{"text": …}`` is Said, ``{"type": …}`` Unknown, a
    line that starts like JSON but is not is Malformed, anything else Text. Numbers what it
    read, so a test sees whether a run got a fresh one."""

    def __init__(self) -> None:
        self.seen = 0

    def feed(self, line: str) -> list[AgentEvent]:
        self.seen += 1
        if not line.startswith("{"):
            return [Text(line)] if line.strip() else []
        try:
            data = json.loads(line)
        except ValueError:
            return [Malformed(line)]
        if "text" in data:
            return [Said(f"{self.seen}: {data['text']}")]
        return [Unknown(str(data.get("type")), line)]


class Broken:
    """A parser that breaks its promise never to raise."""

    def feed(self, line: str) -> list[AgentEvent]:
        raise RuntimeError("parser bug")


class Factory:
    """The parser factory: JsonLines for runtime ``json``, Broken for ``broken``, plain text
    otherwise; remembers which runtimes it was asked for."""

    def __init__(self) -> None:
        self.asked: list[str | None] = []

    def __call__(self, runtime: str | None) -> StreamParser:
        self.asked.append(runtime)
        if runtime == "json":
            return JsonLines()
        if runtime == "broken":
            return Broken()
        return PlainText()


def said(text: str) -> str:
    return json.dumps({"text": text})


def write(log: Path, *lines: str) -> None:
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("a", encoding="utf-8") as fh:
        fh.writelines(line + "\n" for line in lines)


@pytest.fixture
def log(tmp_path: Path) -> Path:
    return tmp_path / "agents" / "c1" / "output.log"


def test_markers_are_read_as_markers() -> None:
    """A marker line says its text; a starting marker names its run's runtime."""
    assert marker_text("--- fleetwarden: c1 starting (claude) ---") == "c1 starting (claude)"
    assert marker_text("c1 starting (claude)") is None
    assert started_runtime("c1 starting (claude)") == "claude"
    assert started_runtime("c1 exited with status 1") is None


def test_each_run_gets_a_fresh_parser_for_its_runtime(log: Path) -> None:
    """Starting markers split the log into runs: each run's lines go to a new parser for the
    runtime its marker names, every marker is a Marker event, and a malformed line is kept
    as raw text and counted."""
    factory = Factory()
    append_marker(log, "c1 starting (json)")
    write(log, said("hi"), '{"text": "cut sho', said("bye"))
    append_marker(log, "c1 exited with status 1")
    append_marker(log, "c1 starting (json)")
    write(log, said("again"))
    append_marker(log, "c1 starting (command)")
    write(log, "plain output", "", '{"text": "not parsed"}')
    found = last_entries(log, 100, factory)
    assert found.events == (
        Marker("c1 starting (json)"),
        Said("1: hi"),
        Malformed('{"text": "cut sho'),
        Said("3: bye"),
        Marker("c1 exited with status 1"),
        Marker("c1 starting (json)"),
        Said("1: again"),
        Marker("c1 starting (command)"),
        Text("plain output"),
        Text('{"text": "not parsed"}'),
    )
    assert factory.asked == ["json", "json", "command"]
    assert (found.malformed, found.oversized, found.start, found.clipped) == (1, 0, 0, False)
    assert found.lines == 11


def test_the_last_entries_are_the_last_n_events(log: Path) -> None:
    """``count`` events, the newest last; lines without events (blank ones) do not count, so
    reading goes further back until it has them."""
    append_marker(log, "c1 starting (json)")
    write(log, *(said(f"line {i}") for i in range(5)))
    write(log, *([""] * 3000))
    factory = Factory()
    found = last_entries(log, 2, factory)
    assert found.events == (Said("4: line 3"), Said("5: line 4"))
    assert found.start == 0  # read back to the log's start to find two entries
    assert last_entries(log, 0, factory).events == ()


def test_unknown_events_are_kept_out_unless_asked_for(log: Path) -> None:
    """Events of types the parser does not know are not entries by default."""
    append_marker(log, "c1 starting (json)")
    write(log, json.dumps({"type": "system"}), said("hi"))
    assert last_entries(log, 10, Factory()).events == (Marker("c1 starting (json)"), Said("2: hi"))
    everything = last_entries(log, 10, Factory(), keep=lambda event: True)
    assert Unknown("system", json.dumps({"type": "system"})) in everything.events


def test_a_parser_that_raises_leaves_its_line_as_malformed(log: Path) -> None:
    """A parser bug does not lose the line nor stop the reading."""
    append_marker(log, "c1 starting (broken)")
    write(log, "something")
    found = last_entries(log, 10, Factory())
    assert found.events == (Marker("c1 starting (broken)"), Malformed("something"))
    assert found.malformed == 1


def test_empty_and_missing_logs_have_no_entries(log: Path) -> None:
    """No log yet, or an empty one: no entries, nothing counted."""
    assert last_entries(log, 10, Factory()).events == ()
    log.parent.mkdir(parents=True)
    log.write_bytes(b"")
    empty = last_entries(log, 10, Factory())
    assert (empty.events, empty.lines, empty.malformed) == ((), 0, 0)


def test_a_10_mb_line_is_an_oversized_entry_with_its_size(log: Path) -> None:
    """A 10 MB line is never given to a parser: it is Oversized, its head and its true size;
    when reading stopped inside it, its size is a lower bound and the transcript says so."""
    append_marker(log, "c1 starting (json)")
    write(log, said("before"), '{"text": "' + "x" * (10 * MB) + '"}', said("after"))
    whole = last_entries(log, 3, Factory(), max_read=16 * MB)
    big = whole.events[1]
    assert isinstance(big, Oversized)
    assert big.size == 10 * MB + 12
    assert big.head.startswith('{"text": "xxx')
    assert (whole.oversized, whole.clipped) == (1, False)
    factory = Factory()
    capped = last_entries(log, 3, factory, max_read=1_000_000, max_line=1000)
    assert capped.clipped
    first = capped.events[0]
    assert isinstance(first, Oversized) and first.size < 10 * MB
    # The run's marker was not read: the factory is asked for an unnamed runtime.
    assert factory.asked == [None]
    assert capped.events[1:] == (Text(said("after")),)


def test_a_33_mb_cr_only_log_is_its_last_state(log: Path) -> None:
    """A progress bar that never wrote \\n: one entry, its last state."""
    log.parent.mkdir(parents=True)
    log.write_bytes(b"".join(b"%7d of 2000000\r" % i for i in range(1, 2_200_001)))
    found = last_entries(log, 10, Factory())
    assert found.events == (Text("2200000 of 2000000"),)
    assert found.start > 0


def test_the_follower_holds_a_partial_line_and_keeps_its_runs_parser(log: Path) -> None:
    """Followed from a launch's offset: a line still being written waits for its break; the
    run's parser is kept between calls; a new run's marker brings a new parser; the end of
    a run lets out what is left."""
    factory = Factory()
    append_marker(log, "c1 starting (json)")
    reader = LogParser(factory, runtime="json")
    cursor = Cursor(log.stat().st_size)
    with log.open("a") as fh:
        fh.write(said("one") + "\n" + '{"text": "tw')
    first = read_new(log, cursor, reader)
    assert first.events == (Said("1: one"),)
    with log.open("a") as fh:
        fh.write('o"}\n')
    second = read_new(log, first.cursor, reader)
    assert second.events == (Said("2: two"),)
    append_marker(log, "c1 exited with status 0")
    append_marker(log, "c1 starting (json)")
    with log.open("a") as fh:
        fh.write(said("three") + "\n" + "no break at the end")
    third = read_new(log, second.cursor, reader)
    assert third.events == (
        Marker("c1 exited with status 0"),
        Marker("c1 starting (json)"),
        Said("1: three"),
    )
    last = read_new(log, third.cursor, reader, final=True)
    assert last.events == (Text("no break at the end"),)
    assert last.cursor.offset == log.stat().st_size
    assert factory.asked == ["json", "json"]
    assert (reader.lines, reader.malformed, reader.oversized) == (6, 0, 0)


def test_the_follower_counts_malformed_and_oversized_lines(log: Path) -> None:
    """The follower's reader counts what it could not parse and what it cut."""
    reader = LogParser(Factory(), runtime="json")
    write(log, "{not json", "x" * 50)
    found = read_new(log, Cursor(), reader, max_line=10, max_read=100)
    assert found.events == (Malformed("{not json"), Oversized("x" * 10, 50))
    assert (reader.malformed, reader.oversized, reader.runtime) == (1, 1, "json")


def test_a_marker_after_output_without_a_break_starts_its_own_line(log: Path) -> None:
    """An agent that ended without a final line break: the marker after its output still
    stands on a line of its own, so the reader sees the run's end."""
    log.parent.mkdir(parents=True)
    log.write_text("last words")
    append_marker(log, "c1 exited with status 0")
    reader = LogParser(Factory())
    found = read_new(log, Cursor(), reader)
    assert found.events == (Text("last words"), Marker("c1 exited with status 0"))
    starting = "--- fleetwarden: c1 starting (json) ---"
    assert reader.feed(Line(starting, len(starting))) == [Marker("c1 starting (json)")]
    assert reader.runtime == "json"

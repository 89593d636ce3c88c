"""Claude Code's stream-json read as events, on streams the pinned CLI really printed
against the fake provider (``tests/fixtures/streams/claude``, see its ``record.py``)."""

from __future__ import annotations

import random
from pathlib import Path

from fleet.runtimes import default_registry
from fleet.transcript.claude import ClaudeStream
from fleet.transcript.events import (
    AgentEvent,
    ErrorKind,
    Malformed,
    PlainText,
    RunEnded,
    Said,
    Text,
    ToolFailed,
    ToolUsed,
    Trouble,
    Unknown,
    Waiting,
)

STREAMS = Path(__file__).parents[3] / "fixtures" / "streams" / "claude"
WORK = "/work-of-the-recording/work"


def read(case: str) -> list[AgentEvent]:
    parser = ClaudeStream()
    return [
        e
        for line in (STREAMS / f"{case}.jsonl").read_text().splitlines()
        for e in parser.feed(line)
    ]


def test_a_plain_answer_is_said_and_the_run_ends_ok() -> None:
    events = read("success")
    assert Said("Hello! All good here.") in events
    [end] = [e for e in events if isinstance(e, RunEnded)]
    assert end.ok and end.turns == 1 and end.result == "Hello! All good here."
    assert end.duration_ms is not None and end.cost_usd is not None


def test_tool_use_names_the_file_and_the_command_and_the_refused_one_waits() -> None:
    events = read("tool_use")
    assert events[:2] == [ToolUsed("Read", f"{WORK}/notes.txt"), ToolUsed("Bash", "rm -rf build")]
    [failed] = [e for e in events if isinstance(e, ToolFailed)]
    assert failed.tool == "Bash" and "was blocked" in failed.error
    assert Said("The notes say: ship on Friday.") in events
    assert Waiting("not allowed to use Bash (rm -rf build)") in events  # permission_denials
    assert next(e for e in events if isinstance(e, RunEnded)).turns == 3


def test_a_failed_tool_is_matched_to_its_call() -> None:
    events = read("tool_failure")
    assert ToolUsed("Read", f"{WORK}/missing.txt") in events
    [failed] = [e for e in events if isinstance(e, ToolFailed)]
    assert failed.tool == "Read" and "does not exist" in failed.error.lower()


def test_not_logged_in_is_an_auth_trouble_with_the_clis_words() -> None:
    events = read("auth_failure")
    assert Trouble(ErrorKind.AUTH, "Not logged in · Please run /login") in events
    [end] = [e for e in events if isinstance(e, RunEnded)]
    assert not end.ok
    # Said once, not again from the failed result.
    assert len([e for e in events if isinstance(e, Trouble)]) == 1


def test_a_cut_stream_ends_in_one_malformed_line_and_no_end() -> None:
    events = read("cut")
    assert isinstance(events[-1], Malformed)
    assert not any(isinstance(e, RunEnded) for e in events)
    assert ToolUsed("Bash", "rm -rf build") in events


def test_unknown_kinds_are_kept_and_other_lines_are_text() -> None:
    parser = ClaudeStream()
    assert parser.feed('{"type":"brand_new","x":1}') == [
        Unknown("brand_new", '{"type":"brand_new","x":1}')
    ]
    assert parser.feed("node: warning: something") == [Text("node: warning: something")]
    assert parser.feed("   ") == []
    assert parser.feed("[1, 2]") == [Text("[1, 2]")]
    assert parser.feed('{"type": "assistant", "message": 7}') != []


def test_no_line_ever_makes_it_raise() -> None:
    rng = random.Random(7)
    lines = [
        line
        for case in ("success", "tool_use", "tool_failure", "auth_failure")
        for line in (STREAMS / f"{case}.jsonl").read_text().splitlines()
    ]
    parser = ClaudeStream()
    for _ in range(3000):
        line = rng.choice(lines)
        cut = rng.randrange(len(line) + 1)
        mangled = (
            line[:cut]
            + rng.choice(["", "}", "\x00", "ü", '"', "{"])
            + line[cut:][: rng.randrange(50)]
        )
        parser.feed(mangled)


def test_the_runtime_reads_its_stream_headless_and_a_screen_as_text() -> None:
    claude = default_registry().get("claude")
    assert isinstance(claude.parser(False), ClaudeStream)
    assert isinstance(claude.parser(True), PlainText)

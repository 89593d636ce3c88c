"""Codex, pi and opencode read as events, on streams the pinned CLIs really printed
against the fake provider (``tests/fixtures/streams``, see its ``record.py``)."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from fleet.runtimes import default_registry
from fleet.transcript.codex import unwrap
from fleet.transcript.events import (
    AgentEvent,
    ErrorKind,
    Malformed,
    PlainText,
    RunEnded,
    Said,
    ToolFailed,
    ToolUsed,
    Trouble,
)

STREAMS = Path(__file__).parents[3] / "fixtures" / "streams"
NOTES = "/work-of-the-recording/work/notes.txt"
MISSING = "/work-of-the-recording/work/missing.txt"
CLIS = ("codex", "pi", "opencode")


def read(cli: str, case: str) -> list[AgentEvent]:
    parser = default_registry().get(cli).parser(False)
    lines = (STREAMS / cli / f"{case}.jsonl").read_text().splitlines()
    return [event for line in lines for event in parser.feed(line)]


def end_of(events: list[AgentEvent]) -> RunEnded:
    ends = [e for e in events if isinstance(e, RunEnded)]
    assert len(ends) == 1, events
    return ends[0]


@pytest.mark.parametrize("cli", CLIS)
def test_a_plain_answer_is_said_and_the_run_ends_ok(cli: str) -> None:
    events = read(cli, "success")
    assert Said("Hello! All good here.") in events
    assert end_of(events).ok


@pytest.mark.parametrize(
    ("cli", "tools"),
    [
        ("codex", [ToolUsed("shell", "cat notes.txt")]),  # Codex's policy refused the rm
        ("pi", [ToolUsed("read", NOTES), ToolUsed("bash", "rm -rf build")]),
        ("opencode", [ToolUsed("read", NOTES), ToolUsed("bash", "rm -rf build")]),
    ],
)
def test_tool_use_names_the_file_and_the_command(cli: str, tools: list[ToolUsed]) -> None:
    events = read(cli, "tool_use")
    assert [e for e in events if isinstance(e, ToolUsed)] == tools
    assert Said("The notes say: ship on Friday.") in events
    assert end_of(events).ok


@pytest.mark.parametrize(
    ("cli", "tool", "words"),
    [
        ("codex", "shell", "No such file or directory"),
        ("pi", "read", "no such file or directory"),
        ("opencode", "read", "File not found"),
    ],
)
def test_a_failed_tool_says_its_error(cli: str, tool: str, words: str) -> None:
    events = read(cli, "tool_failure")
    [failed] = [e for e in events if isinstance(e, ToolFailed)]
    assert failed.tool == tool and words in failed.error
    assert Said("There is no such file.") in events


@pytest.mark.parametrize(
    ("cli", "words"),
    [
        ("codex", "Missing environment variable: `OPENAI_API_KEY`."),
        ("pi", "No API key found for the selected model."),
        ("opencode", "Anthropic API key is missing."),
    ],
)
def test_no_credential_is_one_auth_trouble_in_the_clis_words(cli: str, words: str) -> None:
    events = read(cli, "auth_failure")
    troubles = [e for e in events if isinstance(e, Trouble)]
    assert len(troubles) == 1 and troubles[0].kind is ErrorKind.AUTH
    assert words in troubles[0].reason


@pytest.mark.parametrize("cli", CLIS)
def test_a_cut_stream_ends_in_a_malformed_line_and_no_end(cli: str) -> None:
    events = read(cli, "cut")
    assert isinstance(events[-1], Malformed)
    assert not any(isinstance(e, RunEnded) for e in events)


@pytest.mark.parametrize("cli", CLIS)
def test_no_line_ever_makes_it_raise(cli: str) -> None:
    rng = random.Random(11)
    lines = [
        line
        for case in ("success", "tool_use", "tool_failure", "auth_failure")
        for line in (STREAMS / cli / f"{case}.jsonl").read_text().splitlines()
    ]
    parser = default_registry().get(cli).parser(False)
    for _ in range(2000):
        line = rng.choice(lines)
        cut = rng.randrange(len(line) + 1)
        parser.feed(line[:cut] + rng.choice(["", "}", "\x00", '"', '{"type":1}']) + line[cut:][:40])
    assert parser.feed('{"type":"brand_new"}')[0].type == "brand_new"  # type: ignore[union-attr]


@pytest.mark.parametrize("cli", CLIS)
def test_a_terminal_is_read_as_plain_text(cli: str) -> None:
    assert isinstance(default_registry().get(cli).parser(True), PlainText)


def test_codex_commands_are_shown_without_their_shell_wrapper() -> None:
    assert unwrap("/bin/bash -lc 'cat notes.txt'") == "cat notes.txt"
    assert unwrap('bash -lc "ls -la | head"') == "ls -la | head"
    assert unwrap("git status") == "git status"
    assert unwrap("/bin/bash -lc 'unbalanced") == "/bin/bash -lc 'unbalanced"

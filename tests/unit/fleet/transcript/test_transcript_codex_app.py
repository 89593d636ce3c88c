"""A live Codex session's output (``codex app-server``, recorded from the pinned CLI in
``tests/fixtures/streams/codex/app_server_*.jsonl``) read as the thread's events, and the
session it names."""

from __future__ import annotations

from pathlib import Path

from fleet.runtimes.codex import CodexRuntime
from fleet.transcript.codex import CodexStream
from fleet.transcript.events import AgentEvent, RunEnded, Said, ToolFailed, ToolUsed, Waiting

STREAMS = Path(__file__).parents[3] / "fixtures" / "streams" / "codex"


def text(case: str) -> str:
    return (STREAMS / f"app_server_{case}.jsonl").read_text()


def read(case: str) -> list[AgentEvent]:
    parser = CodexStream()
    return [event for line in text(case).splitlines() for event in parser.feed(line)]


def test_a_live_turn_shows_its_command_its_words_and_its_end() -> None:
    """An asked command shows (unwrapped), then that it waits, the agent's words, and the
    turn's end; nothing else (deltas, usage, answers) is shown."""
    *shown, end = read("command")
    assert shown == [
        ToolUsed("shell", "touch made.txt"),
        Waiting("approval to run a command"),
        Said("made it"),
    ]
    assert isinstance(end, RunEnded) and (end.ok, end.turns) == (True, 1)
    assert end.duration_ms is not None


def test_a_declined_edit_shows_as_declined() -> None:
    """A denied edit shows its file, then that it was declined."""
    events = read("edit_denied")
    assert ToolUsed("edit", "/work-of-the-recording/work/hello.txt") in events
    assert ToolFailed("edit", "declined") in events
    assert isinstance(events[-1], RunEnded) and events[-1].ok


def test_an_interrupted_turn_ends_as_interrupted() -> None:
    """An interrupted turn ends not ok, saying it was interrupted."""
    end = read("interrupted")[-1]
    assert isinstance(end, RunEnded)
    assert (end.ok, end.result) == (False, "interrupted")


def test_the_session_is_the_thread_codex_started() -> None:
    """The session id of a live run is the thread ``thread/started`` names."""
    session = CodexRuntime().session_id(text("command"))
    assert session is not None and session.startswith("01a2")
    assert f'"thread":{{"id":"{session}"' in text("command")

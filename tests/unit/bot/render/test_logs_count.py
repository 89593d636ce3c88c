"""``logs NAME``: the count in its first line is the count of the entries it shows."""

from __future__ import annotations

import json
from pathlib import Path

from bot.render.agents.transcript import lately
from connectors.markdown import to_plain
from fleet.runs.output.reader import last_entries
from fleet.runtimes import default_registry


def _claude_log(path: Path) -> None:
    """A Claude run's log: the starting marker, two messages, a tool, a message with no
    words, and the result event (which carries no turn count)."""
    events = [
        {"type": "assistant", "message": {"content": [{"type": "text", "text": "Counting."}]}},
        {
            "type": "assistant",
            "message": {"content": [{"type": "tool_use", "id": "t1", "name": "Bash", "input": {}}]},
        },
        {"type": "assistant", "message": {"content": [{"type": "text", "text": "1, 2, 3"}]}},
        {"type": "assistant", "message": {"content": [{"type": "text", "text": "   "}]}},
        {"type": "result", "subtype": "success", "result": "1, 2, 3"},
    ]
    lines = ["--- fleetwarden: coder starting (claude) ---", *map(json.dumps, events)]
    path.write_text("\n".join(lines) + "\n")


def test_the_count_is_of_what_is_shown_not_of_what_was_read(tmp_path: Path) -> None:
    """An event a transcript does not show (a result with no turn count) is not counted:
    the header says 4 entries and 4 lines follow."""
    log = tmp_path / "output.log"
    _claude_log(log)
    registry = default_registry()
    read = last_entries(log, 40, lambda runtime: registry.get(runtime or "claude").parser(False))
    answer = lately("coder", read.events, 40, read.malformed)
    head, _, body = answer.partition("\n\n")
    assert head == "What **coder** did lately (4 entries):"
    shown = [line for line in to_plain(body).splitlines() if line.strip("> ").strip()]
    assert len(shown) == 4, shown


def test_a_stub_run_shows_as_many_lines_as_it_counts(tmp_path: Path) -> None:
    """The stub's plain lines and the markers around them: each counted once."""
    log = tmp_path / "output.log"
    log.write_text(
        "--- fleetwarden: demo starting (stub) ---\nstub: started\nstub: 1\nstub: done\n"
        "--- fleetwarden: demo exited with status 0 ---\n"
    )
    registry = default_registry()
    read = last_entries(log, 3, lambda runtime: registry.get(runtime or "stub").parser(False))
    answer = lately("demo", read.events, 3, read.malformed)
    head, _, body = answer.partition("\n\n")
    assert head == "What **demo** did lately (3 entries; `logs demo --lines N` for more):"
    assert len([line for line in to_plain(body).splitlines() if line.strip("> ").strip()]) == 3


def test_nothing_shown_is_said_so(tmp_path: Path) -> None:
    """A log whose only entry is one a transcript does not show reads as nothing yet."""
    log = tmp_path / "output.log"
    log.write_text(json.dumps({"type": "result", "subtype": "success"}) + "\n")
    registry = default_registry()
    read = last_entries(log, 40, lambda runtime: registry.get("claude").parser(False))
    assert lately("coder", read.events, 40, 0).startswith("**coder** has done nothing readable")

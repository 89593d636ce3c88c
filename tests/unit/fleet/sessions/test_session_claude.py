"""The ``claude-stream`` protocol, pure: lines in, effects out, shaped as Claude Code 2.1.197
wrote and read them (see fleet/sessions/claude.py)."""

from __future__ import annotations

import itertools
import json
from collections.abc import Sequence
from typing import Any

from fleet.approvals.binding import shown_digest
from fleet.ledger.records.approvals import AskKind, Decision
from fleet.model import PermissionMode
from fleet.sessions.base import Alive, Asked, Closing, Effect, TurnEnded, Withdrawn, Write
from fleet.sessions.claude import ClaudeStream, answers, describe

RESULT = json.dumps({"type": "result", "subtype": "success", "result": "done"})


def stream(mode: PermissionMode = PermissionMode.EDITS) -> ClaudeStream:
    counter = itertools.count(1)
    return ClaudeStream(mode, ids=lambda: f"fw-{next(counter)}")


def written(effects: Sequence[Effect]) -> list[dict[str, Any]]:
    return [json.loads(e.line) for e in effects if isinstance(e, Write)]


def can_use_tool(native: str, tool: str, tool_input: dict[str, Any]) -> str:
    request = {"subtype": "can_use_tool", "tool_name": tool, "input": tool_input}
    return json.dumps({"type": "control_request", "request_id": native, "request": request})


def answer(
    proto: ClaudeStream, asked: Effect, decision: Decision, reason: str | None = None
) -> Sequence[Effect]:
    """``proto``'s answer to the ask ``asked`` carried, bound to what it asked."""
    assert isinstance(asked, Asked)
    return proto.answer(asked.ask.native_id, decision, reason, digest=shown_digest(asked.ask))


def test_turns_are_written_one_at_a_time_in_order() -> None:
    """The first turn goes in at once; turns sent while it runs wait, each written after the
    previous one's result, in order; the last result ends the session."""
    proto = stream()
    assert written(proto.opening("one")) == [
        {"type": "user", "message": {"role": "user", "content": "one"}}
    ]
    assert proto.busy
    assert proto.turn("two") == [] and proto.turn("three") == []
    after_one = proto.feed(RESULT)
    assert isinstance(after_one[0], TurnEnded)
    assert [w["message"]["content"] for w in written(after_one)] == ["two"]
    assert [w["message"]["content"] for w in written(proto.feed(RESULT))] == ["three"]
    last = proto.feed(RESULT)
    assert any(isinstance(e, Closing) for e in last)
    assert written(last) == [
        {"type": "control_request", "request_id": "fw-1", "request": {"subtype": "end_session"}}
    ]
    assert proto.turn("too late") == []  # the process is ending: never written to it


def test_no_prompt_waits_and_an_interrupted_turn_keeps_the_process() -> None:
    """Without a prompt the session waits; an interrupted turn ends without ending the
    process, which waits for the next turn."""
    proto = stream()
    assert proto.opening(None) == [Alive("waiting")]
    assert proto.interrupt() == []  # nothing to interrupt
    proto.turn("work")
    assert written(proto.interrupt()) == [
        {"type": "control_request", "request_id": "fw-1", "request": {"subtype": "interrupt"}}
    ]
    ended = proto.feed(json.dumps({"type": "result", "subtype": "error_during_execution"}))
    assert ended == [TurnEnded(), Alive("waiting")]
    assert written(proto.turn("next"))[0]["message"]["content"] == "next"


def test_an_ask_and_its_answers() -> None:
    """can_use_tool becomes an Ask; allow sends the original input back, always adds the
    session rule, deny carries the operator's reason; an answer is given once."""
    proto = stream()
    proto.opening("go")
    (asked,) = proto.feed(can_use_tool("r1", "Bash", {"command": "npm test", "description": "t"}))
    assert isinstance(asked, Asked)
    assert (asked.ask.native_id, asked.ask.tool, asked.ask.subject) == ("r1", "Bash", "npm test")
    assert asked.ask.pattern == "Bash(npm test)"
    (reply,) = written(answer(proto, asked, Decision.ALWAYS))
    assert reply["response"] == {
        "subtype": "success",
        "request_id": "r1",
        "response": {
            "behavior": "allow",
            "updatedInput": {"command": "npm test", "description": "t"},
            "updatedPermissions": [
                {
                    "type": "addRules",
                    "rules": [{"toolName": "Bash", "ruleContent": "npm test"}],
                    "behavior": "allow",
                    "destination": "session",
                }
            ],
        },
    }
    assert answer(proto, asked, Decision.ALLOW) == []  # answered already
    (write,) = proto.feed(can_use_tool("r2", "Write", {"file_path": "/w/a.txt", "content": "x"}))
    (deny,) = written(answer(proto, write, Decision.DENY, "not now"))
    assert deny["response"]["response"] == {
        "behavior": "deny",
        "message": "The operator denied this: not now",
    }


def test_a_withdrawn_ask_and_an_answer_read_back_after_a_restart() -> None:
    """A cancel request withdraws the ask; an answer echoed in the log (read again after a
    restart) is not given twice."""
    proto = stream()
    (asked,) = proto.feed(can_use_tool("r1", "Bash", {"command": "rm -rf build"}))
    cancel = json.dumps({"type": "control_cancel_request", "request_id": "r1"})
    (withdrawn,) = proto.feed(cancel)
    assert isinstance(withdrawn, Withdrawn) and withdrawn.native_id == "r1"
    assert answer(proto, asked, Decision.ALLOW) == []
    (again,) = proto.feed(can_use_tool("r2", "Bash", {"command": "ls"}))
    echo = {"subtype": "success", "request_id": "r2", "response": {"behavior": "allow"}}
    assert proto.feed(json.dumps({"type": "control_response", "response": echo})) == []
    assert answer(proto, again, Decision.ALLOW) == []


def test_an_answer_goes_only_to_the_ask_it_was_given_for() -> None:
    """`ls` asked as call_0, withdrawn, then `rm -rf ~` asked as call_0: the allow given
    for `ls` writes nothing; the answer given for `rm -rf ~` is written, with its input."""
    proto = stream()
    (first,) = proto.feed(can_use_tool("call_0", "Bash", {"command": "ls"}))
    proto.feed(json.dumps({"type": "control_cancel_request", "request_id": "call_0"}))
    (second,) = proto.feed(can_use_tool("call_0", "Bash", {"command": "rm -rf ~"}))
    assert answer(proto, first, Decision.ALLOW) == []
    (reply,) = written(answer(proto, second, Decision.ALLOW))
    assert reply["response"]["response"]["updatedInput"] == {"command": "rm -rf ~"}
    assert answer(proto, second, Decision.ALLOW) == []  # answered once


def test_a_question_is_asked_and_its_answer_goes_back_as_answers() -> None:
    """AskUserQuestion is a question; the reply's text becomes updatedInput.answers."""
    question = {"question": "Which color?", "header": "Color", "options": [{"label": "red"}]}
    tool_input = {"questions": [question]}
    proto = stream()
    (asked,) = proto.feed(can_use_tool("q1", "AskUserQuestion", tool_input))
    assert isinstance(asked, Asked)
    assert asked.ask.kind is AskKind.QUESTION and asked.ask.subject == "Which color?"
    assert "red" in asked.ask.detail and asked.ask.pattern is None
    (reply,) = written(answer(proto, asked, Decision.ALLOW, "blue"))
    updated = reply["response"]["response"]["updatedInput"]
    assert updated == {**tool_input, "answers": {"Which color?": "blue"}}
    two = {"questions": [{"question": "A?"}, {"question": "B?"}]}
    assert answers(two, "yes\nno") == {"A?": "yes", "B?": "no"}
    assert answers(two, "both") == {"A?": "both", "B?": "both"}


def test_what_an_ask_shows() -> None:
    """An edit shows a short diff, a write the head of its content, a command its line;
    a command that cannot be a rule gets no pattern (always then allows once)."""
    edit = describe(
        "e", "Edit", {"file_path": "/w/f.py", "old_string": "a = 1", "new_string": "a = 2"}
    )
    assert edit.subject == "/w/f.py" and edit.pattern == "Edit"
    assert "-a = 1" in edit.detail and "+a = 2" in edit.detail
    content = "\n".join(f"line {n}" for n in range(100))
    write = describe("w", "Write", {"file_path": "/w/big.txt", "content": content})
    assert write.detail.startswith("line 0") and "line 99" not in write.detail
    assert describe("b", "Bash", {"command": "echo $(date)"}).pattern is None
    assert describe("m", "MultiEdit", {"file_path": "/w/f", "edits": []}).pattern == "Edit"


def test_modes_in_band() -> None:
    """A mode change is a set_permission_mode request; to or from full it cannot be."""
    proto = stream(PermissionMode.ASK)
    (change,) = written(proto.set_mode(PermissionMode.EDITS) or [])
    assert change["request"] == {"subtype": "set_permission_mode", "mode": "acceptEdits"}
    assert proto.set_mode(PermissionMode.FULL) is None
    assert stream(PermissionMode.FULL).set_mode(PermissionMode.EDITS) is None


def test_lines_that_are_not_the_protocol_are_ignored() -> None:
    """Warnings, markers and broken JSON mean nothing; output lines say it is working."""
    proto = stream()
    for line in ("", "warning: something", "{not json", "[1, 2]", "── fleetwarden: x"):
        assert proto.feed(line) == []
    assistant = json.dumps({"type": "assistant", "message": {"content": []}})
    assert proto.feed(assistant) == [Alive("working")]

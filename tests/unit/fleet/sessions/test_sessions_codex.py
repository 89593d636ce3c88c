"""The ``codex-app-server`` protocol read from what the pinned ``codex app-server`` really
wrote (``tests/fixtures/streams/codex/app_server_*.jsonl``, see
``record_codex_app_server.py``) and from lines of the same shapes."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import pytest

from fleet.approvals.binding import shown_digest
from fleet.ledger.records.approvals import Decision
from fleet.model import PermissionMode
from fleet.sessions.base import Alive, Asked, Effect, TurnEnded, Withdrawn, Write
from fleet.sessions.codex import MAX_RETRIES, CodexAppServer

STREAMS = Path(__file__).parents[3] / "fixtures" / "streams" / "codex"
CWD = "/work-of-the-recording/work"


def recorded(name: str) -> list[str]:
    return (STREAMS / f"app_server_{name}.jsonl").read_text().splitlines()


def fresh(mode: PermissionMode = PermissionMode.ASK, **rules: Any) -> CodexAppServer:
    return CodexAppServer(CWD, mode, token=lambda: "t", **rules)


def writes(effects: Iterable[Effect]) -> list[dict[str, Any]]:
    return [json.loads(e.line) for e in effects if isinstance(e, Write)]


def feed_all(live: CodexAppServer, lines: Iterable[str]) -> list[Effect]:
    out: list[Effect] = []
    for line in lines:
        out.extend(live.feed(line))
    return out


def asks(effects: Sequence[Effect]) -> list[Asked]:
    return [e for e in effects if isinstance(e, Asked)]


def answer(
    live: CodexAppServer, asked: Asked, decision: Decision, reason: str | None = None
) -> list[Effect]:
    """``live``'s answer to ``asked``, bound to what it asked."""
    digest = shown_digest(asked.ask)
    return list(live.answer(asked.ask.native_id, decision, reason, digest=digest))


def up_to(lines: list[str], needle: str) -> tuple[list[str], list[str]]:
    """The lines up to and including the first holding ``needle``, and the rest."""
    at = next(i for i, line in enumerate(lines) if needle in line)
    return lines[: at + 1], lines[at + 1 :]


def turn_of(lines: list[str]) -> str:
    for line in lines:
        if '"method":"turn/started"' in line:
            return str(json.loads(line)["params"]["turn"]["id"])
    raise AssertionError("no turn/started")


def test_opening_shakes_hands_and_starts_the_thread() -> None:
    """The opening is initialize, initialized and thread/start with the workdir, the
    mode's approval policy and the sandbox; the prompt waits for the thread."""
    live = CodexAppServer(CWD, PermissionMode.EDITS, model="gpt-5.5", token=lambda: "t")
    sent = writes(live.opening("do it"))
    assert [m["method"] for m in sent] == ["initialize", "initialized", "thread/start"]
    assert sent[0]["id"] == "fw-t-1" and "id" not in sent[1]
    assert sent[2]["params"] == {
        "cwd": CWD,
        "approvalPolicy": "untrusted",
        "sandbox": "danger-full-access",
        "model": "gpt-5.5",
    }
    assert live.busy


def test_the_prompt_starts_a_turn_once_codex_names_the_thread() -> None:
    """At thread/started the queued prompt becomes turn/start on that thread."""
    live = fresh()
    live.opening("do it")
    before, _ = up_to(recorded("command"), '"method":"thread/started"')
    sent = writes(feed_all(live, before))
    thread = json.loads(before[-1])["params"]["thread"]["id"]
    assert live.thread == thread
    assert [m["method"] for m in sent] == ["turn/start"]
    assert sent[0]["params"]["threadId"] == thread
    assert sent[0]["params"]["input"] == [{"type": "text", "text": "do it", "text_elements": []}]


def test_a_recorded_command_ask_and_its_allow() -> None:
    """Codex's command approval request is an ask with the unwrapped command line; allow
    answers ``accept`` under Codex's own (integer) id; the turn then ends."""
    live = fresh()
    live.opening("do it")
    before, after = up_to(recorded("command"), "requestApproval")
    (asked,) = asks(feed_all(live, before))
    assert asked.ask.native_id == "0"
    assert (asked.ask.tool, asked.ask.subject) == ("commandExecution", "touch made.txt")
    assert writes(answer(live, asked, Decision.ALLOW)) == [
        {"id": 0, "result": {"decision": "accept"}}
    ]
    assert answer(live, asked, Decision.ALLOW) == []  # answered once
    rest = feed_all(live, after)
    assert TurnEnded() in rest and not asks(rest)
    assert not any(isinstance(e, Withdrawn) for e in rest)
    assert not live.busy and rest[-1] == Alive("waiting")


def test_a_recorded_edit_ask_denied_with_a_reason() -> None:
    """An edit's ask names its file and shows its diff; a deny with a reason steers the
    turn with the reason, then declines."""
    live = fresh()
    live.opening("do it")
    lines = recorded("edit_denied")
    before, _ = up_to(lines, "requestApproval")
    (asked,) = asks(feed_all(live, before))
    assert (asked.ask.tool, asked.ask.subject, asked.ask.pattern) == (
        "fileChange",
        "hello.txt",
        "Edit",
    )
    assert asked.ask.detail == "hello.txt (add)\nhello"
    steer, decline = writes(answer(live, asked, Decision.DENY, "not that file"))
    assert steer["method"] == "turn/steer"
    assert steer["params"]["expectedTurnId"] == turn_of(lines)
    assert steer["params"]["input"][0]["text"] == "The operator denied `hello.txt`: not that file"
    assert decline == {"id": 0, "result": {"decision": "decline"}}


def test_always_accepts_for_the_session() -> None:
    """``always`` answers ``acceptForSession``; a deny without a reason only declines."""
    live = fresh()
    live.opening("do it")
    before, _ = up_to(recorded("command"), "requestApproval")
    (asked,) = asks(feed_all(live, before))
    assert writes(answer(live, asked, Decision.ALWAYS))[0]["result"] == {
        "decision": "acceptForSession"
    }
    live = fresh()
    live.opening("do it")
    feed_all(live, before)
    assert writes(answer(live, asked, Decision.DENY)) == [
        {"id": 0, "result": {"decision": "decline"}}
    ]


def test_a_recorded_interrupt() -> None:
    """interrupt() names the thread and the running turn; the turn then ends."""
    live = fresh()
    live.opening("do it")
    lines = recorded("interrupted")
    before, after = up_to(lines, '"method":"turn/started"')
    feed_all(live, before)
    (sent,) = writes(live.interrupt())
    assert sent["method"] == "turn/interrupt"
    assert sent["params"] == {"threadId": live.thread, "turnId": turn_of(lines)}
    assert TurnEnded() in feed_all(live, after)
    assert live.interrupt() == []  # nothing runs


def test_sends_are_queued_then_steered_then_started_in_order() -> None:
    """Before Codex names the turn a send waits; at turn/started it steers the turn; a send
    while idle starts the next turn."""
    live = fresh()
    live.opening("do it")
    lines = recorded("command")
    before, after = up_to(lines, '"method":"turn/started"')
    head, _ = up_to(lines, '"method":"thread/started"')
    feed_all(live, head)
    assert live.turn("second") == []
    sent = writes(feed_all(live, before[len(head) :]))
    assert [m["method"] for m in sent] == ["turn/steer"]
    assert sent[0]["params"]["input"][0]["text"] == "second"
    (steer,) = writes(live.turn("third"))
    assert steer["method"] == "turn/steer"
    feed_all(live, after)
    (start,) = writes(live.turn("fourth"))
    assert start["method"] == "turn/start"


def test_a_steer_too_late_starts_a_turn_of_its_own() -> None:
    """A steer refused because the turn ended ("no active turn to steer") is sent again as
    a turn of its own."""
    live = fresh()
    live.opening(None)
    feed_all(live, up_to(recorded("command"), '"method":"turn/started"')[0])
    (steer,) = writes(live.turn("late words"))
    error = {"code": -32600, "message": "no active turn to steer"}
    feed_all(live, [json.dumps({"method": "turn/completed", "params": {"turn": {}}})])
    (start,) = writes(live.feed(json.dumps({"id": steer["id"], "error": error})))
    assert start["method"] == "turn/start"
    assert start["params"]["input"][0]["text"] == "late words"


def test_an_overloaded_server_is_asked_again() -> None:
    """Error -32001 (overloaded) sends the same request again, a few times; then the turn
    is given up."""
    live = fresh()
    live.opening(None)
    feed_all(live, up_to(recorded("command"), '"method":"thread/started"')[0])
    (start,) = writes(live.turn("hello"))
    for _ in range(MAX_RETRIES - 1):
        busy = {"code": -32001, "message": "Server overloaded; retry later."}
        (again,) = writes(live.feed(json.dumps({"id": start["id"], "error": busy})))
        assert (again["method"], again["params"]) == (start["method"], start["params"])
        assert again["id"] != start["id"]
        start = again
    gave_up = live.feed(json.dumps({"id": start["id"], "error": busy}))
    assert TurnEnded() in gave_up and not live.busy


def test_an_unanswered_ask_is_withdrawn_when_codex_resolves_it() -> None:
    """serverRequest/resolved for an ask nobody answered (the turn was interrupted)
    withdraws it; an unknown server request is refused so the turn goes on."""
    live = fresh()
    live.opening("do it")
    before, _ = up_to(recorded("command"), "requestApproval")
    (asked,) = asks(feed_all(live, before))
    resolved = {"method": "serverRequest/resolved", "params": {"requestId": 0}}
    (withdrawn,) = live.feed(json.dumps(resolved))
    assert isinstance(withdrawn, Withdrawn) and withdrawn.native_id == "0"
    assert answer(live, asked, Decision.ALLOW) == []
    (refused,) = writes(live.feed(json.dumps({"method": "item/tool/call", "id": 7, "params": {}})))
    assert refused["id"] == 7 and refused["error"]["code"] == -32601


def test_an_answer_goes_only_to_the_ask_it_was_given_for() -> None:
    """Id 4 answered for `ls`; id 4 asked again for `rm -rf ~`: the allow given for `ls`
    writes nothing more, the new ask is Codex's to be answered (and withdrawn) anew."""
    live = fresh()
    (first,) = asks(live.feed(_command_line("ls")))
    assert writes(answer(live, first, Decision.ALLOW))[0]["result"] == {"decision": "accept"}
    (second,) = asks(live.feed(_command_line("rm -rf ~")))
    assert second.ask.subject == "rm -rf ~"
    assert answer(live, first, Decision.ALLOW) == []
    resolved = {"method": "serverRequest/resolved", "params": {"requestId": 4}}
    assert live.feed(json.dumps(resolved)) == [
        Withdrawn("4", "Codex withdrew the request (its turn ended)")
    ]
    assert answer(live, second, Decision.ALLOW) == []


def test_a_reused_id_is_answered_by_the_rules_again() -> None:
    """An id answered once and asked again for what the mode declines is declined again."""
    live = fresh(PermissionMode.READ_ONLY)
    for _ in range(2):
        decided = writes(live.feed(_command_line("touch a.txt")))
        assert decided[-1] == {"id": 4, "result": {"decision": "decline"}}


def _edit_lines(path: str) -> list[str]:
    item = {"type": "fileChange", "id": "call_1", "changes": [{"path": path, "diff": "x\n"}]}
    started = {"method": "item/started", "params": {"item": item, "turnId": "turn-1"}}
    ask = {"method": "item/fileChange/requestApproval", "id": 3, "params": {"itemId": "call_1"}}
    return [json.dumps(started), json.dumps(ask)]


def _command_line(command: str) -> str:
    params = {"command": f"/bin/bash -lc '{command}'", "turnId": "turn-1", "itemId": "c"}
    return json.dumps(
        {"method": "item/commandExecution/requestApproval", "id": 4, "params": params}
    )


@pytest.mark.parametrize(
    ("path", "unasked"), [(f"{CWD}/src/a.py", True), ("/etc/passwd", False), (f"{CWD}/../x", False)]
)
def test_edits_mode_accepts_edits_inside_the_workdir(path: str, unasked: bool) -> None:
    """With ``edits`` an edit whose files all lie in the workdir is accepted unasked;
    one outside it is asked."""
    live = fresh(PermissionMode.EDITS)
    effects = feed_all(live, _edit_lines(path))
    if unasked:
        assert writes(effects) == [{"id": 3, "result": {"decision": "accept"}}]
        assert not asks(effects)
    else:
        assert len(asks(effects)) == 1 and not writes(effects)


def test_rules_and_read_only_answer_without_asking() -> None:
    """A deny rule declines (the model hears the rule), an allow rule accepts, read-only
    declines everything; none of them asks."""
    live = fresh(deny=("Bash(rm *)",), allow=("Bash(make test)",))
    denied = live.feed(_command_line("rm -rf build"))
    steer, decline = writes(denied)
    assert "Bash(rm *)" in steer["params"]["input"][0]["text"]
    assert decline["result"] == {"decision": "decline"} and not asks(denied)
    live = fresh(allow=("Bash(make test)",))
    assert writes(live.feed(_command_line("make test")))[0]["result"] == {"decision": "accept"}
    live = fresh(PermissionMode.READ_ONLY)
    effects = feed_all(live, _edit_lines(f"{CWD}/a.py"))
    assert writes(effects)[-1]["result"] == {"decision": "decline"} and not asks(effects)


def test_other_lines_are_ignored() -> None:
    """Codex's log lines on stderr, non-objects and answers to nothing mean nothing."""
    live = fresh()
    for line in ("\x1b[2m2026 ERROR codex_core\x1b[0m", "[1,2]", "{bad", '{"id":"x","result":{}}'):
        assert live.feed(line) == []


def _read_line(command: str, path: str) -> str:
    action = {"type": "read", "command": command, "name": Path(path).name, "path": path}
    params = {
        "command": f"/bin/bash -lc '{command}'",
        "commandActions": [action],
        "turnId": "turn-1",
        "itemId": "c",
    }
    return json.dumps(
        {"method": "item/commandExecution/requestApproval", "id": 5, "params": params}
    )


@pytest.mark.parametrize(
    ("command", "path", "mode", "verdict"),
    [
        ("cat notes.txt", f"{CWD}/notes.txt", PermissionMode.EDITS, "accept"),
        ("cat notes.txt", f"{CWD}/notes.txt", PermissionMode.READ_ONLY, "accept"),
        ("cat notes.txt", f"{CWD}/notes.txt", PermissionMode.ASK, None),
        ("cat /etc/shadow", "/etc/shadow", PermissionMode.EDITS, None),
        ("cat notes.txt > x", f"{CWD}/notes.txt", PermissionMode.EDITS, None),
        ("cat $(rm -rf a)", f"{CWD}/notes.txt", PermissionMode.READ_ONLY, "decline"),
        # Codex calls these reads or searches; each runs a program.
        ("rg --pre sh zzz payload.sh", f"{CWD}/payload.sh", PermissionMode.EDITS, None),
        ("find . -exec sh {} \\;", CWD, PermissionMode.EDITS, None),
        ("git -c core.pager=sh log", CWD, PermissionMode.EDITS, None),
        ("rg foo", CWD, PermissionMode.EDITS, "accept"),
        ("ls", CWD, PermissionMode.EDITS, "accept"),
    ],
)
def test_commands_that_only_read_the_workdir_pass_in_edits_and_read_only(
    command: str, path: str, mode: PermissionMode, verdict: str | None
) -> None:
    """A command on Fleetwarden's reading list, reading inside the workdir, passes unasked
    in ``edits`` and ``read-only``; ``ask`` asks it; anything else, whatever Codex calls it,
    is asked (``edits``) or declined (``read-only``)."""
    effects = fresh(mode).feed(_read_line(command, path))
    decided = [m["result"]["decision"] for m in writes(effects) if "result" in m]
    assert (decided[0] if decided else None) == verdict
    assert bool(asks(effects)) is (verdict is None)


def test_modes_sharing_codex_policy_change_in_band_full_does_not() -> None:
    """``ask`` → ``edits`` changes at once (an edit in the workdir is then accepted);
    to or from ``full`` waits for the next run."""
    live = fresh(PermissionMode.ASK)
    assert live.set_mode(PermissionMode.EDITS) == []
    assert writes(feed_all(live, _edit_lines(f"{CWD}/a.py")))[0]["result"]["decision"] == "accept"
    assert live.set_mode(PermissionMode.FULL) is None
    assert fresh(PermissionMode.FULL).set_mode(PermissionMode.ASK) is None

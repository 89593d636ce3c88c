"""Claude Code's stream-json control protocol (``claude-stream``), without I/O.

Claude Code runs as ``claude -p --input-format stream-json --output-format stream-json
--verbose --replay-user-messages --permission-prompt-tool stdio --permission-mode M``. One
process serves every turn; measured on 2.1.197:

* a turn is ``{"type":"user","message":{"role":"user","content":TEXT}}`` on stdin; each
  turn starts with a ``system``/``init`` line and ends with a ``result`` line. A user line
  written while a turn runs is not a turn of its own: Claude Code folds it into the running
  turn ("The user sent a new message while you were working"). So turns are queued here and
  written one by one, each after the previous ``result``;
* ``--replay-user-messages`` echoes on stdout every user line and every
  ``control_response`` written to stdin: the log then holds the whole conversation, and
  replaying it after a restart tells which asks were answered already;
* a tool call no rule or mode decides arrives as ``control_request`` /
  ``can_use_tool`` (``tool_name``, ``input``); it is answered with a ``control_response``
  ``{"behavior":"allow","updatedInput":INPUT}`` (the input is required: the original when
  nothing changes) or ``{"behavior":"deny","message":WHY}`` (the model sees ``WHY`` as the
  tool's error result). ``AskUserQuestion`` arrives the same way; its answer goes back as
  ``updatedInput.answers`` (question → answer);
* ``control_request`` ``interrupt`` ends the turn and keeps the process: a pending ask is
  withdrawn first (``control_cancel_request``), then the turn's ``result`` is
  ``error_during_execution``;
* ``control_request`` ``set_permission_mode`` is answered ``{"mode": M}``; to
  ``bypassPermissions`` it is refused unless the process was launched so;
* ``control_request`` ``end_session`` ends the process with status 0;
* a call of an MCP tool arrives as ``can_use_tool`` too, ``tool_name``
  ``mcp__<server>__<tool>``, in every mode but ``bypassPermissions``. For a server the
  agent is granted it is allowed here at once: the MCP door asks about it
  (:mod:`fleet.mcp.asking`, the agent's rules and chat), seeing the call as relayed, so it
  is never asked twice. A server the agent is not granted is asked like any tool.

A turn that ends with no other queued ends the process (``end_session``), as a headless
run ends once its work is done: the run's summary follows, and a later ``send`` resumes
the session in a new process. A turn the operator interrupted keeps the process, waiting
for the operator's next turn.
"""

from __future__ import annotations

import difflib
import json
import uuid
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from fleet.approvals.binding import shown_digest
from fleet.ledger.records.approvals import Ask, AskKind, Decision
from fleet.model import PermissionMode
from fleet.permissions.rules import BadRule, mcp_server_of, parse_rule
from fleet.sessions.base import Alive, Asked, Closing, Effect, TurnEnded, Withdrawn, Write

NAME = "claude-stream"

# Fleetwarden's modes as Claude Code's own (``edits`` adds ask rules beside it: see
# fleet.runtimes.claude).
MODES = {
    PermissionMode.ASK: "default",
    PermissionMode.EDITS: "acceptEdits",
    PermissionMode.FULL: "bypassPermissions",
    PermissionMode.READ_ONLY: "plan",
}
EDIT_TOOLS = frozenset({"Edit", "MultiEdit", "Write", "NotebookEdit"})
QUESTION_TOOL = "AskUserQuestion"
DIFF_LINES = 40  # lines of a diff, or of a new file's head, shown with an ask
_PATH_KEYS = ("file_path", "notebook_path", "path")


@dataclass(frozen=True, slots=True)
class _Pending:
    """An ask waiting for its answer: what to send back with it, and the digest of what
    it asked (an answer given for another ask under the same id is not its answer)."""

    input: Mapping[str, Any]
    tool: str
    pattern: str | None
    question: bool
    digest: str


class ClaudeStream:
    """The ``claude-stream`` protocol of one Claude Code process."""

    name = NAME

    def __init__(
        self,
        mode: PermissionMode = PermissionMode.EDITS,
        ids: Callable[[], str] | None = None,
        *,
        servers: frozenset[str] = frozenset(),
    ) -> None:
        self._mode = mode
        self._servers = servers  # the MCP servers the agent is granted: the door asks
        self._ids = ids or (lambda: uuid.uuid4().hex)
        self._busy = False
        self._interrupted = False  # the turn in progress was interrupted: keep the process
        self._closing = False
        self._queue: deque[str] = deque()
        self._pending: dict[str, _Pending] = {}

    @property
    def busy(self) -> bool:
        return self._busy

    def opening(self, prompt: str | None) -> Sequence[Effect]:
        if not prompt:
            return [Alive("waiting")]
        return self.turn(prompt)

    def turn(self, text: str) -> Sequence[Effect]:
        if self._busy or self._closing:
            self._queue.append(text)
            return []
        self._busy = True
        return [Write(user_line(text)), Alive("working")]

    def feed(self, line: str) -> Sequence[Effect]:
        event = _json(line)
        if event is None:
            return []
        kind = event.get("type")
        if kind == "control_request":
            return self._asked(event)
        if kind == "control_cancel_request":
            native = str(event.get("request_id", ""))
            if self._pending.pop(native, None) is None:
                return []
            return [Withdrawn(native, "Claude Code withdrew the request (its turn ended)")]
        if kind == "control_response":
            # The echo of an answer we wrote (read again after a restart), or Claude Code's
            # answer to our interrupt or mode change.
            response = event.get("response")
            if isinstance(response, Mapping):
                self._pending.pop(str(response.get("request_id", "")), None)
            return []
        if kind == "result":
            return self._ended()
        if kind in ("system", "assistant", "user"):
            if kind == "system" and event.get("subtype") != "init":
                return []
            self._busy = True
            return [Alive("working")]
        return []

    def answer(
        self, native_id: str, decision: Decision, reason: str | None, *, digest: str
    ) -> Sequence[Effect]:
        pending = self._pending.get(native_id)
        if pending is None or pending.digest != digest:  # withdrawn, answered, or asked over
            return []
        del self._pending[native_id]
        response: dict[str, Any]
        if not decision.allows:
            said = f"The operator denied this: {reason}" if reason else "The operator denied this."
            response = {"behavior": "deny", "message": said}
        else:
            updated = dict(pending.input)
            if pending.question:
                updated["answers"] = answers(pending.input, reason or "")
            response = {"behavior": "allow", "updatedInput": updated}
            if decision is Decision.ALWAYS and pending.pattern and not pending.question:
                response["updatedPermissions"] = [_session_rule(pending.pattern)]
        body = {"subtype": "success", "request_id": native_id, "response": response}
        return [Write(_line({"type": "control_response", "response": body})), Alive("working")]

    def interrupt(self) -> Sequence[Effect]:
        if not self._busy or self._closing:
            return []
        self._interrupted = True
        return [Write(self._request({"subtype": "interrupt"}))]

    def set_mode(self, mode: PermissionMode) -> Sequence[Effect] | None:
        # bypassPermissions is refused in-band unless launched with it; and a process
        # launched in it has no ask rules, which ``edits`` needs: both take a new process.
        if PermissionMode.FULL in (mode, self._mode):
            return None
        self._mode = mode
        return [Write(self._request({"subtype": "set_permission_mode", "mode": MODES[mode]}))]

    # -- inside ------------------------------------------------------------------------

    def _request(self, request: Mapping[str, Any]) -> str:
        return _line({"type": "control_request", "request_id": self._ids(), "request": request})

    def _asked(self, event: Mapping[str, Any]) -> Sequence[Effect]:
        request = event.get("request")
        native = event.get("request_id")
        if not isinstance(request, Mapping) or request.get("subtype") != "can_use_tool":
            return []
        if not isinstance(native, str) or not native:
            return []
        tool = str(request.get("tool_name") or "tool")
        raw = request.get("input")
        tool_input: Mapping[str, Any] = raw if isinstance(raw, Mapping) else {}
        self._busy = True
        if mcp_server_of(tool) in self._servers:  # the door asks, seeing the call as relayed
            response = {"behavior": "allow", "updatedInput": dict(tool_input)}
            body = {"subtype": "success", "request_id": native, "response": response}
            return [Write(_line({"type": "control_response", "response": body}))]
        ask = describe(native, tool, tool_input)
        question = ask.kind is AskKind.QUESTION
        self._pending[native] = _Pending(tool_input, tool, ask.pattern, question, shown_digest(ask))
        return [Asked(ask)]

    def _ended(self) -> Sequence[Effect]:
        self._busy = False
        interrupted, self._interrupted = self._interrupted, False
        # Whatever was still asked belongs to the turn that ended.
        self._pending.clear()
        out: list[Effect] = [TurnEnded()]
        if self._queue:
            out.extend(self.turn(self._queue.popleft()))
        elif interrupted:
            out.append(Alive("waiting"))
        else:
            self._closing = True
            out += [Closing(), Write(self._request({"subtype": "end_session"}))]
        return out


def user_line(text: str) -> str:
    """A user turn as a stream-json input line."""
    return _line({"type": "user", "message": {"role": "user", "content": text}})


def describe(native_id: str, tool: str, tool_input: Mapping[str, Any]) -> Ask:
    """What Claude Code asks, as an :class:`Ask`: the argument that matters, a short diff or
    head of a file, and the rule an ``always`` answer adds."""
    if tool == QUESTION_TOOL:
        return _question(native_id, tool_input)
    subject, detail = _subject(tool, tool_input), ""
    if tool == "Bash":
        detail = str(tool_input.get("description") or "")
    elif tool in ("Edit", "MultiEdit"):
        edits = tool_input.get("edits") if tool == "MultiEdit" else [tool_input]
        detail = _diff(subject, edits if isinstance(edits, list) else [])
    elif tool == "Write":
        lines = str(tool_input.get("content") or "").splitlines()
        detail = "\n".join(lines[:DIFF_LINES]) + ("\n…" if len(lines) > DIFF_LINES else "")
    elif tool == "ExitPlanMode":
        detail = str(tool_input.get("plan") or "")
    return Ask(native_id, tool, subject, detail, _pattern(tool, subject))


def answers(tool_input: Mapping[str, Any], text: str) -> dict[str, str]:
    """The operator's reply as ``AskUserQuestion``'s answers: one line per question when
    there are as many lines as questions, else the whole reply for each."""
    questions = [q.get("question") for q in _questions(tool_input)]
    names = [str(q) for q in questions if q]
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    if len(names) > 1 and len(lines) == len(names):
        return dict(zip(names, lines, strict=True))
    return {name: text.strip() for name in names}


def _question(native_id: str, tool_input: Mapping[str, Any]) -> Ask:
    parts = []
    for question in _questions(tool_input):
        options = [
            str(o.get("label"))
            for o in question.get("options") or []
            if isinstance(o, Mapping) and o.get("label")
        ]
        parts.append(str(question.get("question") or ""))
        if options:
            parts.append("  options: " + " · ".join(options))
    subject = parts[0] if parts else "a question"
    return Ask(native_id, QUESTION_TOOL, subject, "\n".join(parts[1:]), None, AskKind.QUESTION)


def _questions(tool_input: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    found = tool_input.get("questions")
    return [q for q in found if isinstance(q, Mapping)] if isinstance(found, list) else []


def _subject(tool: str, tool_input: Mapping[str, Any]) -> str:
    if tool == "Bash":
        return str(tool_input.get("command") or "")
    for key in (*_PATH_KEYS, "url", "pattern"):
        if tool_input.get(key):
            return str(tool_input[key])
    if tool_input.get("description"):
        return str(tool_input["description"])
    return json.dumps(tool_input, ensure_ascii=False, sort_keys=True)[:200]


def _diff(path: str, edits: list[Any]) -> str:
    lines: list[str] = []
    for edit in edits:
        if not isinstance(edit, Mapping):
            continue
        old = str(edit.get("old_string") or "").splitlines()
        new = str(edit.get("new_string") or "").splitlines()
        lines.extend(difflib.unified_diff(old, new, path, path, n=1, lineterm=""))
    cut = len(lines) > DIFF_LINES
    return "\n".join(lines[:DIFF_LINES]) + ("\n…" if cut else "")


def _pattern(tool: str, subject: str) -> str | None:
    """The portable rule an ``always`` adds: the tool alone for edits, else the tool with
    this exact argument; ``None`` when it cannot be written as a rule."""
    text = tool if tool in EDIT_TOOLS or not subject else f"{tool}({subject})"
    try:
        parse_rule(text)
    except BadRule:
        return None
    return "Edit" if tool == "MultiEdit" else text


def _session_rule(pattern: str) -> dict[str, Any]:
    """``pattern`` as Claude Code's ``updatedPermissions`` entry for this session."""
    rule = parse_rule(pattern)
    content = {} if rule.arg is None else {"ruleContent": rule.arg}
    return {
        "type": "addRules",
        "rules": [{"toolName": rule.tool, **content}],
        "behavior": "allow",
        "destination": "session",
    }


def _json(line: str) -> Mapping[str, Any] | None:
    line = line.strip()
    if not line.startswith("{"):
        return None
    try:
        event = json.loads(line)
    except ValueError:
        return None
    return event if isinstance(event, dict) else None


def _line(payload: Mapping[str, Any]) -> str:
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":"))

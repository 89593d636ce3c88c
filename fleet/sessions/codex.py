"""Codex's app-server protocol (``codex-app-server``), without I/O.

Codex runs as ``codex app-server``: JSON-RPC 2.0 messages, one per line, without the
``jsonrpc`` field, on stdin and stdout. One process serves every turn of one thread.
Measured on 0.169.0:

* the handshake is ``initialize`` (answered with the user agent), the ``initialized``
  notification, then ``thread/start {cwd, approvalPolicy, sandbox}``; Codex announces the
  thread with ``thread/started`` (``thread.id``). A turn is ``turn/start {threadId,
  input: [{type: "text", text}]}``; it runs between ``turn/started`` and
  ``turn/completed`` (``turn.status`` ``completed``, ``interrupted`` or ``failed``);
* a command or an edit Codex's approval policy does not let pass arrives as a request
  from Codex, ``item/commandExecution/requestApproval`` (``command``: the line as run,
  ``/bin/bash -lc '…'``) or ``item/fileChange/requestApproval`` (only ``itemId``: the
  paths and diffs are in the ``item/started`` of that item, which comes first). It is
  answered ``{"decision": "accept" | "acceptForSession" | "decline"}``; Codex then writes
  ``serverRequest/resolved``. A declined command's model sees only
  ``Rejected("rejected by user")``, a declined patch ``patch rejected by user``: there is
  no field for a reason. So a deny with a reason first steers the turn (``turn/steer``
  with the reason as the user's words), then declines: the model's next request carries
  the refused call, its refusal, and the reason, in that order;
* ``turn/steer {threadId, expectedTurnId, input}`` adds the user's words to the running
  turn (refused with -32600 "no active turn to steer" once it has ended: the words then
  start a turn of their own); ``turn/interrupt {threadId, turnId}`` ends the turn with
  status ``interrupted`` and keeps the thread;
* an overloaded server answers a request with error -32001: it is sent again;
* under ``untrusted`` a call of an MCP tool is asked as ``mcpServer/elicitation/request``
  (``serverName``; ``_meta.codex_approval_kind`` ``mcp_tool_call``, ``tool_name``,
  ``tool_params``), answered with an MCP elicitation result: ``{"action": "accept",
  "content": {}}`` runs it, ``{"action": "decline"}`` does not. For a server the agent is
  granted it is accepted here at once: the MCP door asks about the call
  (:mod:`fleet.mcp.asking`, the agent's rules and chat), seeing it as relayed, so it is
  never asked twice; for any other server (none Fleetwarden gave it) it is declined.

Codex's requests carry its own ids (0, 1, …); ours are strings (``fw-<token>-<n>``), so
that a protocol rebuilt after a restart never takes an answer meant for the old one. The
thread and the turn in progress are read from Codex's notifications, never from answers.
"""

from __future__ import annotations

import json
import uuid
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fleet.approvals.binding import shown_digest
from fleet.ledger.records.approvals import Decision
from fleet.model import AgentSpec, PermissionMode
from fleet.sessions.base import Alive, Asked, Effect, TurnEnded, Withdrawn, Write
from fleet.sessions.codex_asks import (
    Verdict,
    command_ask,
    edit_ask,
    edit_paths,
    judge,
    reads_only,
)

NAME = "codex-app-server"
OVERLOADED = -32001
MAX_RETRIES = 5
CLIENT = {"name": "fleetwarden", "title": "Fleetwarden", "version": "1"}
# Fleetwarden's modes as Codex approval policies. ``edits`` and ``read-only`` ask like
# ``ask``; the protocol then answers the asks their mode decides without asking anyone.
POLICIES = {
    PermissionMode.ASK: "untrusted",
    PermissionMode.EDITS: "untrusted",
    PermissionMode.FULL: "never",
    PermissionMode.READ_ONLY: "untrusted",
}
COMMAND_APPROVAL = "item/commandExecution/requestApproval"
FILE_APPROVAL = "item/fileChange/requestApproval"
ELICITATION = "mcpServer/elicitation/request"
MCP_TOOL_CALL = "mcp_tool_call"  # the elicitation's _meta.codex_approval_kind for a tool call
_DECISIONS = {Decision.ALLOW: "accept", Decision.ALWAYS: "acceptForSession"}


@dataclass(frozen=True, slots=True)
class _Sent:
    """A request of ours waiting for its answer: what to do if it fails."""

    method: str
    params: Mapping[str, Any]
    texts: tuple[str, ...] = ()  # the user's words it carries (a steer falls back on them)
    tries: int = 1


@dataclass(frozen=True, slots=True)
class _Waiting:
    """An ask of Codex waiting for its answer: its turn, its subject (a deny's reason names
    it), and the digest of what it asked (an answer given for another ask under the same id
    is not its answer)."""

    turn: str
    subject: str
    digest: str


class CodexAppServer:
    """The ``codex-app-server`` protocol of one Codex process."""

    name = NAME

    def __init__(
        self,
        cwd: Path | str,
        mode: PermissionMode = PermissionMode.EDITS,
        *,
        sandbox: str = "danger-full-access",
        allow: tuple[str, ...] = (),
        deny: tuple[str, ...] = (),
        model: str | None = None,
        token: Callable[[], str] | None = None,
        servers: frozenset[str] = frozenset(),
    ) -> None:
        self._cwd = str(cwd)
        self._servers = servers  # the MCP servers the agent is granted: the door asks
        self._mode = mode
        self._sandbox = sandbox
        self._allow = allow
        self._deny = deny
        self._model = model
        self._token = (token or (lambda: uuid.uuid4().hex[:8]))()
        self._serial = 0
        self._sent: dict[str, _Sent] = {}
        self._thread: str | None = None
        self._turn: str | None = None  # the turn in progress, once Codex named it
        self._busy = False
        self._queue: deque[str] = deque()
        self._asks: dict[str, _Waiting] = {}  # by Codex's id of the ask
        self._items: dict[str, Mapping[str, Any]] = {}  # file changes by item id

    @property
    def busy(self) -> bool:
        return self._busy

    @property
    def turn_id(self) -> str | None:
        """The turn in progress, once Codex announced it."""
        return self._turn

    @property
    def thread(self) -> str | None:
        """The thread's id once Codex announced it (the session to resume)."""
        return self._thread

    def opening(self, prompt: str | None) -> Sequence[Effect]:
        params: dict[str, Any] = {
            "cwd": self._cwd,
            "approvalPolicy": POLICIES[self._mode],
            "sandbox": self._sandbox,
        }
        if self._model:
            params["model"] = self._model
        out: list[Effect] = [
            self._request("initialize", {"clientInfo": CLIENT}),
            Write(_line({"method": "initialized"})),
            self._request("thread/start", params),
        ]
        if prompt:
            self._queue.append(prompt)
            self._busy = True
            out.append(Alive("working"))
        else:
            out.append(Alive("waiting"))
        return out

    def turn(self, text: str) -> Sequence[Effect]:
        if self._thread is None or (self._busy and self._turn is None):
            self._queue.append(text)  # sent once the thread, or the turn, has its id
            self._busy = True
            return []
        if self._busy and self._turn is not None:
            return [self._steer(self._turn, (text,))]
        return self._start((text,))

    def answer(
        self, native_id: str, decision: Decision, reason: str | None, *, digest: str
    ) -> Sequence[Effect]:
        ask = self._asks.get(native_id)
        if ask is None or ask.digest != digest:
            return []  # withdrawn, answered already, or another ask under that id since
        del self._asks[native_id]
        out: list[Effect] = []
        if not decision.allows and reason:
            words = f"The operator denied `{ask.subject}`: {reason}"
            out.append(self._steer(ask.turn, (words,), fallback=False))
        verdict = _DECISIONS.get(decision, "decline")
        out.append(Write(_line({"id": _native(native_id), "result": {"decision": verdict}})))
        out.append(Alive("working"))
        return out

    def interrupt(self) -> Sequence[Effect]:
        if self._thread is None or self._turn is None:
            return []
        return [self._request("turn/interrupt", {"threadId": self._thread, "turnId": self._turn})]

    def set_mode(self, mode: PermissionMode) -> Sequence[Effect] | None:
        # ``ask``, ``edits`` and ``read-only`` share Codex's policy: what the protocol
        # answers by itself changes at once. ``full`` is Codex's ``never``, which a running
        # turn keeps (turn/start carries a policy, nothing else does): from the next run.
        if PermissionMode.FULL in (mode, self._mode) and mode is not self._mode:
            return None
        self._mode = mode
        return []

    def feed(self, line: str) -> Sequence[Effect]:
        message = _json(line)
        if message is None:
            return []
        method = message.get("method")
        if isinstance(method, str):
            if "id" in message:
                return self._server_request(method, message["id"], message.get("params"))
            return self._notification(method, _mapping(message.get("params")))
        if "id" in message and "error" in message:
            return self._failed(str(message["id"]), _mapping(message.get("error")))
        if "id" in message:
            self._sent.pop(str(message["id"]), None)
        return []

    # -- what Codex says ---------------------------------------------------------------

    def _notification(self, method: str, params: Mapping[str, Any]) -> Sequence[Effect]:
        if method == "thread/started":
            thread = _mapping(params.get("thread")).get("id")
            if isinstance(thread, str) and self._thread is None:
                self._thread = thread
                if self._queue:
                    return self._start(tuple(self._drain()))
            return []
        if method == "turn/started":
            turn = _mapping(params.get("turn")).get("id")
            self._turn = turn if isinstance(turn, str) else None
            self._busy = True
            out: list[Effect] = [Alive("working")]
            if self._queue and self._turn is not None:
                out.append(self._steer(self._turn, tuple(self._drain())))
            return out
        if method == "turn/completed":
            return self._ended()
        if method == "serverRequest/resolved":
            native = str(params.get("requestId"))
            if self._asks.pop(native, None) is not None:  # resolved before it was answered
                return [Withdrawn(native, "Codex withdrew the request (its turn ended)")]
            return []
        if method == "item/started":
            item = _mapping(params.get("item"))
            if item.get("type") == "fileChange" and isinstance(item.get("id"), str):
                self._items[item["id"]] = item
            return [Alive("working")] if self._busy else []
        if method == "item/completed":
            self._items.pop(str(_mapping(params.get("item")).get("id")), None)
            return [Alive("working")] if self._busy else []
        return []

    def _server_request(self, method: str, ident: object, raw: object) -> Sequence[Effect]:
        native = str(ident)
        params = _mapping(raw)
        paths: list[str] = []
        reading = False
        if method == COMMAND_APPROVAL:
            ask, reading = command_ask(native, params), reads_only(params, self._cwd)
        elif method == FILE_APPROVAL:
            item = self._items.get(str(params.get("itemId")))
            ask, paths = edit_ask(native, params, item, self._cwd), edit_paths(item)
        elif (
            method == ELICITATION
            and _mapping(params.get("_meta")).get("codex_approval_kind") == MCP_TOOL_CALL
        ):
            granted = params.get("serverName") in self._servers
            answer = {"action": "accept", "content": {}} if granted else {"action": "decline"}
            return [Write(_line({"id": ident, "result": answer}))]
        else:
            error = {"code": -32601, "message": f"{method} is not supported by Fleetwarden"}
            return [Write(_line({"id": ident, "error": error}))]
        turn = str(params.get("turnId") or self._turn or "")
        waiting = _Waiting(turn, ask.subject, shown_digest(ask))
        self._asks[native] = waiting
        self._busy = True
        verdict = judge(ask, paths, self._mode, self._cwd, self._allow, self._deny, reading=reading)
        if verdict is None:
            return [Asked(ask)]
        return self._decided(native, waiting, verdict)

    def _decided(self, native: str, waiting: _Waiting, verdict: Verdict) -> Sequence[Effect]:
        """An ask the agent's mode or rules answer, without asking anyone."""
        decision = Decision.ALLOW if verdict.allows else Decision.DENY
        return self.answer(native, decision, verdict.reason, digest=waiting.digest)

    def _failed(self, ident: str, error: Mapping[str, Any]) -> Sequence[Effect]:
        sent = self._sent.pop(ident, None)
        if sent is None:
            return []
        if error.get("code") == OVERLOADED and sent.tries < MAX_RETRIES:
            retry = _Sent(sent.method, sent.params, sent.texts, sent.tries + 1)
            return [self._write(retry)]
        if sent.method == "turn/steer" and sent.texts:
            # The turn ended before the words reached it: they make a turn of their own.
            self._busy = False
            return self.turn("\n\n".join(sent.texts))
        if sent.method in ("thread/start", "turn/start"):
            self._busy = False
            self._queue.clear()
            return [TurnEnded(), Alive("waiting")]
        return []

    def _ended(self) -> Sequence[Effect]:
        self._busy = False
        self._turn = None
        why = "Codex withdrew the request (its turn ended)"
        out: list[Effect] = [Withdrawn(native, why) for native in self._asks]
        self._asks.clear()
        self._items.clear()
        out.append(TurnEnded())
        if self._queue:
            out.extend(self._start(tuple(self._drain())))
        else:
            out.append(Alive("waiting"))
        return out

    # -- what we write -----------------------------------------------------------------

    def _start(self, texts: tuple[str, ...]) -> Sequence[Effect]:
        if self._thread is None:  # not yet: sent when Codex announces the thread
            self._queue.extend(texts)
            return []
        self._busy = True
        params = {
            "threadId": self._thread,
            "input": [_text(text) for text in texts],
            "approvalPolicy": POLICIES[self._mode],
        }
        return [self._request("turn/start", params), Alive("working")]

    def _steer(self, turn: str, texts: tuple[str, ...], *, fallback: bool = True) -> Write:
        params = {
            "threadId": self._thread,
            "expectedTurnId": turn,
            "input": [_text(text) for text in texts],
        }
        return self._request("turn/steer", params, texts if fallback else ())

    def _request(
        self, method: str, params: Mapping[str, Any], texts: tuple[str, ...] = ()
    ) -> Write:
        return self._write(_Sent(method, params, texts))

    def _write(self, sent: _Sent) -> Write:
        self._serial += 1
        ident = f"fw-{self._token}-{self._serial}"
        self._sent[ident] = sent
        return Write(_line({"method": sent.method, "id": ident, "params": sent.params}))

    def _drain(self) -> list[str]:
        texts = list(self._queue)
        self._queue.clear()
        return texts


def protocol(spec: AgentSpec, cwd: Path) -> CodexAppServer:
    """The protocol of one run of ``spec`` (the factory :mod:`fleet.sessions` names)."""
    return CodexAppServer(
        cwd,
        spec.permissions,
        sandbox=sandbox_mode(spec),
        allow=spec.allow,
        deny=spec.deny,
        model=spec.model,
        servers=frozenset(grant.server for grant in spec.mcp),
    )


def sandbox_mode(spec: AgentSpec) -> str:
    """Codex's own sandbox for ``spec``. Inside Fleetwarden's sandbox Codex's cannot be set
    up (it is the boundary there); outside it, Codex's keeps a ``read-only`` agent from
    writing and the others to the workdir."""
    if spec.sandbox == "bwrap":
        return "danger-full-access"
    return "read-only" if spec.permissions is PermissionMode.READ_ONLY else "workspace-write"


def _text(text: str) -> dict[str, Any]:
    return {"type": "text", "text": text, "text_elements": []}


def _native(native_id: str) -> int | str:
    """Codex's request id as it sent it (an integer, written back as one)."""
    return int(native_id) if native_id.lstrip("-").isdigit() else native_id


def _mapping(value: object) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _json(line: str) -> Mapping[str, Any] | None:
    line = line.strip()
    if not line.startswith("{"):
        return None
    try:
        message = json.loads(line)
    except ValueError:
        return None
    return message if isinstance(message, dict) else None


def _line(payload: Mapping[str, Any]) -> str:
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":"))

"""Codex's ``exec --json`` and ``app-server`` output read as events.

One JSON object per line: ``thread.started`` (the session), ``turn.started``, then
``item.started`` / ``item.updated`` / ``item.completed`` for each item of the turn — an
``agent_message`` (its text), a ``command_execution`` (its command, its exit code and
status), a ``file_change``, a ``web_search``, an ``mcp_tool_call``, ``reasoning`` — and
``turn.completed`` (with usage) or ``turn.failed`` (with an error); an ``error`` event may
come before. A command is shown once, when it starts, without the ``bash -lc`` Codex wraps
it in. Lines that are not JSON (warnings Codex prints) are text.

A live session (``codex app-server``, :mod:`fleet.sessions.codex`) writes JSON-RPC
notifications instead: ``item/started`` / ``item/completed`` with the same items in
camelCase (``agentMessage``, ``commandExecution`` with ``aggregatedOutput`` and a status
that may be ``declined``, ``fileChange``…), ``turn/completed`` with the turn's status
(``completed``, ``interrupted``, ``failed`` with its error), ``error``; an approval request
shows as waiting. Answers to Fleetwarden's requests and the rest (deltas, token usage,
status changes) say nothing new.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Mapping
from typing import Any

from fleet.transcript.events import (
    AgentEvent,
    RunEnded,
    Said,
    ToolFailed,
    ToolUsed,
    Trouble,
    Unknown,
    Waiting,
)
from fleet.transcript.jsonl import JsonStream, error_kind, one_line, target

_WRAPPED = re.compile(r"^\S*/?(?:ba|z)?sh -l?c (.+)$", re.S)
_QUIET = frozenset({"thread.started", "turn.started"})
# app-server item types and fields, as exec --json names them
_ITEM_TYPES = {
    "agentMessage": "agent_message",
    "commandExecution": "command_execution",
    "fileChange": "file_change",
    "webSearch": "web_search",
    "mcpToolCall": "mcp_tool_call",
}
_ASKS = {
    "item/commandExecution/requestApproval": "approval to run a command",
    "item/fileChange/requestApproval": "approval to edit files",
}


def unwrap(command: str) -> str:
    """``/bin/bash -lc 'cat notes.txt'`` → ``cat notes.txt``."""
    match = _WRAPPED.match(command.strip())
    if match is None:
        return command
    try:
        words = shlex.split(match.group(1))
    except ValueError:
        return command
    return words[0] if len(words) == 1 else command


class CodexStream(JsonStream):
    """Reads one Codex run's ``exec --json`` output."""

    def __init__(self) -> None:
        self._shown: set[str] = set()  # item ids already shown as a tool call
        self._turns = 0
        self._troubled = False

    def event(self, event: Mapping[str, Any], line: str) -> list[AgentEvent]:
        if "method" in event or "result" in event or "jsonrpc" in event:
            return self._rpc(event)
        if "id" in event and "error" in event:
            return []  # an answer to a request of Fleetwarden's, refused
        kind = str(event.get("type"))
        if kind in _QUIET:
            return []
        if kind in ("item.started", "item.updated", "item.completed"):
            return self._item(event.get("item") or {}, done=kind == "item.completed")
        if kind == "turn.completed":
            self._turns += 1
            return [RunEnded(ok=True, turns=self._turns)]
        if kind == "turn.failed":
            self._turns += 1
            error = event.get("error") or {}
            reason = str(error.get("message") if isinstance(error, Mapping) else error)
            out: list[AgentEvent] = []
            if not self._troubled:
                out.append(Trouble(error_kind(reason), one_line(reason)))
            return [*out, RunEnded(ok=False, turns=self._turns, result=reason)]
        if kind == "error":
            self._troubled = True
            reason = str(event.get("message") or "error")
            return [Trouble(error_kind(reason), one_line(reason))]
        return [Unknown(kind, line.rstrip())]

    def _rpc(self, message: Mapping[str, Any]) -> list[AgentEvent]:
        method = message.get("method")
        params = message.get("params")
        params = params if isinstance(params, Mapping) else {}
        if method in ("item/started", "item/completed"):
            return self._item(_snake(params.get("item")), done=method == "item/completed")
        if method in _ASKS and "id" in message:
            return [Waiting(_ASKS[str(method)])]
        if method == "turn/completed":
            turn = params.get("turn")
            return self._turn_over(turn if isinstance(turn, Mapping) else {})
        if method == "error":
            error = params.get("error")
            reason = str(error.get("message") if isinstance(error, Mapping) else error)
            if params.get("willRetry"):
                return []
            self._troubled = True
            return [Trouble(error_kind(reason), one_line(reason))]
        return []

    def _turn_over(self, turn: Mapping[str, Any]) -> list[AgentEvent]:
        self._turns += 1
        status = turn.get("status")
        took = turn.get("durationMs")
        duration = took if isinstance(took, int) else None
        if status == "completed":
            return [RunEnded(ok=True, turns=self._turns, duration_ms=duration)]
        if status == "interrupted":
            return [RunEnded(False, self._turns, duration, result="interrupted")]
        error = turn.get("error")
        reason = str(error.get("message") if isinstance(error, Mapping) else error or status)
        out: list[AgentEvent] = []
        if not self._troubled:
            out.append(Trouble(error_kind(reason), one_line(reason)))
        return [*out, RunEnded(False, self._turns, duration, result=reason)]

    def _item(self, item: Mapping[str, Any], *, done: bool) -> list[AgentEvent]:
        kind = item.get("type")
        ident = str(item.get("id"))
        if kind == "agent_message":
            text = str(item.get("text") or "").strip()
            return [Said(text)] if done and text else []
        out: list[AgentEvent] = []
        tool = _tool_of(item)
        if tool is not None and ident not in self._shown:
            self._shown.add(ident)
            out.append(ToolUsed(*tool))
        if done and tool is not None and item.get("status") == "declined":
            out.append(ToolFailed(tool[0], "declined"))
        if done and tool is not None and item.get("status") == "failed":
            output = str(item.get("aggregated_output") or item.get("error") or "failed")
            out.append(ToolFailed(tool[0], one_line(output)))
        if kind == "error" and done:
            reason = str(item.get("message") or "error")
            out.append(Trouble(error_kind(reason), one_line(reason)))
        return out


def _snake(item: object) -> Mapping[str, Any]:
    """An app-server item with the type and output field names of ``exec --json``."""
    if not isinstance(item, Mapping):
        return {}
    kind = str(item.get("type"))
    renamed = {**item, "type": _ITEM_TYPES.get(kind, kind)}
    if "aggregatedOutput" in item:
        renamed["aggregated_output"] = item["aggregatedOutput"]
    return renamed


def _tool_of(item: Mapping[str, Any]) -> tuple[str, str] | None:
    """The tool an item is, with its one argument that matters; ``None`` for the rest."""
    kind = item.get("type")
    if kind == "command_execution":
        return "shell", one_line(unwrap(str(item.get("command") or "")))
    if kind == "file_change":
        paths = [
            str(change.get("path"))
            for change in item.get("changes") or []
            if isinstance(change, Mapping)
        ]
        return "edit", one_line(", ".join(paths))
    if kind == "web_search":
        return "web search", one_line(str(item.get("query") or ""))
    if kind == "mcp_tool_call":
        name = f"{item.get('server')}.{item.get('tool')}"
        return name, target(item.get("arguments"))
    return None

"""Codex's ``exec --json`` read as events.

One JSON object per line: ``thread.started`` (the session), ``turn.started``, then
``item.started`` / ``item.updated`` / ``item.completed`` for each item of the turn — an
``agent_message`` (its text), a ``command_execution`` (its command, its exit code and
status), a ``file_change``, a ``web_search``, an ``mcp_tool_call``, ``reasoning`` — and
``turn.completed`` (with usage) or ``turn.failed`` (with an error); an ``error`` event may
come before. A command is shown once, when it starts, without the ``bash -lc`` Codex wraps
it in. Lines that are not JSON (warnings Codex prints) are text.
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
)
from fleet.transcript.jsonl import JsonStream, error_kind, one_line, target

_WRAPPED = re.compile(r"^\S*/?(?:ba|z)?sh -l?c (.+)$", re.S)
_QUIET = frozenset({"thread.started", "turn.started"})


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
        if done and tool is not None and item.get("status") == "failed":
            output = str(item.get("aggregated_output") or item.get("error") or "failed")
            out.append(ToolFailed(tool[0], one_line(output)))
        if kind == "error" and done:
            reason = str(item.get("message") or "error")
            out.append(Trouble(error_kind(reason), one_line(reason)))
        return out


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

"""opencode's ``run --format json`` read as events.

One JSON object per line, each with the session's ``sessionID`` and a ``part``:
``step_start``, ``text`` (the assistant's text), ``tool_use`` (a tool part: its ``tool``
name and ``state`` with ``status`` ``completed`` or ``error``, its ``input`` and its
``error``), ``step_finish`` (its ``reason`` — ``tool-calls`` while the run goes on,
``stop`` at its end — its tokens and ``cost``), and ``error`` (e.g. ``ProviderAuthError``).
"""

from __future__ import annotations

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
from fleet.transcript.jsonl import JsonStream, error_kind, money, one_line, target


class OpencodeStream(JsonStream):
    """Reads one opencode run's ``--format json`` output."""

    def __init__(self) -> None:
        self._steps = 0
        self._cost = 0.0

    def event(self, event: Mapping[str, Any], line: str) -> list[AgentEvent]:
        kind = str(event.get("type"))
        part = event.get("part") or {}
        if kind == "step_start":
            return []
        if kind == "text":
            text = str(part.get("text") or "").strip()
            return [Said(text)] if text else []
        if kind == "tool_use":
            return self._tool(part)
        if kind == "step_finish":
            self._steps += 1
            self._cost += money(part.get("cost")) or 0.0
            if part.get("reason") == "tool-calls":
                return []
            return [RunEnded(ok=True, turns=self._steps, cost_usd=round(self._cost, 6))]
        if kind == "error":
            return [self._trouble(event.get("error"))]
        if kind == "permission":
            return [Waiting(one_line(str(part.get("title") or "permission asked")))]
        return [Unknown(kind, line.rstrip())]

    def _tool(self, part: Mapping[str, Any]) -> list[AgentEvent]:
        name = str(part.get("tool") or "tool")
        state = part.get("state") or {}
        out: list[AgentEvent] = [ToolUsed(name, target(state.get("input")))]
        if state.get("status") == "error":
            out.append(ToolFailed(name, one_line(str(state.get("error") or "failed"))))
        return out

    def _trouble(self, error: object) -> AgentEvent:
        if isinstance(error, Mapping):
            data = error.get("data")
            message = data.get("message") if isinstance(data, Mapping) else None
            reason = str(message or error.get("name") or "error")
            return Trouble(error_kind(f"{error.get('name', '')} {reason}"), one_line(reason))
        return Trouble(error_kind(str(error)), one_line(str(error)))

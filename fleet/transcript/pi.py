"""pi's ``--mode json`` read as events.

One JSON object per line: ``session``, ``agent_start``, then per turn ``turn_start``,
``message_start`` / ``message_update`` (deltas) / ``message_end`` for the user's, the
assistant's and the tool results' messages, ``tool_execution_start`` / ``_update`` /
``_end`` (``isError`` when the tool failed), ``turn_end``, and a last ``agent_end``. An
assistant message that failed has ``stopReason: "error"`` and its ``errorMessage``. Without
a key pi prints a plain-text "No API key found…" and exits 1.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fleet.transcript.events import (
    AgentEvent,
    ErrorKind,
    RunEnded,
    Said,
    Text,
    ToolFailed,
    ToolUsed,
    Trouble,
    Unknown,
)
from fleet.transcript.jsonl import JsonStream, error_kind, one_line, target, text_of

_QUIET = frozenset(
    {
        "session",
        "agent_start",
        "turn_start",
        "message_start",
        "message_update",
        "tool_execution_start",
        "tool_execution_update",
        "auto_compaction_start",
        "auto_compaction_end",
        "auto_retry_start",
        "auto_retry_end",
    }
)


class PiStream(JsonStream):
    """Reads one pi run's ``--mode json`` output."""

    def __init__(self) -> None:
        self._turns = 0
        self._failed: str | None = None

    def text(self, text: Text) -> list[AgentEvent]:
        """pi's own complaints (no key) are plain text on stderr."""
        auth = error_kind(text.text) is ErrorKind.AUTH
        if auth and self._failed is None and len(text.text) < 300:
            self._failed = text.text.strip()
            return [Trouble(ErrorKind.AUTH, one_line(text.text))]
        return [text]

    def event(self, event: Mapping[str, Any], line: str) -> list[AgentEvent]:
        kind = str(event.get("type"))
        if kind in _QUIET:
            return []
        if kind == "message_end":
            return self._message(event.get("message") or {})
        if kind == "tool_execution_end":
            if not event.get("isError"):
                return []
            result = event.get("result") or {}
            error = text_of(result.get("content")) if isinstance(result, Mapping) else ""
            return [ToolFailed(str(event.get("toolName") or "tool"), one_line(error or "failed"))]
        if kind == "turn_end":
            self._turns += 1
            return []
        if kind == "agent_end":
            return [RunEnded(ok=self._failed is None, turns=self._turns, result=self._failed)]
        return [Unknown(kind, line.rstrip())]

    def _message(self, message: Mapping[str, Any]) -> list[AgentEvent]:
        if message.get("role") != "assistant":
            return []
        out: list[AgentEvent] = []
        for part in message.get("content") or []:
            if not isinstance(part, Mapping):
                continue
            if part.get("type") == "text" and str(part.get("text", "")).strip():
                out.append(Said(str(part["text"]).strip()))
            elif part.get("type") == "toolCall":
                out.append(ToolUsed(str(part.get("name") or "tool"), target(part.get("arguments"))))
        if message.get("stopReason") == "error" or message.get("errorMessage"):
            reason = str(message.get("errorMessage") or "the model request failed")
            self._failed = reason
            out.append(Trouble(error_kind(reason), one_line(reason)))
        return out

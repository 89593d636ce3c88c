"""Claude Code's ``--output-format stream-json`` read as events.

One JSON object per line: ``system`` (``init`` first), ``assistant`` messages whose content
holds ``text`` and ``tool_use`` parts, ``user`` messages carrying ``tool_result`` parts
(``is_error`` when the tool failed or was refused), and a last ``result`` with the run's
status, ``num_turns``, ``duration_ms``, ``total_cost_usd``, the final ``result`` text and
the ``permission_denials`` of tools the permission mode did not allow. Without a login it
prints an assistant message "Not logged in · Please run /login" and a failed result.
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
from fleet.transcript.jsonl import (
    JsonStream,
    error_kind,
    money,
    number,
    one_line,
    target,
    text_of,
)

# The control protocol of a live session (fleet.sessions.claude): its asks reach chat as
# approval requests, their outcome as the tool's result.
_QUIET = frozenset(
    {
        "stream_event",
        "rate_limit_event",
        "control_request",
        "control_response",
        "control_cancel_request",
    }
)
_QUIET_SYSTEM = frozenset({"init", "compact_boundary", "status", "hook_response", "hook_started"})


class ClaudeStream(JsonStream):
    """Reads one Claude Code run's ``stream-json`` output."""

    def __init__(self) -> None:
        self._tools: dict[str, str] = {}  # tool_use id -> tool name
        self._said_error = False

    def event(self, event: Mapping[str, Any], line: str) -> list[AgentEvent]:
        kind = event.get("type")
        if kind == "assistant":
            return self._assistant(event)
        if kind == "user":
            return self._tool_results(event)
        if kind == "result":
            return self._result(event)
        if kind == "system":
            if event.get("subtype") in _QUIET_SYSTEM:
                return []
            return [Unknown(f"system/{event.get('subtype')}", line.rstrip())]
        if kind in _QUIET:
            return []
        return [Unknown(str(kind), line.rstrip())]

    def _assistant(self, event: Mapping[str, Any]) -> list[AgentEvent]:
        message = event.get("message") or {}
        out: list[AgentEvent] = []
        text = text_of(message.get("content"))
        if event.get("error"):
            self._said_error = True
            reason = text or str(event["error"])
            return [Trouble(error_kind(f"{event['error']} {reason}"), one_line(reason))]
        for part in message.get("content") or []:
            if not isinstance(part, Mapping):
                continue
            if part.get("type") == "text" and str(part.get("text", "")).strip():
                out.append(Said(str(part["text"]).strip()))
            elif part.get("type") == "tool_use":
                name = str(part.get("name") or "tool")
                self._tools[str(part.get("id"))] = name
                out.append(ToolUsed(name, target(part.get("input"))))
        return out

    def _tool_results(self, event: Mapping[str, Any]) -> list[AgentEvent]:
        out: list[AgentEvent] = []
        content = (event.get("message") or {}).get("content")
        for part in content if isinstance(content, list) else []:
            if not isinstance(part, Mapping) or part.get("type") != "tool_result":
                continue
            if not part.get("is_error"):
                continue
            tool = self._tools.get(str(part.get("tool_use_id")), "tool")
            error = one_line(text_of(part.get("content")) or "failed")
            if "requested permissions" in error or "haven't granted" in error:
                out.append(Waiting(f"permission to use {tool}: {error}"))
            else:
                out.append(ToolFailed(tool, error))
        return out

    def _result(self, event: Mapping[str, Any]) -> list[AgentEvent]:
        out: list[AgentEvent] = []
        for denial in event.get("permission_denials") or []:
            if isinstance(denial, Mapping):
                tool = str(denial.get("tool_name") or "tool")
                what = target(denial.get("tool_input"))
                out.append(Waiting(f"not allowed to use {tool}" + (f" ({what})" if what else "")))
        failed = bool(event.get("is_error")) or event.get("subtype") not in (None, "success")
        result = event.get("result")
        text = result if isinstance(result, str) else None
        if failed and not self._said_error:
            reason = text or str(event.get("subtype") or "the run failed")
            out.append(Trouble(error_kind(reason), one_line(reason)))
        out.append(
            RunEnded(
                ok=not failed,
                turns=number(event.get("num_turns")),
                duration_ms=number(event.get("duration_ms")),
                cost_usd=money(event.get("total_cost_usd")),
                result=text,
            )
        )
        return out

"""The calls through the MCP door as chat and page lines: one short line a call, for the
agent's thread (as each ends), ``runs NAME`` and the agent's page.

A tool's name, its arguments and its result are the agent's and the server's words, and
hostile: each passes :func:`bot.text.agent_text.said` (guarded, one line, escaped, cut). The
server's name is the config's; the method and the outcome are Fleetwarden's own words.
Shapes: ``🔌 MCP docs · search “q” → ok in 0.4s (80 B → 2.1 kB)``, then ``— args: {…}``
and, for a call that did not go through, ``— WHY``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final, Protocol

from bot.render.agents.transcript import size
from bot.text.agent_text import said
from fleet.ledger.stores.running.mcp_calls import McpCallRecord
from fleet.mcp.hooks import McpAudit
from fleet.metering import units

NAME_CHARS: Final = 80
ARGUMENT_CHARS: Final = 120
WHY_CHARS: Final = 160
_TOOL_CALL: Final = "tools/call"


class McpCall(Protocol):
    """What a line says of one call, whether it just ended (the door's audit) or the ledger
    kept it: the server and method, the tool's name, how long it took and how much went
    each way, its arguments, and why it did not go through (empty: it did)."""

    @property
    def server(self) -> str: ...
    @property
    def method(self) -> str: ...
    @property
    def name(self) -> str: ...
    @property
    def seconds(self) -> float: ...
    @property
    def bytes_in(self) -> int: ...
    @property
    def bytes_out(self) -> int: ...
    @property
    def arguments(self) -> str: ...
    @property
    def why(self) -> str: ...


def call_line(call: McpCall, outcome: str, cost_usd: float | None = None) -> str:
    """One call as one line of chat markdown (see the module for its shape)."""
    what = "" if call.method == _TOOL_CALL else f"{said(call.method, NAME_CHARS)} "
    called = f"“{said(call.name, NAME_CHARS)}”" if call.name else ""
    line = (
        f"🔌 MCP {said(call.server, NAME_CHARS)} · {what}{called} → {outcome} in "
        f"{call.seconds:.1f}s ({size(call.bytes_in)} → {size(call.bytes_out)})"
    )
    if cost_usd is not None:
        line += f", {units.usd(cost_usd)}"
    if call.arguments:
        line += f" — args: {said(call.arguments, ARGUMENT_CHARS)}"
    if call.why:
        line += f" — {said(call.why, WHY_CHARS)}"
    return line


def audit_line(audit: McpAudit, cost_usd: float | None = None) -> str:
    """A call that just ended, for the agent's thread."""
    return call_line(audit, audit.outcome.value, cost_usd)


def record_line(call: McpCallRecord) -> str:
    """A call the ledger kept, for ``runs NAME`` and the agent's page."""
    return call_line(call, call.outcome, call.cost_usd)


def calls_block(calls: Sequence[McpCallRecord]) -> str:
    """The latest ``calls`` (newest first) under a heading of their own, each with its run
    (and task); nothing when there are none."""
    if not calls:
        return ""
    lines = []
    for call in calls:
        where = f"run #{call.run_id}" if call.run_id is not None else "no run"
        if call.task_id is not None:
            where += f", task #{call.task_id}"
        lines.append(f"- {where}: {record_line(call)}")
    plural = "s" if len(calls) != 1 else ""
    return f"\n\n---\n\nThe last {len(calls)} MCP call{plural}, newest first:\n" + "\n".join(lines)

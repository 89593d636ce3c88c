"""The ledger's ``mcp_calls`` table (migration 32): every call an agent made through the MCP
door, whatever its outcome, with its run and task, for ``runs NAME``, the agent's page and
the audit. What a priced call cost is also a ``usage`` row (provider ``mcp``), which the
budgets, the caps and ``spend`` read: this table only says it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from fleet.ledger.database.access import Store
from fleet.ledger.database.engine import Row
from fleet.ledger.records.epoch import from_epoch, to_epoch

MCP_PROVIDER = "mcp"
"""The provider a priced call's ``usage`` row names: no model served it, so no page takes
it for an agent's current model."""
MAX_TEXT = 2_000
"""Characters kept of a call's name, arguments, result and reason, whatever the door gave
(it gives less: :data:`fleet.mcp.hooks.AUDIT_CHARS`)."""


@dataclass(frozen=True, slots=True)
class McpCallRecord:
    """One call through the MCP door: ``agent`` (in run ``run_id``, on task ``task_id``)
    called ``name`` of ``server`` with ``method``; it ended in ``outcome`` after ``seconds``.
    ``arguments``, ``result`` and ``why`` are redacted and capped, and hostile (the agent's
    and the server's words); ``cost_usd``: what the call was billed (``None``: not priced)."""

    at: datetime
    agent: str
    run_id: int | None
    task_id: int | None
    server: str
    method: str
    name: str
    outcome: str
    seconds: float
    bytes_in: int
    bytes_out: int
    arguments: str = ""
    result: str = ""
    why: str = ""
    cost_usd: float | None = None
    id: int | None = None


class McpCallsStore(Store):
    """The calls through the MCP door: written one by one, read by agent or by run."""

    async def record_call(self, call: McpCallRecord) -> None:
        """Keep ``call`` (its texts cut to :data:`MAX_TEXT`)."""
        await self._write(
            f"record an MCP call of {call.agent}",
            "INSERT INTO mcp_calls (at, agent, run_id, task_id, server, method, name, outcome,"
            " seconds, bytes_in, bytes_out, arguments, result, why, cost_usd)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                to_epoch(call.at),
                call.agent,
                call.run_id,
                call.task_id,
                call.server,
                call.method,
                call.name[:MAX_TEXT],
                call.outcome,
                call.seconds,
                call.bytes_in,
                call.bytes_out,
                call.arguments[:MAX_TEXT],
                call.result[:MAX_TEXT],
                call.why[:MAX_TEXT],
                call.cost_usd,
            ),
        )

    async def calls(self, agent: str, limit: int = 20) -> list[McpCallRecord]:
        """``agent``'s last ``limit`` calls, the latest first."""
        rows = await self._all(
            "SELECT * FROM mcp_calls WHERE agent = ? ORDER BY id DESC LIMIT ?", (agent, limit)
        )
        return [_record(row) for row in rows]

    async def calls_of_run(self, run_id: int, limit: int = 20) -> list[McpCallRecord]:
        """Run ``run_id``'s last ``limit`` calls, the latest first."""
        rows = await self._all(
            "SELECT * FROM mcp_calls WHERE run_id = ? ORDER BY id DESC LIMIT ?", (run_id, limit)
        )
        return [_record(row) for row in rows]

    async def counts_of_runs(self, run_ids: list[int]) -> dict[int, tuple[int, float]]:
        """For each of ``run_ids`` that made calls: how many, and the dollars billed."""
        if not run_ids:
            return {}
        marks = ", ".join("?" for _ in run_ids)
        rows = await self._all(
            "SELECT run_id, COUNT(*), COALESCE(SUM(cost_usd), 0.0) FROM mcp_calls"
            f" WHERE run_id IN ({marks}) GROUP BY run_id",
            run_ids,
        )
        return {int(row[0]): (int(row[1]), float(row[2])) for row in rows}


def _record(row: Row) -> McpCallRecord:
    return McpCallRecord(
        at=from_epoch(row["at"]),
        agent=str(row["agent"]),
        run_id=None if row["run_id"] is None else int(row["run_id"]),
        task_id=None if row["task_id"] is None else int(row["task_id"]),
        server=str(row["server"]),
        method=str(row["method"]),
        name=str(row["name"]),
        outcome=str(row["outcome"]),
        seconds=float(row["seconds"]),
        bytes_in=int(row["bytes_in"]),
        bytes_out=int(row["bytes_out"]),
        arguments=str(row["arguments"]),
        result=str(row["result"]),
        why=str(row["why"]),
        cost_usd=None if row["cost_usd"] is None else float(row["cost_usd"]),
        id=int(row["id"]),
    )

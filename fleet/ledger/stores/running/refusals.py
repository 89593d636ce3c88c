"""The ledger's ``egress_refusals`` table (migration 13): what each agent was refused on its
way out — by the allow-list's forward proxy (``egress``), as an unknown endpoint at the
metering proxy (``proxy``) or by the git door (``git``, migration 21) — counted per
destination and reason, so ``egress NAME`` and ``ps`` show it and it outlives a restart —
and in ``egress_refusal_times`` (migration 24) counted per agent and second, so a forge run's
footer counts the refusals of its own span only (:meth:`RefusalsStore.refused_between`)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from fleet.ledger.database.access import Store
from fleet.ledger.records.epoch import from_epoch, to_epoch

MAX_ROWS_PER_AGENT = 200
"""Distinct (source, target, reason) rows kept per agent; beyond, refusals count under
``(other)``, so an agent trying ever new names cannot grow the ledger without end."""
OTHER = "(other)"


@dataclass(frozen=True, slots=True)
class RefusalCount:
    """How often one agent was refused one destination for one reason."""

    agent: str
    source: str  # 'egress' (the forward proxy), 'proxy' (the metering proxy) or 'git' (the door)
    target: str
    why: str
    count: int
    first_at: datetime
    last_at: datetime


class RefusalsStore(Store):
    """What agents were refused on their way out, counted."""

    async def add_refusals(
        self, agent: str, source: str, target: str, why: str, count: int = 1
    ) -> None:
        """Count ``count`` more refusals of ``agent`` for ``target`` and ``why``."""
        at = to_epoch(self._clock.now())
        async with self._transaction(f"count refused egress of {agent}") as conn:
            counted = await conn.execute_fetchall(
                "SELECT COUNT(*) FROM egress_refusals WHERE agent = ?", (agent,)
            )
            known = await conn.execute_fetchall(
                "SELECT 1 FROM egress_refusals WHERE agent = ? AND source = ? AND target = ?"
                " AND why = ?",
                (agent, source, target, why),
            )
            if not known and counted and counted[0][0] >= MAX_ROWS_PER_AGENT:
                target, why = OTHER, OTHER
            await conn.execute(
                "INSERT INTO egress_refusals (agent, source, target, why, count, first_at, last_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (agent, source, target, why)"
                " DO UPDATE SET count = egress_refusals.count + excluded.count,"
                " last_at = excluded.last_at",
                (agent, source, target, why, count, at, at),
            )
            await conn.execute(
                "INSERT INTO egress_refusal_times (agent, at, count) VALUES (?, ?, ?)"
                " ON CONFLICT (agent, at) DO UPDATE"
                " SET count = egress_refusal_times.count + excluded.count",
                (agent, float(int(at)), count),
            )

    async def refusals(self, agent: str | None = None) -> list[RefusalCount]:
        """The refusal counts of ``agent`` (or every agent), the latest first."""
        where, params = ("WHERE agent = ?", (agent,)) if agent is not None else ("", ())
        rows = await self._all(
            f"SELECT * FROM egress_refusals {where}"
            " ORDER BY last_at DESC, target, agent, source, why",
            params,
        )
        return [
            RefusalCount(
                row["agent"],
                row["source"],
                row["target"],
                row["why"],
                row["count"],
                from_epoch(row["first_at"]),
                from_epoch(row["last_at"]),
            )
            for row in rows
        ]

    async def refused_between(self, agent: str, since: datetime, until: datetime) -> int:
        """How many refusals of ``agent`` were counted from ``since`` to ``until`` (both
        included, to the second: one run's span)."""
        rows = await self._all(
            "SELECT SUM(count) FROM egress_refusal_times WHERE agent = ? AND at >= ? AND at <= ?",
            (agent, float(int(to_epoch(since))), to_epoch(until)),
        )
        return int(rows[0][0] or 0) if rows else 0

    async def refusal_totals(self) -> dict[str, int]:
        """Every agent's number of refusals, for ``ps``."""
        rows = await self._all(
            "SELECT agent, SUM(count) AS total FROM egress_refusals GROUP BY agent", ()
        )
        return {row["agent"]: int(row["total"]) for row in rows}

"""The ledger's roster marks on ``agents`` (migration 10): which agents the roster defines,
which it dropped and when, and which an operator forgot.

An agent dropped from the roster keeps its row (and keeps running, if it runs); the mark
is what tells the watchdog not to restart it, so it lives here rather than in the memory
of one Fleetwarden process. A forgotten agent keeps its row too: its runs reference it and
stay for reports, and its usage is kept by name anyway. Every query that lists agents
leaves forgotten ones out; a ``spawn`` of the name clears the mark
(:meth:`~fleet.ledger.store.Ledger.upsert_agent`).
"""

from __future__ import annotations

from collections.abc import Collection

from fleet.ledger.access import Store
from fleet.names import AgentName


class RosterMarksLedger:
    """The roster-mark queries of :class:`~fleet.ledger.store.Ledger`."""

    async def sync_roster(self: Store, names: Collection[str]) -> list[AgentName]:
        """Mark the agents called ``names`` as the roster's (an earlier removal undone), and
        the roster's agents not among them as removed now; return the newly removed ones,
        by name. Forgotten agents are left as they are."""
        now = self._epoch(None)
        wanted = set(names)
        removed: list[AgentName] = []
        async with self._transaction("record the roster") as conn:
            rows = await conn.execute_fetchall(
                "SELECT name, origin, removed_at FROM agents WHERE forgotten_at IS NULL"
                " ORDER BY name"
            )
            for name, origin, removed_at in rows:
                if name in wanted and (origin != "roster" or removed_at is not None):
                    await conn.execute(
                        "UPDATE agents SET origin = 'roster', removed_at = NULL, updated_at = ?"
                        " WHERE name = ?",
                        (now, name),
                    )
                elif name not in wanted and origin == "roster" and removed_at is None:
                    await conn.execute(
                        "UPDATE agents SET removed_at = ?, updated_at = ? WHERE name = ?",
                        (now, now, name),
                    )
                    removed.append(AgentName(name))
        return removed

    async def forget_agent(self: Store, name: str) -> bool:
        """Leave ``name`` out of every list of agents from now on (``ps``, the watchdog); its
        runs, usage and audit stay. Whether there was such an agent to forget."""
        now = self._epoch(None)
        async with self._transaction(f"forget agent {name}") as conn:
            cursor = await conn.execute(
                "UPDATE agents SET forgotten_at = ?, desired_state = 'stopped',"
                " next_restart_at = NULL, updated_at = ? WHERE name = ? AND forgotten_at IS NULL",
                (now, now, name),
            )
            return cursor.rowcount > 0

"""The ledger's ``freezes`` table (migration 8): agents whose processes a budget's
``freeze`` cutoff has paused, why, and since when — so ``ps`` says so, the watchdog leaves
them be, and a restart of Fleetwarden still knows to continue them at the reset."""

from __future__ import annotations

import socket
from dataclasses import dataclass
from datetime import datetime

from fleet.ledger.access import Store
from fleet.ledger.rows import from_epoch, to_epoch


@dataclass(frozen=True, slots=True)
class Freeze:
    """An agent paused by a budget's cutoff."""

    agent: str
    budget: str  # the budget's key
    reason: str
    frozen_at: datetime
    host: str


class FreezesLedger:
    """The freeze queries of :class:`~fleet.ledger.store.Ledger`."""

    async def add_freeze(self: Store, agent: str, budget: str, reason: str) -> Freeze:
        freeze = Freeze(agent, budget, reason, self._clock.now(), socket.gethostname())
        async with self._transaction(f"record that {agent} is frozen") as conn:
            await conn.execute(
                "INSERT OR REPLACE INTO freezes (agent, budget, reason, frozen_at, host)"
                " VALUES (?, ?, ?, ?, ?)",
                (agent, budget, reason, to_epoch(freeze.frozen_at), freeze.host),
            )
        return freeze

    async def remove_freeze(self: Store, agent: str) -> bool:
        """Forget ``agent``'s freeze; whether it had one."""
        async with self._transaction(f"record that {agent} is no longer frozen") as conn:
            cursor = await conn.execute("DELETE FROM freezes WHERE agent = ?", (agent,))
            return cursor.rowcount > 0

    async def freezes(self: Store) -> list[Freeze]:
        rows = await self._all("SELECT * FROM freezes ORDER BY frozen_at, agent", ())
        return [
            Freeze(
                row["agent"],
                row["budget"],
                row["reason"],
                from_epoch(row["frozen_at"]),
                row["host"],
            )
            for row in rows
        ]

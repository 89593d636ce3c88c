"""The ledger's ``freezes`` table (migrations 8 and 14): agents whose processes are paused —
by a budget's ``freeze`` cutoff or by a person's ``freeze`` — why, by whom and since when,
so ``ps`` says so, the watchdog leaves them be, and a restart of Fleetwarden still knows to
continue them at the reset (a budget's) or to keep them paused until ``resume`` (a
person's)."""

from __future__ import annotations

import socket
from dataclasses import dataclass
from datetime import datetime

from fleet.ledger.access import Store
from fleet.ledger.engine import Row
from fleet.ledger.rows import from_epoch, to_epoch


@dataclass(frozen=True, slots=True)
class Freeze:
    """An agent paused by a budget's cutoff (``budget``), or by a person (``by``)."""

    agent: str
    budget: str  # the budget's key; empty for a person's freeze
    reason: str
    frozen_at: datetime
    host: str
    by: str | None = None  # who froze it by hand; None for a budget's cutoff

    @property
    def by_hand(self) -> bool:
        """Whether a person froze it (only ``resume`` lifts it, never a budget)."""
        return self.by is not None


class FreezesLedger:
    """The freeze queries of :class:`~fleet.ledger.store.Ledger`."""

    async def add_freeze(
        self: Store, agent: str, budget: str, reason: str, *, by: str | None = None
    ) -> Freeze:
        """Record ``agent`` as frozen. A person's freeze replaces a budget's; a budget's
        never replaces a person's (that one stays, and is returned)."""
        freeze = Freeze(agent, budget, reason, self._clock.now(), socket.gethostname(), by)
        async with self._transaction(f"record that {agent} is frozen") as conn:
            await conn.execute(
                "INSERT INTO freezes (agent, budget, reason, frozen_at, host, frozen_by)"
                " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (agent) DO UPDATE SET"
                " budget = excluded.budget, reason = excluded.reason,"
                " frozen_at = excluded.frozen_at, host = excluded.host,"
                " frozen_by = excluded.frozen_by"
                " WHERE excluded.frozen_by IS NOT NULL OR freezes.frozen_by IS NULL",
                (agent, budget, reason, to_epoch(freeze.frozen_at), freeze.host, by),
            )
        kept = await self._one("SELECT * FROM freezes WHERE agent = ?", (agent,))
        return freeze if kept is None else _freeze(kept)

    async def remove_freeze(self: Store, agent: str) -> bool:
        """Forget ``agent``'s freeze; whether it had one."""
        async with self._transaction(f"record that {agent} is no longer frozen") as conn:
            cursor = await conn.execute("DELETE FROM freezes WHERE agent = ?", (agent,))
            return cursor.rowcount > 0

    async def freezes(self: Store) -> list[Freeze]:
        rows = await self._all("SELECT * FROM freezes ORDER BY frozen_at, agent", ())
        return [_freeze(row) for row in rows]


def _freeze(row: Row) -> Freeze:
    return Freeze(
        row["agent"],
        row["budget"],
        row["reason"],
        from_epoch(row["frozen_at"]),
        row["host"],
        row["frozen_by"],
    )

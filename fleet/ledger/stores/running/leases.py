"""The ledger's ``leases`` table (migration 17): which orchestrator may act.

Two ``fleetwarden run`` processes sharing a PostgreSQL ledger (an active one and its
standby, on different machines) take turns by a lease: a row naming its holder, the time
it expires unless renewed, and an ``epoch`` that grows at every change of holder. Taking
it, renewing it and checking it all happen in the ledger's exclusive write transaction, so
two contenders can never both win.

Fencing: once a holder has the lease, :meth:`~fleet.ledger.database.access.Access.fence` makes every
later write transaction of that ledger check, inside the transaction, that the row still
names it with the same epoch — a holder that was paused (``SIGSTOP``, a frozen VM) past its
expiry and woke after another took over finds every write refused with
:class:`~fleet.errors.LeaseLost`, whatever its own clock says, and steps down.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from fleet.ledger.database.access import Store
from fleet.ledger.database.engine import Row
from fleet.ledger.records.epoch import from_epoch, to_epoch

__all__ = ["Lease", "LeasesStore"]


@dataclass(frozen=True, slots=True)
class Lease:
    """A lease as the ledger has it now."""

    name: str
    holder: str
    epoch: int
    acquired_at: datetime
    expires_at: datetime

    def held_by(self, holder: str) -> bool:
        return self.holder == holder


class LeasesStore(Store):
    """Leases: which orchestrator may act."""

    async def acquire_lease(self, name: str, holder: str, ttl: float) -> Lease:
        """Take lease ``name`` for ``holder`` for ``ttl`` seconds, or renew it: it is taken
        when free or expired, renewed when ``holder`` has it (same epoch). Returns the lease
        as it now stands — held by someone else when it was not to be had. A fenced holder
        that lost it gets :class:`LeaseLost` instead (its transaction is fenced)."""
        now = to_epoch(self._clock.now())
        async with self._transaction(f"take the {name} lease") as conn:
            rows = await conn.execute_fetchall("SELECT * FROM leases WHERE name = ?", (name,))
            if not rows:
                await conn.execute(
                    "INSERT INTO leases (name, holder, epoch, acquired_at, renewed_at,"
                    " expires_at) VALUES (?, ?, 1, ?, ?, ?)",
                    (name, holder, now, now, now + ttl),
                )
            elif rows[0]["holder"] == holder:
                await conn.execute(
                    "UPDATE leases SET renewed_at = ?, expires_at = ? WHERE name = ?",
                    (now, now + ttl, name),
                )
            elif float(rows[0]["expires_at"]) <= now:
                await conn.execute(
                    "UPDATE leases SET holder = ?, epoch = epoch + 1, acquired_at = ?,"
                    " renewed_at = ?, expires_at = ? WHERE name = ?",
                    (holder, now, now, now + ttl, name),
                )
            rows = await conn.execute_fetchall("SELECT * FROM leases WHERE name = ?", (name,))
            return _lease(rows[0])

    async def release_lease(self, name: str, holder: str) -> bool:
        """Give lease ``name`` up at once (a clean stop), if ``holder`` has it: a standby
        takes over at its next try rather than at the expiry. Whether it was released."""
        async with self._transaction(f"release the {name} lease", fenced=False) as conn:
            cursor = await conn.execute(
                "UPDATE leases SET expires_at = renewed_at WHERE name = ? AND holder = ?",
                (name, holder),
            )
            return cursor.rowcount > 0

    async def lease(self, name: str) -> Lease | None:
        """Lease ``name`` as it stands, if anyone ever took it."""
        row = await self._one("SELECT * FROM leases WHERE name = ?", (name,))
        return None if row is None else _lease(row)


def _lease(r: Row) -> Lease:
    return Lease(
        name=str(r["name"]),
        holder=str(r["holder"]),
        epoch=int(r["epoch"]),
        acquired_at=from_epoch(float(r["acquired_at"])),
        expires_at=from_epoch(float(r["expires_at"])),
    )

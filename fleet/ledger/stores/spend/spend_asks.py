"""The ledger's ``spend_asks`` table (migration 27): each ask a run at its cap put to its
operators (``cutoff: ask``) — the raise Fleetwarden offered, in which measure, and what
happens when nobody answers — and how it was settled. The ask itself is an approval
request on the ``spend`` channel (:mod:`fleet.ledger.stores.operators.approvals`); what is carried
out
is read from here alone."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from fleet.ledger.database.access import Store
from fleet.ledger.database.engine import Row
from fleet.ledger.records.epoch import from_epoch, to_epoch

SpendOutcome = Literal["raised", "stopped", "frozen", "closed"]


@dataclass(frozen=True, slots=True)
class SpendAsk:
    """One ask at a run's cap: ``offer`` more of ``unit`` (``usd`` or ``tokens``) on its
    ``cap``, or ``fallback`` (``stop`` or ``freeze``) when nobody answers in time."""

    approval_id: str
    agent: str
    run_id: int
    unit: str
    cap: float
    offer: float
    fallback: str
    asked_at: datetime
    outcome: SpendOutcome | None = None
    amount: float | None = None  # the raise granted
    settled_by: str | None = None
    settled_at: datetime | None = None


class SpendAsksStore(Store):
    """Asks at a run's cap, and how each was settled."""

    async def record_spend_ask(self, ask: SpendAsk) -> None:
        async with self._transaction(f"record the spend ask of {ask.agent}") as conn:
            await conn.execute(
                "INSERT INTO spend_asks (approval_id, agent, run_id, unit, cap, offer, fallback,"
                " asked_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (approval_id) DO NOTHING",
                (
                    ask.approval_id,
                    ask.agent,
                    ask.run_id,
                    ask.unit,
                    ask.cap,
                    ask.offer,
                    ask.fallback,
                    to_epoch(ask.asked_at),
                ),
            )

    async def spend_ask(self, approval_id: str) -> SpendAsk | None:
        row = await self._one("SELECT * FROM spend_asks WHERE approval_id = ?", (approval_id,))
        return None if row is None else _ask(row)

    async def spend_asks_of(self, agent: str, run_id: int) -> list[SpendAsk]:
        """``agent``'s asks in run ``run_id``, the latest first."""
        rows = await self._all(
            "SELECT * FROM spend_asks WHERE agent = ? AND run_id = ?"
            " ORDER BY asked_at DESC, approval_id",
            (agent, run_id),
        )
        return [_ask(row) for row in rows]

    async def settle_spend_ask(
        self, approval_id: str, outcome: SpendOutcome, amount: float | None, by: str | None
    ) -> bool:
        """Record how the ask was settled, once; whether this was the first time."""
        async with self._transaction("settle a spend ask") as conn:
            cursor = await conn.execute(
                "UPDATE spend_asks SET outcome = ?, amount = ?, settled_by = ?, settled_at = ?"
                " WHERE approval_id = ? AND outcome IS NULL",
                (outcome, amount, by, to_epoch(self._clock.now()), approval_id),
            )
            return cursor.rowcount > 0


def _ask(row: Row) -> SpendAsk:
    settled = row["settled_at"]
    return SpendAsk(
        approval_id=row["approval_id"],
        agent=row["agent"],
        run_id=int(row["run_id"]),
        unit=row["unit"],
        cap=float(row["cap"]),
        offer=float(row["offer"]),
        fallback=row["fallback"],
        asked_at=from_epoch(row["asked_at"]),
        outcome=row["outcome"],
        amount=None if row["amount"] is None else float(row["amount"]),
        settled_by=row["settled_by"],
        settled_at=None if settled is None else from_epoch(settled),
    )

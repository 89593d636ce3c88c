"""A run's quote as the ledger keeps it (``run_quotes``, migration 26): what the run was
expected to cost when it was admitted — the earlier runs it was reckoned from, their median
and p90 in tokens and dollars, the run's cap — and what it holds against the budgets.
How a quote is reckoned and told is :mod:`fleet.budgets.quoting`'s."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

Pair = tuple[float, float]
"""A median and a p90."""


@dataclass(frozen=True, slots=True)
class Quote:
    """What a run of ``agent`` on ``runtime`` with ``model`` (``None``: the runtime's
    own) is expected to cost, from ``basis`` (the ids of the earlier finished runs it was
    reckoned from, newest first): ``tokens`` and ``usd`` are each a median and a p90
    (``usd`` over the ``priced`` runs among them; ``None`` without any); ``cap_tokens``
    and ``cap_usd``: the run's own cap; ``hold_tokens`` and ``hold_usd``: what it holds
    against the budgets in each unit — the p90 or the cap if lower, ``None`` when there
    is neither."""

    agent: str
    runtime: str
    model: str | None
    basis: tuple[int, ...]
    tokens: Pair | None
    usd: Pair | None
    priced: int
    cap_tokens: int | None
    cap_usd: float | None
    hold_tokens: float | None
    hold_usd: float | None
    quoted_at: datetime

    @property
    def runs(self) -> int:
        """How many earlier runs it was reckoned from."""
        return len(self.basis)

    def hold(self, unit: str) -> float | None:
        """What it holds in ``unit`` (``tokens`` or ``usd``)."""
        return self.hold_usd if unit == "usd" else self.hold_tokens

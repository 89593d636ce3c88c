"""The ledger's ``run_quotes`` table (migration 26): each run's quote, kept once the run is
recorded, so what a run was expected to cost is told the same before, during and after it
(a spawn's answer, a forge run's status comment, ``runs NAME``) and the open runs' holds
are rebuilt from it when Fleetwarden starts again."""

from __future__ import annotations

from collections.abc import Sequence

from fleet.ledger.database.access import Store
from fleet.ledger.database.engine import Row
from fleet.ledger.records.epoch import from_epoch, to_epoch
from fleet.ledger.records.quotes import Quote

_COLUMNS = (
    "run_id, agent, runtime, model, basis, priced, median_tokens, p90_tokens, median_usd,"
    " p90_usd, cap_tokens, cap_usd, hold_tokens, hold_usd, quoted_at"
)


class QuotesStore(Store):
    """Runs' quotes, one per run."""

    async def keep_quote(self, run_id: int, quote: Quote) -> None:
        """Keep ``quote`` as run ``run_id``'s; a run keeps the first quote it was given."""
        tokens, usd = quote.tokens, quote.usd
        async with self._transaction(f"keep the quote of run {run_id}") as conn:
            await conn.execute(
                f"INSERT INTO run_quotes ({_COLUMNS}) VALUES"
                " (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
                " ON CONFLICT (run_id) DO NOTHING",
                (
                    run_id,
                    quote.agent,
                    quote.runtime,
                    quote.model,
                    ",".join(str(i) for i in quote.basis),
                    quote.priced,
                    None if tokens is None else tokens[0],
                    None if tokens is None else tokens[1],
                    None if usd is None else usd[0],
                    None if usd is None else usd[1],
                    quote.cap_tokens,
                    quote.cap_usd,
                    quote.hold_tokens,
                    quote.hold_usd,
                    to_epoch(quote.quoted_at),
                ),
            )

    async def quote_of(self, run_id: int) -> Quote | None:
        """Run ``run_id``'s quote (``None``: it was given none, as runs before quotes were)."""
        row = await self._one(f"SELECT {_COLUMNS} FROM run_quotes WHERE run_id = ?", (run_id,))
        return None if row is None else _quote(row)

    async def quotes_of(self, run_ids: Sequence[int]) -> dict[int, Quote]:
        """The quotes of ``run_ids`` that have one, by run id."""
        if not run_ids:
            return {}
        marks = ", ".join("?" for _ in run_ids)
        rows = await self._all(
            f"SELECT {_COLUMNS} FROM run_quotes WHERE run_id IN ({marks})", tuple(run_ids)
        )
        return {int(row["run_id"]): _quote(row) for row in rows}


def _pair(row: Row, unit: str) -> tuple[float, float] | None:
    median, p90 = row[f"median_{unit}"], row[f"p90_{unit}"]
    return None if median is None or p90 is None else (float(median), float(p90))


def _optional(value: object) -> float | None:
    return None if value is None else float(str(value))


def _quote(row: Row) -> Quote:
    basis = str(row["basis"] or "")
    cap_tokens = row["cap_tokens"]
    return Quote(
        agent=str(row["agent"]),
        runtime=str(row["runtime"]),
        model=row["model"],
        basis=tuple(int(i) for i in basis.split(",") if i),
        tokens=_pair(row, "tokens"),
        usd=_pair(row, "usd"),
        priced=int(row["priced"]),
        cap_tokens=None if cap_tokens is None else int(cap_tokens),
        cap_usd=_optional(row["cap_usd"]),
        hold_tokens=_optional(row["hold_tokens"]),
        hold_usd=_optional(row["hold_usd"]),
        quoted_at=from_epoch(float(row["quoted_at"])),
    )

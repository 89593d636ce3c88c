"""The ledger's account tables (migration 7): ``account_assignments`` (which account each
agent's requests to a provider go to), ``account_marks`` (accounts found unusable, and
until when) and ``quota_windows`` (the latest word of each provider window per account).

:class:`AccountsStore` is the
:class:`~fleet.accounts.state.AccountLedger` the account book writes through.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

from fleet.accounts.quota import QuotaStatus, QuotaWindow
from fleet.accounts.state import Assignment, Health, Mark
from fleet.ledger.database.access import Store
from fleet.ledger.database.engine import replace_into
from fleet.ledger.records.epoch import from_epoch, to_epoch


class AccountsStore(Store):
    """Accounts' assignments, marks and quota windows."""

    async def account_assignments(self) -> list[Assignment]:
        rows = await self._all("SELECT * FROM account_assignments ORDER BY agent, provider", ())
        return [
            Assignment(
                row["agent"],
                row["provider"],
                row["account"],
                from_epoch(row["at"]),
                row["runtime"],
                row["wanted"],
            )
            for row in rows
        ]

    async def account_marks(self) -> list[Mark]:
        rows = await self._all("SELECT * FROM account_marks ORDER BY account", ())
        return [
            Mark(
                row["account"],
                Health(row["health"]),
                row["reason"],
                None if row["until"] is None else from_epoch(row["until"]),
                from_epoch(row["at"]),
            )
            for row in rows
        ]

    async def quota_windows(self) -> list[QuotaWindow]:
        rows = await self._all("SELECT * FROM quota_windows ORDER BY account, window", ())
        return [
            QuotaWindow(
                account=row["account"],
                window=row["window"],
                used=row["used"],
                resets_at=None if row["resets_at"] is None else from_epoch(row["resets_at"]),
                status=QuotaStatus(row["status"]),
                observed_at=from_epoch(row["observed_at"]),
                source=row["source"],
                length=(
                    None
                    if row["length_seconds"] is None
                    else timedelta(seconds=row["length_seconds"])
                ),
            )
            for row in rows
        ]

    async def save_account_state(
        self,
        assignments: Sequence[Assignment],
        marks: Sequence[Mark],
        windows: Sequence[QuotaWindow],
    ) -> None:
        """Write what changed in one transaction; a window replaces only an older one."""
        latest = {(a.agent, a.provider): a for a in assignments}  # the last word per key
        assignment_rows = [
            (a.agent, a.provider, a.account, to_epoch(a.at), a.runtime, a.wanted)
            for a in latest.values()
            if a.account
        ]
        dropped = [key for key, a in latest.items() if not a.account]
        mark_rows = [
            (m.account, m.health.value, m.reason, _epoch_or_none(m), to_epoch(m.at)) for m in marks
        ]
        window_rows = [
            (
                w.account,
                w.window,
                w.used,
                None if w.resets_at is None else to_epoch(w.resets_at),
                w.status.value,
                to_epoch(w.observed_at),
                w.source,
                None if w.length is None else w.length.total_seconds(),
            )
            for w in windows
        ]
        async with self._transaction("save account state") as conn:
            await conn.executemany(
                "DELETE FROM account_assignments WHERE agent = ? AND provider = ?", dropped
            )
            await conn.executemany(
                "INSERT INTO account_assignments (agent, provider, account, at, runtime, wanted)"
                " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (agent, provider) DO UPDATE SET"
                " account = excluded.account, at = excluded.at, runtime = excluded.runtime,"
                " wanted = excluded.wanted",
                assignment_rows,
            )
            await conn.executemany(
                replace_into(
                    "account_marks", ("account",), ("account", "health", "reason", "until", "at")
                ),
                mark_rows,
            )
            await conn.executemany(
                "INSERT INTO quota_windows (account, window, used, resets_at, status,"
                " observed_at, source, length_seconds) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
                " ON CONFLICT (account, window) DO UPDATE SET used = excluded.used,"
                " resets_at = excluded.resets_at, status = excluded.status,"
                " observed_at = excluded.observed_at, source = excluded.source,"
                " length_seconds = excluded.length_seconds"
                " WHERE excluded.observed_at >= quota_windows.observed_at",
                window_rows,
            )


def _epoch_or_none(mark: Mark) -> float | None:
    return None if mark.until is None else to_epoch(mark.until)

"""What of the account book outlives a restart: which account each agent is on, accounts
found unusable, the latest quota windows (:mod:`fleet.accounts.state`), written to the
ledger soon after they change — at once, then at most once a :data:`FLUSH_INTERVAL`
(:class:`~fleet.timing.debounce.Debounced`) — never on a request's path. A write that
fails keeps what it held for the next one; what changed meanwhile is newer and wins."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Final

from fleet.accounts.quota import QuotaWindow
from fleet.accounts.state import AccountLedger, Assignment, Mark
from fleet.timing.debounce import Debounced

FLUSH_INTERVAL: Final = 1.0  # seconds between ledger writes of what changed
REWRITE_AFTER: Final = timedelta(minutes=1)  # an unchanged window is written this often


class Keeping:
    """What changed and is not written yet; ``ledger`` (``None``: nothing is kept)."""

    def __init__(self, ledger: AccountLedger | None) -> None:
        self.ledger = ledger
        self.assignments: list[Assignment] = []
        self.marks: dict[str, Mark] = {}
        self.windows: dict[tuple[str, str], QuotaWindow] = {}
        self._written: dict[tuple[str, str], datetime] = {}  # when each went to the ledger
        self._writer = Debounced(
            self.flush,
            FLUSH_INTERVAL,
            name="account-book",
            failure="could not write account state to the ledger",
        )

    def start(self) -> None:
        self._writer.start()

    async def stop(self) -> None:
        """Stop the writer, then write what is left."""
        await self._writer.stop()
        await self.flush()

    def assigned(self, assignment: Assignment) -> None:
        self.assignments.append(assignment)
        self._writer.poke()

    def marked(self, mark: Mark) -> None:
        self.marks[mark.account] = mark
        self._writer.poke()

    def observed(self, held: QuotaWindow | None, seen: QuotaWindow) -> None:
        """``seen`` replaced ``held``: kept when it is news (:meth:`news`)."""
        if self.news(held, seen):
            key = (seen.account, seen.window)
            self.windows[key] = seen
            self._written[key] = seen.observed_at
        self._writer.poke()

    def news(self, held: QuotaWindow | None, seen: QuotaWindow) -> bool:
        """Whether ``seen`` is worth a ledger write: a change, or a minute since the window
        was last written (every answer repeats the headers; a busy fleet must not write per
        request, nor let the ledger's copy go stale)."""
        written = self._written.get((seen.account, seen.window))
        if held is None or written is None:
            return True
        same = (held.used, held.resets_at, held.status) == (seen.used, seen.resets_at, seen.status)
        return not same or seen.observed_at - written >= REWRITE_AFTER

    async def flush(self) -> None:
        """Write what changed to the ledger."""
        if self.ledger is None:
            self.assignments.clear()
            self.marks.clear()
            self.windows.clear()
            return
        assignments, self.assignments = self.assignments, []
        marks, self.marks = self.marks, {}
        windows, self.windows = self.windows, {}
        if not (assignments or marks or windows):
            return
        try:
            await self.ledger.save_account_state(
                assignments, list(marks.values()), list(windows.values())
            )
        except BaseException:
            # Kept for the next write; what changed meanwhile is newer and wins.
            self.assignments[:0] = assignments
            self.marks = {**marks, **self.marks}
            self.windows = {**windows, **self.windows}
            raise

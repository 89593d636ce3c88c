"""Claims group-committed: :class:`ClaimGroup`, for the writes a forge's deliveries make.

A webhook delivery is taken once: its body's digest and its delivery id are claimed in the
ledger (:data:`~fleet.ledger.database.appender.Claim`) before it is answered. Deliveries
come in bursts, so claims are group-committed: a claim made while another batch is being
written waits for the next transaction and goes in with every claim made meanwhile — on
PostgreSQL, where each write is a round trip, sixteen deliveries at once cost a
transaction or two, not sixteen. No claim waits for company: the first of an idle ledger
is written at once, alone; on SQLite a claim is made on the event loop when the file is
free (:class:`~fleet.ledger.database.appender.SqliteAppender`), so one is written before
the next can come, and claims group up only while the file is another's and they wait on
the thread.

Each caller still returns only once its own claim is committed, with its own answer (a
caller cancelled before its claim is on its way withdraws it; once on its way, it is
written with its batch, shielded, whoever stays to hear it): the claims of a batch are
made in the order they came, so of two claims of one key in a batch the first holds and
the second does not, as if each had been a transaction of its own. A batch that fails (the
ledger refused it, the lease was lost) fails every claim in it: none is answered as held.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from fleet.errors import LedgerError
from fleet.ledger.database.access import Access
from fleet.ledger.database.appender import Claim


@dataclass(slots=True)
class _Pending:
    claim: Claim
    held: asyncio.Future[bool]


@dataclass(slots=True)
class ClaimGroup:
    """Claims waiting for the next write, and the lock one writer at a time holds."""

    access: Access
    what: str
    """What a batch writes, in words for a failure: ``cannot record {what} (n)``."""
    pending: list[_Pending] = field(default_factory=list)
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    async def claim(self, claim: Claim) -> bool:
        """Whether ``claim`` holds, once it is committed (with whatever claims came while
        the one before was written); :class:`LedgerError` or :class:`LeaseLost` if its
        batch was refused."""
        if not self.pending and not self.lock.locked():  # nothing on its way: alone, now
            async with self.lock:
                [holds] = await self.access.claim(f"record {self.what} (1)", [claim])
            return holds
        held: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        held.add_done_callback(_retrieved)  # a caller cancelled meanwhile never reads it
        mine = _Pending(claim, held)
        self.pending.append(mine)
        try:
            async with self.lock:
                if not held.done():  # nobody wrote it while we waited: write all there is
                    batch, self.pending = self.pending, []
                    # Shielded: a writer whose caller goes away still writes the batch.
                    await asyncio.shield(self._write(batch))
        except asyncio.CancelledError:
            if mine in self.pending:  # not on its way yet: withdrawn, never written
                self.pending.remove(mine)
            raise
        return await held

    async def _write(self, batch: list[_Pending]) -> None:
        """Make ``batch``'s claims in one transaction and settle each; never raises."""
        try:
            made = await self.access.claim(
                f"record {self.what} ({len(batch)})", [p.claim for p in batch]
            )
        except Exception as exc:
            for pending in batch:
                if not pending.held.done():
                    pending.held.set_exception(exc)
            return
        except BaseException:  # cancelled with the loop: nobody is left to tell
            for pending in batch:
                if not pending.held.done():
                    pending.held.set_exception(LedgerError(f"{self.what} not recorded: stopping"))
            raise
        for pending, holds in zip(batch, made, strict=True):
            if not pending.held.done():
                pending.held.set_result(holds)


def _retrieved(future: asyncio.Future[bool]) -> None:
    if not future.cancelled():
        future.exception()

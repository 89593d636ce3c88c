"""Active or standby: which of the orchestrators sharing a PostgreSQL ledger acts.

Two ``fleetwarden run`` processes on different machines, with the same config and the
same PostgreSQL ledger: the first to take the ledger's ``orchestrator`` lease
(:mod:`fleet.ledger.stores.running.leases`) is *active* — it connects to chat, runs the proxy, the
scheduler and the fleet — and renews the lease every third of its time to live; the other
is *standby*, says so in its log, and tries for the lease every second. When the active
one dies (``kill -9``, its machine lost) its lease expires and the standby takes it with
the next epoch, then starts everything: the ledger tells it what runs, what was answered
and what was posted.

An active orchestrator that finds the lease gone — it was paused past the expiry and
another took over — steps down at once: the ledger is fenced to its epoch, so nothing it
tries to write gets through, and :class:`LeaseKeeper` calls its ``on_lost`` to stop it.
The state machine::

    waiting (standby) ──take──► held (active) ──lost──► lost (stepped down)
                                     │
                                     └──stop──► released (the standby takes over at once)

A SQLite ledger is one machine's: it has no lease (the state dir's lock keeps it single).
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
import os
import secrets
import socket
from collections.abc import Callable
from typing import Final

from fleet.errors import LeaseLost, LedgerError
from fleet.ledger import Ledger
from fleet.ledger.stores.running.leases import Lease

log = logging.getLogger(__name__)

LEASE: Final = "orchestrator"
TTL: Final = 9.0
"""Seconds a lease lasts unrenewed: a standby takes over within this (plus its retry and
its start) after the active one dies."""
RETRY: Final = 1.0
"""Seconds between a standby's tries for the lease."""


class LeaseState(enum.Enum):
    WAITING = "waiting"
    HELD = "held"
    LOST = "lost"
    RELEASED = "released"


def holder_id() -> str:
    """This process, as the lease names it: its machine, pid and a nonce (a restarted
    process is a new holder)."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"


class LeaseKeeper:
    """Takes the orchestrator lease, keeps it renewed, and says when it is lost."""

    def __init__(
        self,
        ledger: Ledger,
        *,
        on_lost: Callable[[], None],
        holder: str | None = None,
        ttl: float = TTL,
        retry: float = RETRY,
    ) -> None:
        self._ledger = ledger
        self._on_lost = on_lost
        self.holder = holder or holder_id()
        self._ttl = ttl
        self._retry = retry
        self.state = LeaseState.WAITING
        self._renewing: asyncio.Task[None] | None = None
        self.lease: Lease | None = None

    async def take(self, stop: asyncio.Event) -> bool:
        """Wait until this process holds the lease (standby until then), fence the ledger
        to it and keep it renewed; ``False`` when ``stop`` is set first."""
        said_standby = False
        while not stop.is_set():
            try:
                lease = await self._ledger.leases.acquire_lease(LEASE, self.holder, self._ttl)
            except LedgerError as exc:
                log.warning("standby: cannot reach the ledger to take the lease: %s", exc)
            else:
                if lease.held_by(self.holder):
                    self._held(lease)
                    return True
                if not said_standby:
                    log.info(
                        "standby: %s is active (lease epoch %d, expires %s unless renewed); "
                        "taking over when it stops renewing",
                        lease.holder,
                        lease.epoch,
                        lease.expires_at.isoformat(timespec="seconds"),
                    )
                    said_standby = True
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self._retry)
        return False

    def _held(self, lease: Lease) -> None:
        self.lease = lease
        self.state = LeaseState.HELD
        self._ledger.fence(LEASE, self.holder, lease.epoch)
        log.info(
            "active: holding the orchestrator lease (epoch %d) as %s", lease.epoch, self.holder
        )
        self._renewing = asyncio.create_task(self._renew(), name="lease renewal")

    async def _renew(self) -> None:
        while True:
            await asyncio.sleep(self._ttl / 3)
            try:
                self.lease = await self._ledger.leases.acquire_lease(LEASE, self.holder, self._ttl)
            except LeaseLost as exc:
                self.state = LeaseState.LOST
                log.error("stepping down: %s", exc)
                self._on_lost()
                return
            except LedgerError as exc:
                # Nobody can take it while the ledger is away either; keep serving.
                log.warning("cannot renew the orchestrator lease (will retry): %s", exc)

    async def stop(self) -> None:
        """Stop renewing; a lease still held is released for the standby to take at once."""
        task, self._renewing = self._renewing, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self.state is LeaseState.HELD:
            try:
                await self._ledger.leases.release_lease(LEASE, self.holder)
                self.state = LeaseState.RELEASED
            except LedgerError as exc:
                log.warning("could not release the orchestrator lease: %s", exc)


class Standby:
    """The app's side of it: on a shared (PostgreSQL) ledger, wait as standby until the
    lease is ours; when another takes it, step down (``on_lost``: stop the app)."""

    def __init__(self, *, on_lost: Callable[[], None]) -> None:
        self._on_lost = on_lost
        self._keeper: LeaseKeeper | None = None
        self.stepped_down = False

    async def become_active(self, ledger: Ledger, stop: asyncio.Event) -> bool:
        """Whether this process may act: at once on a SQLite ledger (one machine's), else
        once it holds the lease; ``False`` if ``stop`` is set first."""
        if ledger.engine != "postgresql":
            return True
        self._keeper = LeaseKeeper(ledger, on_lost=self._lost)
        return await self._keeper.take(stop)

    def _lost(self) -> None:
        # The ledger refuses our writes already; systemd's restart brings us back as standby.
        self.stepped_down = True
        self._on_lost()

    async def stop(self) -> None:
        if self._keeper is not None:
            await self._keeper.stop()

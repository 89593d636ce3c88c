"""The ledger's ``heartbeats`` table: each agent's latest sign of life per source.

A fleet heartbeats all the time — a thousand agents beating every five seconds are two
hundred beats a second — so beats are group-committed: a beat that arrives while another
is being written waits for the next transaction and goes in with every beat that arrived
meanwhile, and writes are at least :data:`GROUP_WINDOW` apart, so a busy fleet's beats
cost twenty transactions a second, not one each. The window is short because a beat is
waited for: an agent's hook (Claude Code's before and after each tool) holds the agent until
its beat is answered. Each caller still
returns only once its own beat is in the ledger (as a single write would), an unknown
agent's beat is refused alone with :class:`UnknownAgent`, and the beat of an idle fleet,
the first in a window, is written at once.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import datetime
from typing import Final

from fleet.errors import LedgerError, UnknownAgent
from fleet.ledger.database.access import Access, Store
from fleet.ledger.records.epoch import from_epoch

_NAMES_PER_QUERY: Final = 500  # below SQLite's bound-parameter limit
GROUP_WINDOW: Final = 0.05
"""Seconds at least between two heartbeat writes: beats arriving closer together wait for
the next write (at most this long) and go in with it."""


@dataclass(slots=True)
class _Beat:
    agent: str
    source: str
    at: float
    written: asyncio.Future[None]


@dataclass(slots=True)
class BeatGroup:
    """Heartbeats waiting for the next write, and the lock one writer at a time holds."""

    pending: list[_Beat] = field(default_factory=list)
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    last_write: float = float("-inf")  # the event loop's time of the last write's start


class HeartbeatsStore(Store):
    """Each agent's latest sign of life per source, written in groups."""

    def __init__(self, access: Access) -> None:
        super().__init__(access)
        self._beats = BeatGroup()

    async def record_heartbeat(self, name: str, source: str, at: datetime | None = None) -> None:
        """Note a sign of life of ``name`` seen by ``source``; older news never wins.
        Returns once it is in the ledger (see the module for the group commit)."""
        written = asyncio.get_running_loop().create_future()
        written.add_done_callback(_retrieved)  # a caller cancelled meanwhile never reads it
        group = self._beats
        group.pending.append(_Beat(name, source, self._epoch(at), written))
        async with group.lock:
            if not written.done():  # nobody wrote it while we waited: write all there is
                loop = asyncio.get_running_loop()
                wait = group.last_write + GROUP_WINDOW - loop.time()
                if wait > 0:  # beats are coming fast: gather them a little longer
                    await asyncio.sleep(wait)
                group.last_write = loop.time()
                batch, group.pending = group.pending, []
                # Shielded: a writer whose caller goes away still writes the others' beats.
                await asyncio.shield(_write(self, batch))
        await written

    async def last_heartbeat(self, name: str) -> datetime | None:
        """The latest sign of life of ``name`` from any source."""
        row = await self._one("SELECT max(at) FROM heartbeats WHERE agent = ?", (name,))
        return None if row is None or row[0] is None else from_epoch(row[0])

    async def last_heartbeats(self) -> dict[str, tuple[datetime, str]]:
        """The newest heartbeat of every agent that has one: name -> (when, source)."""
        rows = await self._all(
            "SELECT agent, at, source FROM heartbeats h WHERE at = "
            "(SELECT MAX(at) FROM heartbeats WHERE agent = h.agent) ORDER BY agent, source",
            (),
        )
        return {str(r[0]): (from_epoch(r[1]), str(r[2])) for r in rows}


async def _write(store: HeartbeatsStore, batch: list[_Beat]) -> None:
    """Write ``batch`` in one transaction and settle each beat's future; never raises."""
    try:
        names = sorted({beat.agent for beat in batch})
        async with store._transaction(f"record {len(batch)} heartbeat(s)") as conn:
            known: set[str] = set()
            for at in range(0, len(names), _NAMES_PER_QUERY):
                chunk = names[at : at + _NAMES_PER_QUERY]
                marks = ", ".join("?" * len(chunk))
                rows = await conn.execute_fetchall(
                    f"SELECT name FROM agents WHERE name IN ({marks})", chunk
                )
                known.update(str(row[0]) for row in rows)
            await conn.executemany(
                "INSERT INTO heartbeats (agent, source, at) VALUES (?, ?, ?)"
                " ON CONFLICT (agent, source) DO UPDATE SET at = excluded.at"
                " WHERE excluded.at > heartbeats.at",
                [(beat.agent, beat.source, beat.at) for beat in batch if beat.agent in known],
            )
    except Exception as exc:
        for beat in batch:
            if not beat.written.done():
                beat.written.set_exception(exc)
        return
    except BaseException:  # cancelled with the loop: nobody is left to tell
        for beat in batch:
            if not beat.written.done():
                beat.written.set_exception(LedgerError("heartbeat not written: shutting down"))
        raise
    for beat in batch:
        if beat.written.done():
            continue
        if beat.agent in known:
            beat.written.set_result(None)
        else:
            beat.written.set_exception(UnknownAgent(f"no agent is called {beat.agent!r}"))


def _retrieved(future: asyncio.Future[None]) -> None:
    if not future.cancelled():
        future.exception()

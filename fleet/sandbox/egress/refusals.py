"""Refused egress, made visible: counted per agent in the ledger and told once an hour.

Whatever refuses an agent's way out — the allow-list's forward proxy on its egress door
(:mod:`fleet.sandbox.egress.egress_proxy`) or the metering proxy for an endpoint it does not know —
hands the :class:`~fleet.sandbox.egress.egress_proxy.Refusal` to :meth:`RefusalBook.note`, which
only counts it in memory (an agent retrying in a loop costs no write each time). Every
:data:`FLUSH_INTERVAL` seconds (:meth:`RefusalBook.tell`, a scheduler job) the counts go to
the ledger's ``egress_refusals`` (what ``egress NAME`` and ``ps`` show), and each agent
with refusals not yet told gets one notice — at most one per agent per
:data:`NOTICE_EVERY`, listing what was refused since the last.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Protocol

from fleet.ledger.stores.running.refusals import RefusalCount
from fleet.notices import Notice
from fleet.sandbox.egress.egress_proxy import Refusal
from fleet.timing.clock import Clock

log = logging.getLogger(__name__)

NOTICE_EVERY = timedelta(hours=1)
FLUSH_INTERVAL = 5.0
_SHOWN = 5  # destinations named in one notice

Key = tuple[str, str, str, str]  # agent, source, target, why


class RefusalStore(Protocol):
    """The ledger's refusal table."""

    async def add_refusals(
        self, agent: str, source: str, target: str, why: str, count: int = 1
    ) -> None: ...

    async def refusals(self, agent: str | None = None) -> list[RefusalCount]: ...

    async def refusal_totals(self) -> dict[str, int]: ...


def target_of(refusal: Refusal) -> str:
    """How a refusal's destination is shown: ``host:port``, or the path the proxy refused."""
    return refusal.host if refusal.port is None else f"{refusal.host}:{refusal.port}"


def notice_text(agent: str, refused: Counter[tuple[str, str]]) -> str:
    """The one notice about ``agent``'s refusals since its last one (pure)."""
    total = sum(refused.values())
    lines = [
        f"- `{target}`: {why} (×{count})" for (target, why), count in refused.most_common(_SHOWN)
    ]
    more = len(refused) - _SHOWN
    if more > 0:
        lines.append(f"- and {more} other destination(s)")
    return (
        f"⚠ **{agent}**: {total} egress attempt(s) refused since the last notice\n"
        + "\n".join(lines)
        + f"\n`egress {agent}` lists them; at most one such notice an hour per agent."
    )


class RefusalBook:
    """Counts refusals, keeps them in the ledger, and tells them in batched notices."""

    def __init__(
        self,
        ledger: RefusalStore,
        post: Callable[[Notice], Awaitable[object]] | None,
        clock: Clock,
        *,
        every: timedelta = NOTICE_EVERY,
    ) -> None:
        self._ledger = ledger
        self._post = post
        self._clock = clock
        self._every = every
        self._unsaved: Counter[Key] = Counter()
        self._untold: dict[str, Counter[tuple[str, str]]] = {}
        self._told_at: dict[str, datetime] = {}
        self._lock = asyncio.Lock()

    def note(self, refusal: Refusal) -> None:
        """Count one refusal (called where it happened: no I/O here)."""
        target = target_of(refusal)
        self._unsaved[(refusal.agent, refusal.source, target, refusal.why)] += 1
        self._untold.setdefault(refusal.agent, Counter())[(target, refusal.why)] += 1

    def proxy_refused(self, agent: str, why: str) -> None:
        """Count one request of ``agent`` the metering proxy refused (a path or provider it
        does not serve), and why."""
        self.note(Refusal(agent, "metering proxy", None, why, source="proxy"))

    def due(self, now: datetime) -> list[str]:
        """The agents whose refusals are to be told now (pure)."""
        return [
            agent
            for agent, refused in self._untold.items()
            if refused and (agent not in self._told_at or now - self._told_at[agent] >= self._every)
        ]

    async def save(self) -> None:
        """Write the counts to the ledger."""
        async with self._lock:
            unsaved, self._unsaved = self._unsaved, Counter()
            for (agent, source, target, why), count in unsaved.items():
                await self._ledger.add_refusals(agent, source, target, why, count)

    async def flush(self) -> None:
        """Write the counts to the ledger, then post the notices that are due."""
        await self.save()
        now = self._clock.now()
        for agent in self.due(now):
            refused = self._untold.pop(agent)
            self._told_at[agent] = now
            if self._post is not None:
                await self._post(
                    Notice(notice_text(agent, refused), tone="warning", agents=(agent,))
                )

    async def counts(self, agent: str) -> list[RefusalCount]:
        """``agent``'s refusals as the ledger has them, with those counted just now."""
        await self.save()
        return await self._ledger.refusals(agent)

    async def totals(self) -> dict[str, int]:
        """Every agent's number of refusals."""
        await self.save()
        return await self._ledger.refusal_totals()

    async def tell(self) -> None:
        """:meth:`flush`, a failure logged: a scheduler job every :data:`FLUSH_INTERVAL`
        seconds (what is not written stays counted for the next)."""
        try:
            await self.flush()
        except Exception:
            log.exception("could not record or tell egress refusals")

    async def stop(self) -> None:
        """What was counted, written (the scheduler, which tells, stopped before)."""
        try:
            await self.save()
        except Exception:
            log.exception("could not write the last egress refusals")

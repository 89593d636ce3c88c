"""A polled forge's round: its :class:`~fleet.forge.events.poller.Poller` asked for what
happened since the last round, each event found taken once by the ledger and handed to
forge work — unless the forge is rate limited (not asked until the limit lifts) or held
(its credential refused, its login not the config's: not asked until the config is
fixed)."""

from __future__ import annotations

from collections.abc import Sequence

from fleet.forge.api.rest import ForgeRateLimited
from fleet.forge.events.kept import kept
from fleet.forge.events.poller import Poller
from fleet.forge.model import ForgeApi, ForgeEvent
from fleet.forge.runs.work import ForgeWork
from fleet.forge.schema import ForgeEntry
from fleet.ledger.records.forge import Slug
from fleet.timing.clock import Clock


class ForgePolling:
    """One forge's polling, a round at a time (:meth:`round`), every :attr:`seconds`."""

    def __init__(self, poller: Poller, work: ForgeWork, seconds: float) -> None:
        self.forge = poller.forge
        self.seconds = seconds
        self._poller = poller
        self._work = work

    @classmethod
    def of(
        cls,
        forge: str,
        entry: ForgeEntry,
        api: ForgeApi,
        slugs: Sequence[Slug],
        *,
        work: ForgeWork,
        clock: Clock,
    ) -> ForgePolling:
        """``forge``'s polling of ``slugs``: its cursors kept in the ledger, its live runs'
        issues and pull requests watched. ``entry`` names how often (``poll_seconds``)."""
        assert entry.poll_seconds is not None

        async def watched() -> list[tuple[Slug, int, bool]]:
            found = []
            for r in await work.forge.forge_runs():
                if r.forge == forge:  # its issue, and its pull request once open
                    found.append((r.slug, r.issue, False))
                    if r.pull is not None:
                        found.append((r.slug, r.pull, True))
            return found

        poller = Poller(
            forge,
            entry,
            api,
            slugs,
            get_cursor=work.forge.forge_cursor,
            set_cursor=work.forge.set_forge_cursor,
            clock=clock,
            watched=watched,
        )
        return cls(poller, work, float(entry.poll_seconds))

    async def round(self) -> None:
        """Read the forge once and act on what is new. A rate limit holds the forge back;
        any other failure is the caller's to log (the next round runs all the same)."""
        work, forge = self._work, self.forge
        try:
            if work.quiet(forge) or forge in work.holds.held:
                return
            for event in await self._poller.poll_once():
                await self._take(event)
        except ForgeRateLimited as exc:
            work.holds.back_off(forge, exc)

    async def _take(self, event: ForgeEvent) -> None:
        if await self._work.forge.take_delivery(
            event.forge, event.delivery, event.name, kept(event)
        ):
            await self._work.receive(event)

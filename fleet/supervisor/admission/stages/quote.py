"""The quote's stage: the launch's quote on the runtime and model it will really run
(:mod:`fleet.supervisor.admission.quoted`), refused when it is over the launch's limit, and
its hold taken against every budget over it (:mod:`fleet.budgets.quoting.holds`; the
roster's own launches, and a launch of a running agent, which only reports the run, take
theirs unchecked) — a launch it does not fit waits in the spawn queue for a run to end."""

from __future__ import annotations

from fleet.budgets.quoting.holds import Holds
from fleet.budgets.quoting.service import Quoting
from fleet.supervisor.admission.quoted import Specs, quoted
from fleet.supervisor.admission.request import RESTARTS, LaunchRequest, Queued, Refused
from fleet.supervisor.admission.slots import Slots
from fleet.supervisor.admission.stages.chain import Admitting, Verdict, Wait


class QuoteStage:
    """Quotes and holds. ``quoting``: ``None`` where launches are not quoted; ``holds``:
    ``None`` where quotes hold nothing against the budgets."""

    name = "quote"

    def __init__(
        self, specs: Specs, quoting: Quoting | None, holds: Holds | None, slots: Slots | None
    ) -> None:
        self._specs = specs
        self.quoting = quoting
        self.holds = holds
        self._slots = slots

    async def admit(self, admitting: Admitting) -> Verdict:
        request, quoting = admitting.request, self.quoting
        if quoting is None or request.origin in RESTARTS:  # a restart is not quoted
            return None
        quote, over = await quoted(request, self._specs, quoting)
        admitting.quote = quote
        if over is not None:
            return Refused(over, quote)
        if self.holds is None:
            return None
        check = request.origin != "autostart"
        check = check and not await quoting.running(request.agent)
        # Checked and taken at once: nothing awaited between.
        taken, no_room = self.holds.admit(request.agent, quote, check=check)
        admitting.taken = taken
        if no_room is not None:
            return await self._held(request, no_room, admitting.wait)
        return None

    async def no_room(self, request: LaunchRequest) -> str | None:
        """Why the holds would keep ``request`` waiting now (``None``: they would not),
        taking nothing."""
        unchecked = request.origin == "autostart" or request.origin in RESTARTS
        if self.quoting is None or self.holds is None or unchecked:
            return None
        if await self.quoting.running(request.agent):
            return None
        quote, over = await quoted(request, self._specs, self.quoting)
        return None if over is not None else self.holds.no_room(request.agent, quote)

    async def _held(self, request: LaunchRequest, why: str, wait: Wait | None) -> Verdict:
        """A launch the holds leave no room for: it waits in the spawn queue for a run to
        end, when it may wait (a queued start goes back in its place); else refused."""
        if wait is None:
            return Refused(why)
        slots = self._slots
        if slots is not None and request.agent not in slots.starting:
            forge = request.origin == "forge"
            waiting = [
                e
                for e in await slots.queue()
                if e.agent == request.agent and (e.origin == "forge") == forge
            ]
            if waiting:
                return Queued(waiting[0].reason, waiting[0], already=True, held=True)
        return Queued(why, await wait(request, why, None), held=True)

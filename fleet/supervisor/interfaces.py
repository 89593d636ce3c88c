"""The supervisor as its callers see it: one narrow :class:`~typing.Protocol` per kind of
caller, each listing only what that caller uses of :class:`~fleet.supervisor.fleet.Fleet`.

* :class:`FleetEvents` — listeners: what happens to the agents.
* :class:`FleetView` — read-only views (the dashboard, the agent feed, ``logs``, ``runs``,
  ``watch``, ``egress``): the agents, their settings and their output.
* :class:`FleetBrakes` — what pauses and stops agents with nobody in the loop: budgets'
  cutoffs and ``resume``.
* :class:`AgentControl` — the command handlers that start, stop, feed and forget agents.

The watchdog's is :class:`~fleet.watchdog.decisions.WatchedFleet`, beside its decisions; a run
cap's watch's, :class:`~fleet.budgets.runs.watch.CutoffFleet`, beside the watch.
"""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

from fleet.events import Listener
from fleet.ledger import Freeze, UsageTotal
from fleet.ledger.stores.running.runs import RunReport
from fleet.model import AgentSpec, ExitInfo, Fallback
from fleet.names import AgentName
from fleet.runs.output.outputs import AgentOutputs
from fleet.supervisor.admission.request import Admitted
from fleet.supervisor.status import AgentStatus
from fleet.transcript.story import Outcome

__all__ = ["AgentControl", "FleetBrakes", "FleetEvents", "FleetView"]


class FleetEvents(Protocol):
    """Hearing what happens to the agents."""

    def subscribe(self, listener: Listener) -> None:
        """Call ``listener`` for every :class:`~fleet.events.FleetEvent`."""
        ...


class FleetView(FleetEvents, Protocol):
    """The agents as they are, and what they wrote; nothing here changes one."""

    @property
    def outputs(self) -> AgentOutputs:
        """The agents' transcripts, screens and run stories."""
        ...

    async def ps(self) -> list[AgentStatus]: ...

    async def status(self, name: str) -> AgentStatus: ...

    async def knows(self, name: str) -> bool: ...

    async def spec(self, name: str) -> AgentSpec: ...

    async def logs(self, name: str, lines: int) -> list[str]: ...

    async def snapshot(self, name: str) -> str: ...


class FleetBrakes(Protocol):
    """Pausing, continuing and stopping agents."""

    async def frozen(self) -> list[Freeze]: ...

    async def freeze(
        self, name: str, *, reason: str, budget: str = "", by: str | None = None
    ) -> bool: ...

    async def thaw(self, name: str) -> bool: ...

    async def stop_agent(
        self,
        name: str,
        *,
        force: bool = False,
        by: str = "operator",
        outcome: Outcome = Outcome.STOPPED,
    ) -> ExitInfo: ...


class AgentControl(FleetView, FleetBrakes, Protocol):
    """Restarting, feeding and forgetting agents, and what an operator asks about them
    before (the roster, where a refused spawn may go, what they spent). A launch is the
    admission's (:mod:`fleet.supervisor.admission`): nothing here starts one around it."""

    async def restart(self, name: str, *, by: str = "operator") -> Admitted: ...

    async def send(self, name: str, text: str, *, by: str = "operator") -> RunReport | None: ...

    async def forget(self, name: str) -> None: ...

    def roster(self) -> list[AgentSpec]: ...

    def busy(self) -> set[AgentName]: ...

    async def fallback_of(self, name: str) -> Fallback | None: ...

    async def drift(self) -> list[str]: ...

    def window_start(self, window: str) -> datetime: ...

    async def usage(
        self, since: datetime, *, agent: str | None = None, host: str | None = None
    ) -> list[UsageTotal]: ...

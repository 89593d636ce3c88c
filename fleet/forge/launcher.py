"""What forge work asks of the rest of Fleetwarden: start an agent's run on an issue's
branch (through the same admission as an operator's ``spawn``: budgets, caps, queue), give
it a follow-up in the same session — or, its session gone, its next run on the same
branch — stop it, push its branch and end its line. It is carried out over the fleet's
admission and the repositories (:mod:`fleet.forge.fleet_launcher`)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

from fleet.errors import FleetwardenError
from fleet.ledger.records.lines import LineRecord
from fleet.supervisor.admission.request import LaunchRequest
from fleet.supervisor.turns import Turns


class LaunchRefused(FleetwardenError):
    """The run cannot start now. The message (:attr:`public`) says why in words fit for
    the issue; :attr:`detail`, the operator's fuller words (a config key, an upstream's
    address or its own words), goes to the log and the audit's operator part
    (:func:`fleet.forge.posts.unpublished.audit_words`), never to the forge."""

    def __init__(self, public: str, detail: str | None = None) -> None:
        super().__init__(public)
        self.public = public
        self.detail = public if detail is None else detail


class OtherLine(LaunchRefused):
    """A follow-up not sent: the agent's session works on another line than the forge
    run's (or on none), so it is not the run's to continue; the message says why, in words
    fit for the issue."""


@dataclass(frozen=True, slots=True)
class Started:
    """A run started on an issue: its run id and the line (branch) it works on."""

    run_id: int
    line_id: int | None


class ForgeLauncher(Protocol):
    """The fleet, as forge work drives it."""

    async def repo_of(self, agent: str) -> str | None:
        """The repository ``agent`` works on (its roster entry's ``repo``), if any."""
        ...

    async def agents(self) -> Mapping[str, str | None]:
        """The roster's agents, each with the repository it works on (None: none)."""
        ...

    def kick(self) -> None:
        """A run ended, which may free its agent for its next forge run: the fleet's spawn
        queue looks for what may start now."""
        ...

    async def queued(self, key: int) -> bool:
        """Whether forge run ``key`` waits for its turn in the fleet's spawn queue."""
        ...

    async def unqueue(self, key: int) -> None:
        """Forge run ``key``'s place in the fleet's spawn queue dropped (it ended)."""
        ...

    async def start(self, request: LaunchRequest, *, key: int | None = None) -> Started:
        """Launch ``request`` — the forge run's agent on a new line of its ``repo`` named
        its ``branch``, for its ``issue`` (the only one its commits may name) and its
        ``co_author`` — through the fleet's admission; :class:`LaunchRefused` when a
        budget, a cap, the fleet's limits or its quote (over its ``quote_under``) hold it.
        ``key``: the forge run it is — a cap holding it then keeps it in the fleet's spawn
        queue, whose turn starts it."""
        ...

    async def start_on_line(self, request: LaunchRequest, line_id: int | None) -> Started:
        """Launch ``request`` — the agent's next run, when its session cannot be continued
        — on its live line ``line_id`` of its ``repo`` (the same branch, and so the same
        pull request and issue); :class:`LaunchRefused` when a budget or its quote holds
        it, the agent runs other work or that line has ended."""
        ...

    async def follow_up(
        self, agent: str, text: str, *, by: str, line_id: int | None = None
    ) -> int | None:
        """Continue ``agent``'s session with ``text`` (thawing it when frozen); the run id
        now working, when known. With ``line_id``, only a session that works on that line:
        :class:`OtherLine` when the agent's newest live line is another one (its session
        is other work's), or none is live, and nothing is sent."""
        ...

    async def is_running(self, agent: str) -> bool: ...

    async def is_frozen(self, agent: str) -> bool:
        """Whether ``agent``'s live run is paused (a follow-up thaws it)."""
        ...

    @property
    def turns(self) -> Turns:
        """The fleet's turns: the end of an agent's turn under way, awaited with a deadline."""
        ...

    async def stop(self, agent: str, *, by: str, line_id: int | None = None) -> None:
        """Stop ``agent``'s run if it runs — only when it works on line ``line_id``, when
        given: other work of the agent is not the forge run's to stop (what it left is
        kept on its branch)."""
        ...

    async def freeze(self, agent: str, *, by: str) -> None:
        """Pause ``agent``'s live run (a later follow-up thaws it)."""
        ...

    async def line(self, agent: str, line_id: int | None = None) -> LineRecord | None:
        """``agent``'s newest live line; with ``line_id``, that line of ``agent`` as it is
        now, live or ended (merged, discarded). None: there is none."""
        ...

    async def push(self, agent: str, line_id: int | None = None) -> str:
        """Push ``agent``'s branch upstream — its newest live line's, or line ``line_id``'s
        while it is live (:class:`fleet.repos.desk.NoLine` when it is not); its tip."""
        ...

    async def push_at_end(self, agent: str) -> None:
        """Push ``agent``'s branch upstream as its run ends (its ``done ok``: the run's
        summary then says it was pushed)."""
        ...

    async def push_refused(self, agent: str, line_id: int | None = None) -> str | None:
        """Why the git door refused the last push of ``agent``'s run on its newest live
        line (or ``line_id``), while nothing has reached the branch since; else None."""
        ...

    async def discard(self, agent: str, *, line_id: int | None = None) -> None:
        """End ``agent``'s line — only when it is line ``line_id``, when given: its
        checkout removed, its branch kept upstream."""
        ...

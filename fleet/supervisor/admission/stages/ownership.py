"""The ownership stage, first in the chain: is the agent free for this launch? A chat-like
launch (a chat ``spawn``, an operator's schedule, a typed ``task start``, their queued starts;
not the register's own starts — a held task's, a pipeline stage's, a hand-off)
of an agent working on a forge issue would take over the issue's branch and session: it is
refused, saying what goes on instead; a ``--fresh`` while the agent runs would cut a new
line under its live run: refused, saying to stop it first. A live agent's plain ``spawn``
goes on (its launch only reports it already runs).

A forge run's launch (origin ``forge``) waits while its agent is not free for it: starting
another run (the spawn queue's start of another entry included), live on other work, at
work on another issue's open forge run, or with an older forge run of its own waiting in
the spawn queue — written there through the admission's wait, the one place a launch
waits, and started from there once the agent is free; without a wait (a next run on the
same line) it is refused, saying why."""

from __future__ import annotations

from typing import Final, Protocol

from fleet.supervisor.admission.request import LaunchRequest, Origin, Queued, Refused
from fleet.supervisor.admission.slots import Slots
from fleet.supervisor.admission.stages.chain import Admitting, Verdict

CHAT_LIKE: Final[frozenset[Origin]] = frozenset({"chat", "schedule"})
"""The origins a person asked with a chat command (or its schedule): the ownership rules
are theirs."""


class Owners(Protocol):
    """What the ownership stage asks of the fleet, the forge and the repositories
    (:class:`fleet.supervisor.admission.owners.AgentOwners`: the facts, in the words of the
    surface that built it)."""

    async def live(self, agent: str) -> bool:
        """Whether ``agent`` has a live run now."""
        ...

    async def on_an_issue(self, agent: str, live: bool) -> str | None:
        """Why a chat run may not take ``agent``: the forge issue it works on, and what
        goes on instead (``live``: its session runs); ``None``: it works on none."""
        ...

    async def branch_of(self, agent: str) -> str | None:
        """``agent``'s live branch, as chat shows it (``None``: none)."""
        ...

    async def not_free(self, request: LaunchRequest) -> str | None:
        """Why ``request``, a forge run's launch, may not take its agent now: the agent
        starting another run, live on other work, or — a new run of an issue (``issue``
        asked) — at work on another issue's open forge run (``None``: it is free for it)."""
        ...


class OwnershipStage:
    """Whose the agent is. ``owners``: ``None`` where nothing owns an agent but its runs
    (no forge, no repositories): every launch goes on."""

    name = "ownership"

    def __init__(self, owners: Owners | None, slots: Slots | None = None) -> None:
        """``slots``: the caps' slots, whose ``starting`` names the agents the spawn queue
        is starting now (``None``: no queue)."""
        self.owners = owners
        self.slots = slots

    async def admit(self, admitting: Admitting) -> Verdict:
        owners, request = self.owners, admitting.request
        if owners is not None and request.origin == "forge":
            why = await self.held(request, admitting.turn)
            if why is None:
                return None
            if admitting.wait is None:
                return Refused(why, public=True)
            return Queued(why, await admitting.wait(request, why, None))
        if owners is None or request.origin not in CHAT_LIKE:
            return None
        agent = request.agent
        live = await owners.live(agent)
        taken = await owners.on_an_issue(agent, live)
        if taken is not None:
            return Refused(taken)
        if request.fresh and live:
            branch = await owners.branch_of(agent)
            on = f" on its branch {branch}" if branch is not None else ""
            return Refused(
                f"{agent} is running{on}: `stop {agent}` first, then `spawn {agent} --fresh` "
                "cuts a new one"
            )
        return None

    async def held(self, request: LaunchRequest, turn: int | None = None) -> str | None:
        """Why the forge run's launch ``request`` waits for its agent now (``None``: it
        does not, or it is no forge run's), taking nothing. ``turn``: the spawn queue's
        entry it is the start of — not held by its own mark as starting, nor by younger
        entries."""
        owners, slots, agent = self.owners, self.slots, request.agent
        if owners is None or request.origin != "forge":
            return None
        if slots is not None:
            starting = slots.starting.get(agent)
            if starting is not None and starting != turn:
                return f"{agent} is starting another run"
        why = await owners.not_free(request)
        if why is not None or slots is None or request.issue is None:
            return why  # a next run on its own run's line (no issue asked) waits for none
        for entry in await slots.queue():
            older = turn is None or entry.id < turn
            if entry.agent == agent and entry.origin == "forge" and older:
                # Its oldest forge run starts first, as it waited first; that entry's own
                # words (a budget's, a hold's) are the operator's, not this issue's.
                return f"{agent} starts an earlier issue's run first"
        return None

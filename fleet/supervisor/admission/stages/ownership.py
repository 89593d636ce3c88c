"""The ownership stage, first in the chain: is the agent free for this launch? A chat-like
launch (a chat ``spawn``, an operator's schedule, a ``task start``, their queued starts)
of an agent working on a forge issue would take over the issue's branch and session: it is
refused, saying what goes on instead; a ``--fresh`` while the agent runs would cut a new
line under its live run: refused, saying to stop it first. A live agent's plain ``spawn``
goes on (its launch only reports it already runs)."""

from __future__ import annotations

from typing import Final, Protocol

from fleet.supervisor.admission.request import Origin, Refused
from fleet.supervisor.admission.stages.chain import Admitting, Verdict

CHAT_LIKE: Final[frozenset[Origin]] = frozenset({"chat", "schedule"})
"""The origins a person asked with a chat command (or its schedule): the ownership rules
are theirs."""


class Owners(Protocol):
    """What the ownership stage asks of the fleet, the forge and the repositories (the
    chat's words for them: they name issues and branches as chat shows them)."""

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


class OwnershipStage:
    """Whose the agent is. ``owners``: ``None`` where nothing owns an agent but its runs
    (no forge, no repositories): every launch goes on."""

    name = "ownership"

    def __init__(self, owners: Owners | None) -> None:
        self.owners = owners

    async def admit(self, admitting: Admitting) -> Verdict:
        owners, request = self.owners, admitting.request
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

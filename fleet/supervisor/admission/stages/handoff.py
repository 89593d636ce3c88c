"""The hand-off's stage: a watchdog restart (origin ``watchdog``) goes on with the task its
agent's last run was for; a task another agent handed on goes on only while that agent may
still reach this one (the peers' rules, read from the roster as it is now) — else the
restart is refused, saying why, and the watchdog gives up on the agent. Every other launch
goes on: a hand-off's own start is asked by the peers' rules where it is made."""

from __future__ import annotations

from typing import Protocol

from fleet.supervisor.admission.request import Refused
from fleet.supervisor.admission.stages.chain import Admitting, Verdict


class HandedOn(Protocol):
    """The tasks agents hand each other, as a restart asks of them
    (:class:`fleet.peers.handed.HandedTasks`)."""

    async def restart_refused(self, agent: str) -> str | None:
        """Why a restart of ``agent`` may not go on with its last run's task now, or
        ``None``."""
        ...


class HandoffStage:
    """A handed-on task's restart. ``handed``: ``None`` where no agent hands work on (every
    restart goes on)."""

    name = "handoff"

    def __init__(self, handed: HandedOn | None) -> None:
        self.handed = handed

    async def admit(self, admitting: Admitting) -> Verdict:
        handed, request = self.handed, admitting.request
        if handed is None or request.origin != "watchdog":
            return None
        why = await handed.restart_refused(request.agent)
        return None if why is None else Refused(why)

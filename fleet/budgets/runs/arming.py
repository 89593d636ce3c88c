"""A run's cap armed in its launch, before its process starts: what a launch asks of the
run caps (:class:`CapArming`, kept by :class:`fleet.budgets.runs.watch.RunCapWatch`), the
task a cap belongs to (:func:`task_spec`), and a launch refused when its cap cannot be
armed (:func:`arm_or_refuse`).

Arming is part of the launch, never a listener of its events: a run whose cap is not armed
would spend uncapped, so a cap that cannot be armed stops the launch, and the operator is
told what failed.

A cap belongs to the agent's **task**: the task begins with a launch that does not
continue one (a spawn, an operator's restart, a follow-up, an autostart), which stamps the
cap with its start (:attr:`fleet.model.RunBudget.since`). The watchdog's restarts continue
the task, so they keep its cap and its start — and the spend counted from it.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from datetime import datetime
from typing import Protocol

from fleet.budgets.runs.asking import task_cap
from fleet.errors import LaunchFailed
from fleet.model import AgentSpec
from fleet.names import AgentName

log = logging.getLogger(__name__)


class CapArming(Protocol):
    """The run caps, as a launch arms them."""

    async def arm(self, spec: AgentSpec, *, continues: bool) -> None:
        """Arm ``spec``'s cap (``spec.run_budget``, its ``since`` set) for its next run,
        or disarm the agent when it has none; ``continues``: the run continues the task of
        the agent's last run. Raises when the cap cannot be armed."""
        ...

    def bind(self, agent: AgentName, run_id: int) -> None:
        """The launch armed for ``agent`` was recorded as run ``run_id``."""
        ...

    def disarm(self, agent: AgentName) -> None:
        """The launch armed for ``agent`` did not start."""
        ...


def task_spec(spec: AgentSpec, now: datetime, *, continues: bool) -> AgentSpec:
    """``spec`` with its cap stamped with its task's start: ``now`` for a new task — at the
    cap it began with, the raises of the last task gone with it — the one it has for a run
    that continues its task."""
    cap = spec.run_budget
    if cap is None or (continues and cap.since is not None):
        return spec
    return replace(spec, run_budget=replace(task_cap(cap), since=now))


async def arm_or_refuse(arming: CapArming, spec: AgentSpec, *, continues: bool) -> None:
    """Arm ``spec``'s cap, or refuse the launch (:class:`LaunchFailed`) saying why."""
    try:
        await arming.arm(spec, continues=continues)
    except Exception as exc:
        log.exception("%s: could not arm its run's cap", spec.name)
        arming.disarm(spec.name)
        raise LaunchFailed(
            f"{spec.name} was not started: its run's cap could not be armed "
            f"({type(exc).__name__}: {exc}), and a run is never started uncapped"
        ) from exc

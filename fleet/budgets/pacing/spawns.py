"""Whether a new launch may start under its budget's pace, and the command that starts it
past the pace when it may not.

A budget at its limit launches nothing until its window resets (its operators may raise
or double the limit); a queued one launches nothing, and ``--urgent`` lets one through only
within a burst; otherwise a launch is admitted when its learned expected spend fits the pace
(:func:`fleet.budgets.pacing.law.fits`). Pure: the budget's state, the burst and the time
are passed in by :meth:`fleet.budgets.pacing.policy.PacingPolicy.admit_spawn`."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from fleet.budgets.pacing.law import fits, headroom
from fleet.budgets.wording import BudgetState, doubled
from fleet.ledger.records.budgets import Burst, Cutoff, Step
from fleet.metering import units

Shown = Callable[[datetime, datetime], str]
"""A time as the operator reads it, against now: ``14:05``, or ``Tue 14:05`` another day."""


@dataclass(frozen=True, slots=True)
class Launch:
    """A launch asked: its agent, whether ``--urgent``, and its learned expected spend in
    tokens (``None``: not learned yet)."""

    agent: str
    urgent: bool
    expected_tokens: float | None


def spawn_verdict(
    state: BudgetState,
    launch: Launch,
    *,
    burst: Burst | None,
    now: datetime,
    ticked: datetime | None,
    at: Shown,
) -> tuple[bool, str]:
    """Whether ``launch`` starts now under the budget ``state`` governs its agent by, and
    why not. ``burst``: one covering the agent now; ``ticked``: the last pacing tick."""
    key = state.status.budget.key
    if state.refusing:
        reset = at(state.status.end, now)
        budget = state.status.budget
        if budget.cutoff is Cutoff.ASK:
            lift = f"`raise budget {key}` raises its limit"
        else:
            lift = f"`{doubled(budget)}` (admin) doubles its limit"
        return False, f"{key} reached its limit: no new launches until {reset} (reset); {lift}"
    if launch.urgent and burst is not None:
        until = at(burst.until, now)
        return True, f"urgent, within the burst on {burst.scope} until {until}"
    way = _way_past_pace(launch, key, burst, ticked, at)
    if state.step is Step.QUEUE:
        until = at(state.queued_until or now, now)
        return False, f"{key} is over pace, its requests queued until {until}; {way}"
    status = state.status
    if launch.expected_tokens is None or status.unit != "tokens":
        return True, ""
    if fits(launch.expected_tokens, status):
        return True, ""
    room = headroom(status)
    expected = units.tokens_words(launch.expected_tokens)
    return False, f"{key}: ~{expected} expected, {units.tokens(room)} fit the pace now; {way}"


def _way_past_pace(
    launch: Launch, key: str, burst: Burst | None, ticked: datetime | None, at: Shown
) -> str:
    """The command that starts the launch's agent now past its budget's pace: ``--urgent``
    within a burst (granted first, by an admin, when none runs)."""
    urgently = f"`spawn {launch.agent} --urgent`"
    if burst is not None:
        until = at(burst.until, ticked or burst.until)
        return f"{urgently} starts it now, within the burst on {burst.scope} until {until}"
    needs = "--urgent needs a burst: " if launch.urgent else "to start it now: "
    return f"{needs}`budget allow-burst {key} --until 2h` (admin), then {urgently}"

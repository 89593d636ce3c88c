"""The pacing ladder's rules, one budget at a time: where a budget seen for the first time
starts (:func:`fresh`) and how far one tick moves it (:func:`advance`) — up on the budget
over pace or heading for exhaustion, down once it is back under the even-spread line by a
margin, to ``refuse`` at its limit. Why these rules, and what each place does to a request,
is told in :mod:`fleet.budgets.pacing.policy`, which applies them at every tick."""

from __future__ import annotations

from datetime import datetime, timedelta

from fleet.budgets.model import BudgetStatus, PaceStatus
from fleet.budgets.pacing.law import catch_up_time
from fleet.budgets.wording import BudgetState
from fleet.ledger.records.budgets import Step

Resumed = tuple[Step, int, datetime | None]
"""Where a previous run of Fleetwarden left a budget: its step, level and since when."""


def advance(state: BudgetState, over: bool, *, margin: timedelta, settle: timedelta) -> None:
    """Move ``state`` at most one place; ``over``: its live total has reached its limit."""
    status = state.status
    if status.status is PaceStatus.EXHAUSTED or (status.limit > 0 and over):
        state.refusing = True
        state.queued_until = None
        return
    if state.refusing:
        state.refusing = False
        state.place = 0
    caught_up = catch_up_time(status.limit, status.used, status.start, status.end)
    settled = state.since is None or status.now - state.since >= settle
    if status.status is PaceStatus.OVER or (
        status.pace_ratio > 1.0 and status.projected_exhaustion is not None and settled
    ):
        state.place = min(state.place + 1, state.floor + 1)
    elif caught_up <= status.now - margin:
        state.place = max(state.place - 1, 0)
    if state.step is Step.QUEUE:
        state.queued_until = min(caught_up + margin / 2, status.end)
    else:
        state.queued_until = None


def fresh(status: BudgetStatus, old: BudgetState | None, resumed: Resumed | None) -> BudgetState:
    """State for a budget seen for the first time — where ``resumed`` says a previous run
    left it — or redefined (``old``: keep its place, within the new ladder)."""
    ladder = status.budget.ladder
    floor = max((len(models) for models in ladder.values()), default=1) - 1
    rungs = {
        model: (models, index) for models in ladder.values() for index, model in enumerate(models)
    }
    state = BudgetState(status, floor, rungs)
    if old is not None:
        state.place = min(old.place, floor + 1)
        state.refusing = old.refusing
    elif resumed is not None:
        step, level, since = resumed
        places = {Step.DOWNGRADE: min(max(level, 1), floor), Step.QUEUE: floor + 1}
        state.place = places.get(step, 0)
        state.refusing = step is Step.REFUSE
        state.since = since
    return state

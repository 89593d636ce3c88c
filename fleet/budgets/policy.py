"""The pacing policy the metering proxy consults: downgrade → queue → refuse.

:class:`PacingPolicy` answers :meth:`~PacingPolicy.decide` from memory, for every model
request. The pacing tick (every ~60 s) recomputes each budget's :class:`BudgetStatus` and
calls :meth:`~PacingPolicy.update`, which moves each budget at most one place along its
ladder and returns the :class:`Transition` s to post — once per change, never per request.

The ladder of a budget, one place per tick::

    none → downgrade 1 → … → downgrade F → queue          (refuse: apart, see below)

F is the longest of the budget's model ladders less one (a ladder lists a runtime's models
from the most to the least capable); with no ladder, ``none`` is followed by ``queue``.
At each tick, with ``r`` the pace ratio:

* the limit is reached (``exhausted``) → **refuse** until the window ends;
* **escalate** one place when the budget is over pace beyond its tolerance; or when it is
  above the even-spread line (``r > 1``), projected at its recent burn rate to run out
  before the reset (burning faster than its target rate), and has been at its place for
  ``settle`` (5 minutes: a downgrade needs that long to show in a burn rate);
* **step down** one place once ``used`` is at least ``margin`` (30 minutes of the line's
  time) *under* the line: no more than the line's value ``margin`` ago;
* else **hold** the place.

That is the hysteresis: up needs the budget beyond its tolerance, or above the line and
heading for exhaustion; down needs it back under the line by a margin, one place per
tick. Why not the tolerance alone: 10 % over the line is more than what is left near the
end of a window — with escalation on the tolerance only, the simulation
(``bench/pacing_sim.py``) ran its windows dry on the last day and had days 20–45 % off the
even spread. Why the margin: stepping down as soon as ``r <= 1`` makes the ladder flicker
between two places every tick or two, each change a message in chat. Why ``settle``: the
burn rate lags; without it a 60 s tick runs down the whole ladder into the queue before
the first downgrade has had any effect. A budget leaving ``refuse`` (its window has reset,
or its limit was raised) starts again from ``none``.

What a request gets, by the place of the budget that governs its agent:

* ``downgrade n`` → :class:`Rewrite` to the model ``n`` rungs below the requested one on
  whichever ladder lists it (clamped at that ladder's floor); a model on no ladder, or one
  already at the floor, is allowed as asked;
* ``queue`` → :class:`Hold` until ``queued_until``: when the even-spread line will be
  ``margin / 2`` ahead of ``used`` (or the reset, if sooner), at most ``max_hold`` per
  hold (the proxy asks again after each). After that, requests go through at the floor
  until the next tick, which sets a new ``queued_until`` if they took the budget too far
  again: queued, a budget spends along the line, a little under it. Opening the queue
  ahead of the line, not on it, keeps what gets through between two ticks from crossing
  the limit at the end of a window, as long as the fleet's peak rate is under
  ``1 + (margin / 2) / tick`` times the line's (16× with a 60 s tick); opening it before
  the step-down point (``margin``) keeps each opening from also stepping the budget down;
* ``refuse`` → :class:`Refuse` with ``retry_after`` = seconds to the window's end.

A **burst** (an admin's :class:`Burst` on any scope covering the agent, until it expires)
lets the agent's requests through as asked past downgrades and the queue, but *not* past
the hard limit: a refusing budget has nothing left to spend, and a burst is permission to
spend early, not more. New spawns are deferred while queued; ``--urgent`` lets one
through only within a burst; otherwise a launch is admitted when its learned expected
spend fits the pace (:func:`fleet.budgets.pacing.fits`).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta, tzinfo

from fleet.budgets.model import (
    BudgetStatus,
    Burst,
    Groups,
    PaceStatus,
    Step,
    Transition,
)
from fleet.budgets.pacing import catch_up_time, fits, headroom
from fleet.metering.policy import ALLOW, Hold, Refuse, RequestInfo, Rewrite, Verdict

log = logging.getLogger(__name__)

MAX_HOLD = timedelta(minutes=15)
"""The longest one hold keeps a request waiting (the proxy's default ``max_hold``)."""

MARGIN = timedelta(minutes=30)
"""How far (in the line's time) under the even-spread line a budget must be to step down;
the queue opens at half of it."""

SETTLE = timedelta(minutes=5)
"""How long a place is given to show its effect on the burn rate before the budget is
escalated again for heading to exhaustion (the tick should measure burn over no longer)."""


@dataclass(slots=True)
class _Budget:
    """What the policy remembers of one budget between ticks."""

    status: BudgetStatus
    floor: int  # downgrade rungs before the queue: the longest ladder's length - 1
    rungs: dict[str, tuple[tuple[str, ...], int]]  # model -> (its ladder, its index)
    place: int = 0  # 0 = none, 1..floor = downgrade, floor + 1 = queue
    since: datetime | None = None  # when it moved to this place
    refusing: bool = False
    queued_until: datetime | None = None

    @property
    def step(self) -> Step:
        if self.refusing:
            return Step.REFUSE
        if self.place == 0:
            return Step.NONE
        return Step.QUEUE if self.place > self.floor else Step.DOWNGRADE

    @property
    def level(self) -> int:
        """Rungs down for the requests that go through (the floor while queued)."""
        return 0 if self.refusing else min(self.place, self.floor)


class PacingPolicy:
    """The proxy's :class:`~fleet.metering.policy.Policy` for paced budgets.

    ``groups`` tells which scopes cover an agent (for bursts on groups); ``tz`` is the
    zone times are shown in, in messages; ``max_hold`` bounds one hold; ``margin`` and
    ``settle`` are the hysteresis (see the module docstring).
    """

    def __init__(
        self,
        groups: Groups | None = None,
        *,
        tz: tzinfo = UTC,
        max_hold: timedelta = MAX_HOLD,
        margin: timedelta = MARGIN,
        settle: timedelta = SETTLE,
    ) -> None:
        if max_hold <= timedelta(0):
            raise ValueError("max_hold must be positive")
        if margin < timedelta(0) or settle < timedelta(0):
            raise ValueError("margin and settle must not be negative")
        self._groups = groups or Groups()
        self._tz = tz
        self._max_hold = max_hold
        self._margin = margin
        self._settle = settle
        self._budgets: dict[str, _Budget] = {}
        self._governing: dict[str, str] = {}
        self._bursts: list[Burst] = []
        self._resume: dict[str, tuple[Step, int, datetime | None]] = {}
        self._now: datetime | None = None

    # -- the proxy's side ----------------------------------------------------------------

    def decide(self, request: RequestInfo) -> Verdict:
        """The verdict on one request, from what the last tick left (no I/O, no waiting)."""
        state = self._state(request.agent)
        if state is None:
            return ALLOW
        at = request.at
        if state.refusing:
            wait = (state.status.end - at).total_seconds()
            if wait <= 0:  # the window has reset; the next tick will see it
                return ALLOW
            return Refuse(wait, f"{state.status.budget.key} reached its limit")
        if self._burst_for(request.agent, at) is not None:
            return ALLOW
        queued = state.queued_until
        if state.step is Step.QUEUE and queued is not None and at < queued:
            reason = f"{state.status.budget.key} is over pace: queued until {self._at(queued, at)}"
            return Hold(min(queued, at + self._max_hold), reason)
        return self._downgraded(request.model, state)

    # -- the pacing tick's side -----------------------------------------------------------

    def update(
        self,
        statuses: Sequence[BudgetStatus],
        governing: Mapping[str, str],
        now: datetime,
    ) -> list[Transition]:
        """Take the tick's statuses and which budget (key) governs each agent; move each
        budget at most one place; return what changed, for posting."""
        self._now = now
        self._governing = dict(governing)
        self._bursts = [b for b in self._bursts if b.until > now]
        transitions: list[Transition] = []
        seen: set[str] = set()
        for status in statuses:
            key = status.budget.key
            seen.add(key)
            state = self._budgets.get(key)
            if state is None or state.status.budget != status.budget:
                state = self._fresh(status, state)
                self._budgets[key] = state
            state.status = status
            before = (state.step, state.level, state.place)
            self._advance(state)
            if state.place != before[2]:
                state.since = now
            if (state.step, state.level) != before[:2]:
                transitions.append(self._transition(state, *before))
        for key in set(self._budgets) - seen:
            gone = self._budgets.pop(key)
            if gone.step is not Step.NONE:
                transitions.append(
                    Transition(
                        key,
                        self._agents(key),
                        gone.step,
                        Step.NONE,
                        f"{key} is no longer budgeted: requests go through as asked",
                    )
                )
        for transition in transitions:
            log.info("pacing: %s", transition.message)
        return transitions

    def allow_burst(self, burst: Burst) -> None:
        """Let ``burst.scope`` spend past its pace until ``burst.until`` (the command
        audits the grant; the app re-adds unexpired grants when it starts)."""
        self._bursts.append(burst)

    # -- what commands and reports ask ---------------------------------------------------

    def queued_until(self, agent: str) -> datetime | None:
        """When ``agent``'s queue is expected to clear (for ``ps``), or ``None`` when it is
        not queued (or a burst lets it through, as of the last tick)."""
        state = self._state(agent)
        if state is None or state.step is not Step.QUEUE:
            return None
        if self._now is not None and self._burst_for(agent, self._now) is not None:
            return None
        return state.queued_until

    def admit_spawn(
        self, agent: str, urgent: bool, expected_tokens: float | None
    ) -> tuple[bool, str]:
        """Whether to launch ``agent`` now, and why (shown to the operator)."""
        state = self._state(agent)
        if state is None:
            return True, ""
        key = state.status.budget.key
        now = self._now or state.status.now
        if state.refusing:
            reset = self._at(state.status.end, now)
            return False, f"{key} reached its limit: no new launches until {reset} (reset)"
        burst = self._burst_for(agent, now)
        if urgent and burst is not None:
            until = self._at(burst.until, now)
            return True, f"urgent, within the burst on {burst.scope} until {until}"
        hint = " (--urgent needs an active burst)" if urgent else ""
        if state.step is Step.QUEUE:
            until = self._at(state.queued_until or now, now)
            return False, f"{key} is queued until {until}: launch deferred{hint}"
        status = state.status
        if expected_tokens is None or status.unit != "tokens":
            return True, ""
        if fits(expected_tokens, status):
            return True, ""
        room = headroom(status)
        return False, (
            f"{key}: ~{expected_tokens:,.0f} tokens expected, {room:,.0f} fit the pace now: "
            f"launch it later, or within a burst{hint}"
        )

    def annotate(self, status: BudgetStatus) -> BudgetStatus:
        """``status`` with the policy's step, level, queue time and burst filled in."""
        state = self._budgets.get(status.budget.key)
        now = self._now or status.now
        burst = next(
            (b for b in self._bursts if b.scope == status.budget.scope and b.until > now), None
        )
        if state is None:
            return replace(status, burst=burst)
        queued = state.queued_until if state.step is Step.QUEUE else None
        return replace(status, step=state.step, level=state.level, queued_until=queued, burst=burst)

    # -- the rules -------------------------------------------------------------------------

    def _advance(self, state: _Budget) -> None:
        """Move ``state`` at most one place, by the rules in the module docstring."""
        status = state.status
        if status.status is PaceStatus.EXHAUSTED:
            state.refusing = True
            state.queued_until = None
            return
        if state.refusing:
            state.refusing = False
            state.place = 0
        caught_up = catch_up_time(status.limit, status.used, status.start, status.end)
        settled = state.since is None or status.now - state.since >= self._settle
        if status.status is PaceStatus.OVER or (
            status.pace_ratio > 1.0 and status.projected_exhaustion is not None and settled
        ):
            state.place = min(state.place + 1, state.floor + 1)
        elif caught_up <= status.now - self._margin:
            state.place = max(state.place - 1, 0)
        if state.step is Step.QUEUE:
            state.queued_until = min(caught_up + self._margin / 2, status.end)
        else:
            state.queued_until = None

    def _fresh(self, status: BudgetStatus, old: _Budget | None) -> _Budget:
        """State for a budget seen for the first time (or redefined: keep its place,
        within the new ladder)."""
        ladder = status.budget.ladder
        floor = max((len(models) for models in ladder.values()), default=1) - 1
        rungs = {
            model: (models, index)
            for models in ladder.values()
            for index, model in enumerate(models)
        }
        state = _Budget(status, floor, rungs)
        if old is not None:
            state.place = min(old.place, floor + 1)
            state.refusing = old.refusing
        elif status.budget.key in self._resume:
            step, level, since = self._resume.pop(status.budget.key)
            places = {Step.DOWNGRADE: min(max(level, 1), floor), Step.QUEUE: floor + 1}
            state.place = places.get(step, 0)
            state.refusing = step is Step.REFUSE
            state.since = since
        return state

    def resume(self, places: Mapping[str, tuple[Step, int, datetime | None]]) -> None:
        """Start budgets where a previous run left them (budget key → step, level, since),
        so a restart neither resets the ladder nor posts its steps again. Applied as each
        budget is first seen by :meth:`update`."""
        self._resume.update(places)

    def place_of(self, key: str) -> tuple[Step, int]:
        """Where budget ``key`` stands: its step and downgrade level."""
        state = self._budgets.get(key)
        return (Step.NONE, 0) if state is None else (state.step, state.level)

    def _downgraded(self, model: str | None, state: _Budget) -> Verdict:
        if model is None or state.level == 0:
            return ALLOW
        found = state.rungs.get(model)
        if found is None:
            return ALLOW
        models, index = found
        served = models[min(index + state.level, len(models) - 1)]
        if served == model:
            return ALLOW
        return Rewrite(served, f"{state.status.budget.key} is over pace")

    # -- messages ------------------------------------------------------------------------

    def _transition(
        self, state: _Budget, before: Step, before_level: int, before_place: int
    ) -> Transition:
        status = state.status
        key = status.budget.key
        if state.step is Step.REFUSE:
            message = (
                f"{key} reached its limit ({status.limit:,.0f} {status.unit}): refusing "
                f"requests until {self._at(status.end, status.now)} (reset)"
            )
        elif before is Step.REFUSE:
            message = f"{key}'s window has reset: requests go through again"
        elif state.place > before_place:
            message = self._escalation(state, before_level)
        else:
            message = self._release(state, before_level)
        return Transition(key, self._agents(key), before, state.step, message)

    def _escalation(self, state: _Budget, before_level: int) -> str:
        status = state.status
        over = (status.pace_ratio - 1.0) * 100
        why = (
            f"{status.budget.key} is {over:.0f} % over pace"
            if over >= 10
            else (f"{status.budget.key} is {max(over, 0.0):.1f} % over pace")
        )
        if status.status is not PaceStatus.OVER and status.projected_exhaustion is not None:
            out = self._at(status.projected_exhaustion, status.now)
            why += f" and on course to run out at {out}"
        if state.step is Step.QUEUE:
            until = self._at(state.queued_until or status.now, status.now)
            cheapest = "at the cheapest models" if state.floor else "with no cheaper model"
            return f"{why} {cheapest}: holding requests until {until}; new launches deferred"
        further = "further " if before_level else ""
        return f"{why}: downgrading {further}{self._swaps(state, before_level, state.level)}"

    def _release(self, state: _Budget, before_level: int) -> str:
        key = state.status.budget.key
        if state.step is Step.NONE:
            return f"{key} is back on pace: models as requested"
        swaps = self._swaps(state, before_level, state.level)
        if before_level == state.level:  # leaving the queue, at the floor
            return f"{key} is back on pace: resuming requests, at {swaps}"
        return f"{key} is back on pace: upgrading {swaps}"

    def _swaps(self, state: _Budget, before: int, after: int) -> str:
        """``a → b`` for each ladder whose served top model changes between two levels
        (or, when none does, the models served at ``after``)."""
        ladders = state.status.budget.ladder.values()
        swaps = [
            f"{m[min(before, len(m) - 1)]} → {m[min(after, len(m) - 1)]}"
            for m in ladders
            if min(before, len(m) - 1) != min(after, len(m) - 1)
        ]
        if swaps:
            return ", ".join(swaps)
        return ", ".join(m[min(after, len(m) - 1)] for m in ladders) or "the requested models"

    def _at(self, when: datetime, now: datetime) -> str:
        local, today = when.astimezone(self._tz), now.astimezone(self._tz)
        return f"{local:%H:%M}" if local.date() == today.date() else f"{local:%a %H:%M}"

    # -- lookups ---------------------------------------------------------------------------

    def _state(self, agent: str) -> _Budget | None:
        key = self._governing.get(agent)
        return None if key is None else self._budgets.get(key)

    def _agents(self, key: str) -> tuple[str, ...]:
        return tuple(sorted(a for a, k in self._governing.items() if k == key))

    def _burst_for(self, agent: str, at: datetime) -> Burst | None:
        """An unexpired burst on a scope covering ``agent``, if any."""
        if not self._bursts:
            return None
        covering = set(self._groups.chain(agent))
        return next((b for b in self._bursts if b.until > at and b.scope in covering), None)

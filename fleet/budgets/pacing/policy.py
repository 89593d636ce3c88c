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
* ``refuse`` → :class:`Refuse` with ``retry_after`` = seconds to the window's end — or,
  for a budget whose cutoff asks (``cutoff: ask``), :class:`Hold`, looked at again every
  :data:`ASK_LOOK`, while its operators are asked to raise the limit: raised, the held
  request goes on; a request that reached the limit between two looks is refused with a
  short ``retry_after``, and held when it comes again.

Hard limits bind on every request, not at the tick: see :meth:`PacingPolicy.reserve`.

A **burst** (an admin's :class:`Burst` on any scope covering the agent, until it expires)
lets the agent's requests through as asked past downgrades and the queue, but *not* past
the hard limit: a refusing budget has nothing left to spend, and a burst is permission to
spend early, not more. New spawns are deferred while queued
(:mod:`fleet.budgets.pacing.spawns`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta, tzinfo

from fleet.budgets.model import BudgetStatus, Groups, Transition
from fleet.budgets.pacing.ladder import advance, fresh
from fleet.budgets.pacing.live import LiveSpend
from fleet.budgets.pacing.spawns import Launch, spawn_verdict
from fleet.budgets.wording import BudgetState, Wording
from fleet.ledger.records.budgets import Burst, Cutoff, Scope, Step
from fleet.metering.policy import (
    ALLOW,
    Estimate,
    Hold,
    Refuse,
    RequestInfo,
    Reservation,
    Rewrite,
    Verdict,
)

log = logging.getLogger(__name__)

_DOLLARS = "$"  # suffix of the live book of the dollars of a budget with both limits

MAX_HOLD = timedelta(minutes=15)
"""The longest one hold keeps a request waiting (the proxy's default ``max_hold``)."""

MARGIN = timedelta(minutes=30)
"""How far (in the line's time) under the even-spread line a budget must be to step down;
the queue opens at half of it."""

ASK_LOOK = timedelta(seconds=1)
"""How often a request held at a budget's limit that asks (``cutoff: ask``) looks again
whether the limit was raised."""

SETTLE = timedelta(minutes=5)
"""How long a place is given to show its effect on the burn rate before the budget is
escalated again for heading to exhaustion (the tick should measure burn over no longer)."""


class PacingPolicy(Wording):
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
        self._budgets: dict[str, BudgetState] = {}
        self._governing: dict[str, str] = {}
        self._bursts: list[Burst] = []
        self._resume: dict[str, tuple[Step, int, datetime | None]] = {}
        self._now: datetime | None = None
        self.live = LiveSpend()
        self._dollars: dict[int, Reservation] = {}  # a claim's dollars, beside its tokens
        self.on_transition: Callable[[Transition], None] | None = None  # a request's own

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
            key = state.status.budget.key
            if state.status.budget.cutoff is Cutoff.ASK:  # held while its operators are asked
                reason = f"{key} reached its limit; its operators are asked to raise it"
                return Hold(min(state.status.end, at + ASK_LOOK), reason)
            return Refuse(wait, f"{key} reached its limit")
        if self._burst_for(request.agent, at) is not None:
            return ALLOW
        queued = state.queued_until
        if state.step is Step.QUEUE and queued is not None and at < queued:
            reason = f"{state.status.budget.key} is over pace: queued until {self._at(queued, at)}"
            return Hold(min(queued, at + self._max_hold), reason)
        return self._downgraded(request.model, state)

    def reserve(self, request: RequestInfo, estimate: Estimate) -> Reservation | Refuse | None:
        """Claim ``estimate`` on the budget governing the request
        (:mod:`fleet.budgets.pacing.live`), settled to the real usage when its answer ends. A
        request that would start with the budget's live total at its limit is refused, and the
        budget moves to ``refuse`` there and then, posted once through ``on_transition`` as a
        tick's changes are. Under a budget in dollars, a request whose model
        (``estimate.model``, the one to be served) has no price is refused with 400, naming it:
        it would cost the budget nothing."""
        state = self._state(request.agent)
        if state is None:
            return None
        status = state.status
        key = status.budget.key
        if status.budget.limit_usd is not None and estimate.usd is None:
            return Refuse(0.0, _unpriced(key, request.model, estimate.model), status=400)
        if request.at >= status.end:
            return None  # the window has reset; the next tick starts the new one
        if state.refusing or self._over(state):
            self._exhaust(state)
            wait = max((status.end - request.at).total_seconds(), 1.0)
            if status.budget.cutoff is Cutoff.ASK:  # reached since its verdict: held next time
                wait = min(wait, ASK_LOOK.total_seconds() * 2)
            return Refuse(wait, f"{key} reached its limit")
        claim = self.live.reserve(key, status.unit, estimate.amount(status.unit))
        if status.usd_used is not None:
            usd = estimate.amount("usd")
            self._dollars[claim.id] = self.live.reserve(key + _DOLLARS, "usd", usd)
        return claim

    def settle(
        self, reservation: Reservation, tokens: int, cost: float | None, *, unmetered: bool = False
    ) -> None:
        """The reserved request's answer ended having used ``tokens`` (``cost`` USD);
        ``unmetered`` changes nothing here: a budget counts what the ledger recorded."""
        actual = float(tokens) if reservation.unit == "tokens" else (cost or 0.0)
        self.live.settle(reservation, actual)
        dollars = self._dollars.pop(reservation.id, None)
        if dollars is not None:
            self.live.settle(dollars, cost or 0.0)
        state = self._budgets.get(reservation.budget)
        if state is not None and self._over(state):
            self._exhaust(state)

    def _live_used(self, state: BudgetState) -> float:
        return state.status.used + self.live.extra(state.status.budget.key)

    def _over(self, state: BudgetState) -> bool:
        """Whether the budget's live total has reached its limit — or, for a budget with
        both limits, its live dollars have reached ``limit_usd``."""
        status = state.status
        if self._live_used(state) >= status.limit:
            return True
        cap = status.budget.limit_usd
        if status.usd_used is None or cap is None:
            return False
        return status.usd_used + self.live.extra(status.budget.key + _DOLLARS) >= cap

    def _exhaust(self, state: BudgetState) -> None:
        """Move ``state`` to ``refuse`` now, between ticks; post the change once."""
        if state.refusing:
            return
        before = (state.step, state.level, state.place)
        state.refusing, state.queued_until = True, None
        transition = self._transition(state, *before)
        log.info("limit: %s", transition.message)
        if self.on_transition is not None:
            self.on_transition(transition)

    # -- the pacing tick's side -----------------------------------------------------------

    def update(
        self,
        statuses: Sequence[BudgetStatus],
        governing: Mapping[str, str],
        now: datetime,
        mark: int | None = None,
    ) -> list[Transition]:
        """Take the tick's statuses and which budget (key) governs each agent; move each
        budget at most one place; return what changed, for posting. ``mark``: the live
        spend's mark taken before the statuses were read from the ledger."""
        self._now = now
        self._governing = dict(governing)
        self._bursts = [b for b in self._bursts if b.until > now]
        transitions: list[Transition] = []
        seen: set[str] = set()
        for status in statuses:
            key = status.budget.key
            seen.add(key)
            state = self._budgets.get(key)
            old = None if state is None else state.status
            if state is None or state.status.budget != status.budget:
                resumed = self._resume.pop(key, None) if state is None else None
                state = fresh(status, state, resumed)
                self._budgets[key] = state
            state.status = status
            if mark is not None:
                self.live.rebase(key, mark)
                self.live.rebase(key + _DOLLARS, mark)
            before = (state.step, state.level, state.place)
            advance(state, self._over(state), margin=self._margin, settle=self._settle)
            if state.place != before[2]:
                state.since = now
            if (state.step, state.level) != before[:2]:
                transitions.append(self._transition(state, *before, old=old))
        for key in set(self._budgets) - seen:
            gone = self._budgets.pop(key)
            self.live.forget(key)
            self.live.forget(key + _DOLLARS)
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

    def end_bursts(self, scope: Scope) -> None:
        """End every burst on ``scope`` now (``budget end-burst``)."""
        self._bursts = [b for b in self._bursts if b.scope != scope]

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
        """Whether to launch ``agent`` now, and why not — with the command that would start
        it (shown to the operator): :func:`fleet.budgets.pacing.spawns.spawn_verdict`."""
        state = self._state(agent)
        if state is None:
            return True, ""
        now = self._now or state.status.now
        return spawn_verdict(
            state,
            Launch(agent, urgent, expected_tokens),
            burst=self._burst_for(agent, now),
            now=now,
            ticked=self._now,
            at=self._at,
        )

    def live_status(self, key: str) -> tuple[BudgetStatus, float] | None:
        """Budget ``key`` as of the last tick, and what it has used now (live)."""
        state = self._budgets.get(key)
        return None if state is None else (state.status, self._live_used(state))

    def live_dollars(self, key: str) -> float | None:
        """The dollars budget ``key`` — one with a limit in tokens and one in dollars — has
        used now (live); ``None`` for any other budget."""
        state = self._budgets.get(key)
        if state is None or state.status.usd_used is None:
            return None
        return state.status.usd_used + self.live.extra(key + _DOLLARS)

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

    def resume(self, places: Mapping[str, tuple[Step, int, datetime | None]]) -> None:
        """Start budgets where a previous run left them (budget key → step, level, since),
        so a restart neither resets the ladder nor posts its steps again. Applied as each
        budget is first seen by :meth:`update`."""
        self._resume.update(places)

    def refusing(self) -> list[tuple[str, tuple[str, ...]]]:
        """The budgets at their limit now, each with the agents it governs."""
        return [(k, self._agents(k)) for k, state in self._budgets.items() if state.refusing]

    def place_of(self, key: str) -> tuple[Step, int]:
        """Where budget ``key`` stands: its step and downgrade level."""
        state = self._budgets.get(key)
        return (Step.NONE, 0) if state is None else (state.step, state.level)

    def _downgraded(self, model: str | None, state: BudgetState) -> Verdict:
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

    # -- lookups ---------------------------------------------------------------------------

    def _state(self, agent: str) -> BudgetState | None:
        """The budget governing ``agent``: as of the last tick, or — for an agent new since
        then — the most specific budget over its groups (its account is not known here)."""
        key = self._governing.get(agent)
        if key is None:
            scopes = (str(scope) for scope in self._groups.chain(agent))
            key = next((k for k in scopes if k in self._budgets), None)
            if key is None:
                return None
            self._governing[agent] = key
        return self._budgets.get(key)

    def _agents(self, key: str) -> tuple[str, ...]:
        return tuple(sorted(a for a, k in self._governing.items() if k == key))

    def _burst_for(self, agent: str, at: datetime) -> Burst | None:
        """An unexpired burst on a scope covering ``agent``, if any."""
        if not self._bursts:
            return None
        covering = set(self._groups.chain(agent))
        return next((b for b in self._bursts if b.until > at and b.scope in covering), None)


def _unpriced(key: str, asked: str | None, served: str | None) -> str:
    """Why a request under budget ``key`` (in dollars) is refused: ``served`` has no price."""
    fix = "add it to `prices` in the config, or set `price_default`"
    if served is None:
        return f"the request names no model, so {key} (a budget in dollars) cannot price it"
    if asked is not None and asked != served:
        return (
            f"{key} is over pace and steps {asked!r} down to {served!r}, which has no price, "
            f"so {key} (a budget in dollars) cannot charge it: {fix}"
        )
    return f"model {served!r} has no price, so {key} (a budget in dollars) cannot charge it: {fix}"

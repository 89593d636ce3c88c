"""Caps on one run's spend (``spawn --max-tokens N | --max-usd X``, roster ``run_budget``),
bound on every model request like a budget's hard limit.

:class:`RunCaps` keeps, for each agent's live run, its cap and what it has spent: what
settled (the metered usage of its answers) and what is in flight (each admitted request's
estimate, :mod:`fleet.metering.estimate`). A request is refused when the run's live total
has already reached the cap, so a run spends past its cap by at most what the last
request admitted before that uses beyond its estimate — one in-flight request. Once what
*settled* reaches the cap the run is **capped**: every request after is refused (400 in
the provider's shape: waiting does not help, the cap is the run's) and its thread is told
once; refused only because requests in flight fill the cap, a request gets 429 with a
short ``retry-after`` (it may fit when they settle). A cap in dollars refuses a model
without a price, as a budget in dollars does.

:class:`CappedPolicy` puts the caps in front of the budgets' policy: the proxy consults
one :class:`~fleet.metering.policy.Policy`. Everything here answers from memory on the
proxy's event loop; :mod:`fleet.budgets.run_watch` arms and ends runs as they start and
end.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Final

from fleet.budgets.run_budget import UNPRICED_FIX, cap_text
from fleet.metering.policy import (
    Estimate,
    Policy,
    Refuse,
    RequestInfo,
    Reservation,
    Verdict,
)
from fleet.model import RunBudget

_DONE: Final = {"refuse": "refused", "freeze": "frozen", "stop": "stopped"}
_THEN: Final = {
    "refuse": "its model requests are refused until it ends (`stop {agent}`; `spawn {agent} "
    "--max-tokens N` starts the next run with another cap)",
    "freeze": "its model requests are refused and it is paused until `resume {agent}` or its end",
    "stop": "it is being stopped",
}
RETRY_INFLIGHT: Final = 2.0  # seconds: requests in flight settle within an answer or two
_EARLY: Final = 64  # spend kept per agent from before its run was armed (a launch race)


@dataclass(slots=True)
class _Run:
    run_id: int
    cap: RunBudget
    started_at: datetime
    tokens: float = 0.0  # settled
    usd: float = 0.0
    inflight: dict[int, tuple[float, float]] = field(default_factory=dict)
    told: bool = False

    def live(self) -> tuple[float, float]:
        return (
            self.tokens + sum(t for t, _ in self.inflight.values()),
            self.usd + sum(u for _, u in self.inflight.values()),
        )

    def reached(self, tokens: float, usd: float) -> bool:
        cap = self.cap
        return (cap.max_tokens is not None and tokens >= cap.max_tokens) or (
            cap.max_usd is not None and usd >= cap.max_usd
        )

    def spent(self) -> str:
        dollars = f" (${self.usd:,.4f})" if self.cap.max_usd is not None else ""
        return f"{self.tokens:,.0f} tokens{dollars}"


@dataclass(frozen=True, slots=True)
class RunClaim:
    """A request's claim on its run's cap until its answer ends."""

    id: int
    agent: str
    run_id: int | None  # None: its run was not armed yet (kept, then counted at arming)
    at: datetime


class RunCaps:
    """Each agent's live run: its cap and its spend so far. ``on_capped(agent, message,
    cutoff)`` hears once per run that it reached its cap, and the cutoff to carry out."""

    def __init__(self) -> None:
        self._runs: dict[str, _Run] = {}
        self._early: dict[str, list[tuple[datetime, float, float]]] = {}
        self._ids = itertools.count(1)
        self.on_capped: Callable[[str, str, str], None] | None = None

    def arm(
        self,
        agent: str,
        run_id: int,
        cap: RunBudget | None,
        started_at: datetime,
        spent: tuple[float, float] = (0.0, 0.0),
    ) -> None:
        """Run ``run_id`` of ``agent`` started at ``started_at`` under ``cap`` (``None``:
        uncapped), having spent ``spent`` (tokens, dollars) already — after a restart of
        Fleetwarden. What settled for the agent since it started, before this, counts."""
        early = self._early.pop(agent, [])
        if cap is None or (cap.max_tokens is None and cap.max_usd is None):
            self._runs.pop(agent, None)
            return
        run = _Run(run_id, cap, started_at, *spent)
        for at, tokens, usd in early:
            if at >= started_at:
                run.tokens, run.usd = run.tokens + tokens, run.usd + usd
        self._runs[agent] = run

    def end(self, agent: str, run_id: int) -> None:
        """Run ``run_id`` of ``agent`` ended: its cap goes with it."""
        run = self._runs.get(agent)
        if run is not None and run.run_id == run_id:
            del self._runs[agent]
        self._early.pop(agent, None)

    def cap_of(self, agent: str) -> tuple[RunBudget, float, float] | None:
        """``agent``'s live run's cap and its settled tokens and dollars, if it has one."""
        run = self._runs.get(agent)
        return None if run is None else (run.cap, run.tokens, run.usd)

    def check(self, request: RequestInfo) -> Refuse | None:
        """Refuse a request of a capped run before anything else is asked."""
        run = self._runs.get(request.agent)
        if run is None or not run.reached(run.tokens, run.usd):
            return None
        return self._capped(request.agent, run)

    def claim(self, request: RequestInfo, estimate: Estimate) -> RunClaim | Refuse:
        """Claim ``estimate`` on the request's run, or refuse it (see the module)."""
        agent, run = request.agent, self._runs.get(request.agent)
        if run is None:
            return RunClaim(next(self._ids), agent, None, request.at)
        if run.reached(run.tokens, run.usd):
            return self._capped(agent, run)
        if run.cap.max_usd is not None and estimate.usd is None:
            model = estimate.model or request.model
            what = f"model {model!r} has no price" if model else "the request names no model"
            return Refuse(
                0.0,
                f"{agent}'s run is capped at {cap_text(run.cap)}, but {what}, so the cap "
                f"cannot charge it: {UNPRICED_FIX}",
                status=400,
            )
        if run.reached(*run.live()):
            return Refuse(
                RETRY_INFLIGHT,
                f"{agent}'s run is capped at {cap_text(run.cap)} and its requests in "
                "flight may reach it: try again when they end",
            )
        claim = RunClaim(next(self._ids), agent, run.run_id, request.at)
        run.inflight[claim.id] = (float(max(estimate.tokens, 1)), estimate.usd or 0.0)
        return claim

    def settle(self, claim: RunClaim, tokens: int, cost: float | None) -> None:
        """The claimed request's answer ended having used ``tokens`` (``cost`` dollars)."""
        run = self._runs.get(claim.agent)
        if claim.run_id is None:
            if run is not None:  # armed meanwhile: counted when it started after the run
                if claim.at >= run.started_at:
                    run.tokens, run.usd = run.tokens + tokens, run.usd + (cost or 0.0)
                return
            early = self._early.setdefault(claim.agent, [])
            early.append((claim.at, float(tokens), cost or 0.0))
            del early[:-_EARLY]
            return
        if run is None or run.run_id != claim.run_id:
            return
        run.inflight.pop(claim.id, None)
        run.tokens += tokens
        run.usd += cost or 0.0

    def _capped(self, agent: str, run: _Run) -> Refuse:
        cutoff = run.cap.cutoff if run.cap.cutoff in _DONE else "refuse"
        message = f"run capped at {cap_text(run.cap)}: {_DONE[cutoff]}"
        if not run.told:
            run.told = True
            if self.on_capped is not None:
                then = _THEN[cutoff].format(agent=agent)
                told = f"**{agent}**: {message} — its run has used {run.spent()}; {then}"
                self.on_capped(agent, told, cutoff)
        refused = f"run capped at {cap_text(run.cap)}: refused"
        return Refuse(0.0, f"{agent}'s {refused} (it has used {run.spent()})", status=400)


class CappedPolicy:
    """The proxy's policy: the run caps first, then ``inner`` (the budgets')."""

    def __init__(self, inner: Policy, caps: RunCaps) -> None:
        self.inner = inner
        self.caps = caps
        self._claims: dict[int, RunClaim] = {}
        self._own = itertools.count(-1, -1)  # ids of reservations on a run cap alone

    def decide(self, request: RequestInfo) -> Verdict:
        refused = self.caps.check(request)
        return refused if refused is not None else self.inner.decide(request)

    def reserve(self, request: RequestInfo, estimate: Estimate) -> Reservation | Refuse | None:
        claim = self.caps.claim(request, estimate)
        if isinstance(claim, Refuse):
            return claim
        inner = self.inner.reserve(request, estimate)
        if isinstance(inner, Refuse):
            self.caps.settle(claim, 0, None)
            return inner
        held = inner or Reservation(next(self._own), f"run:{request.agent}", "tokens", 0.0)
        self._claims[held.id] = claim
        return held

    def settle(self, reservation: Reservation, tokens: int, cost: float | None) -> None:
        claim = self._claims.pop(reservation.id, None)
        if claim is not None:
            self.caps.settle(claim, tokens, cost)
        if reservation.id > 0:
            self.inner.settle(reservation, tokens, cost)

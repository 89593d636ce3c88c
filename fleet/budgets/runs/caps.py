"""Caps on one run's spend (``spawn --max-tokens N | --max-usd X``, roster ``run_budget``),
bound on every model request like a budget's hard limit.

:class:`RunCaps` keeps, for each agent's live run, its cap and what it has spent: what
settled (the metered usage of its answers) and what is in flight. Each admitted request
reserves its **worst case** (:mod:`fleet.metering.wire.bounds`: what its body lets it cost at
most, or no bound at all), settled to its real usage when its answer ends. A request is
admitted alongside others in flight only when what settled, the worst cases in flight and
its own still fit under the cap; with nothing in flight it is admitted while what settled
is under the cap, whatever its size. So at most one request is ever in flight past the
line, and a run spends past its cap by at most that request. A request that used more than
its worst case shows the bound wrong for this run: from then on its requests go one at a
time. An answer that carried no usage the proxy could read settles at its request's worst
case; when nothing bounded that request, what it cost is unknown and the cap counts as
reached. A request the provider works on after answering it (OpenAI's ``background:
true``, answered ``queued`` before anything is generated) never brings its usage back, so
a capped run's is refused (400) naming the key to drop.

Once what *settled* reaches the cap the run is **capped**: every request after is refused
(400 in the provider's shape: waiting does not help, the cap is the run's) and its thread
is told once; refused only because requests in flight may fill the cap, a request gets
429 with a short ``retry-after`` (it may fit when they settle). A cap in dollars refuses a
model without a price, as a budget in dollars does.

A cap that **asks** (``cutoff: ask``) holds its run's requests instead (a policy ``Hold``,
looked at again every :data:`ASK_LOOK`, waited out up to the proxy's ``max_hold``): the run
is paused and its operators asked once; a raise lets the held request go on as if its
answer had been slow, and the agent never sees a refusal; a stop ends the run, and what
it still had held is refused. A request that finds the cap reached only after its verdict
gets 429 with a short ``retry-after``, and is held when it comes again.

A cap belongs to the agent's **task**: a run the watchdog restarts continues it (armed
with the same start, :attr:`~fleet.model.RunBudget.since`), keeping what it spent and
what it still has in flight. Runs are armed in the launch path before their process
starts (:mod:`fleet.budgets.runs.watch`), so no request of a capped run is ever unarmed.

:class:`CappedPolicy` puts the caps in front of the budgets' policy: the proxy consults
one :class:`~fleet.metering.policy.Policy`. Everything here answers from memory on the
proxy's event loop.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Final

from fleet.budgets.runs.budget import UNPRICED_FIX, cap_text
from fleet.metering import units
from fleet.metering.policy import (
    Estimate,
    Hold,
    Policy,
    Refuse,
    RequestInfo,
    Reservation,
    Verdict,
)
from fleet.model import RunBudget

_DONE: Final = {"refuse": "refused", "freeze": "frozen", "stop": "stopped", "ask": "paused"}
_THEN: Final = {
    "refuse": "its model requests are refused until it ends (`stop {agent}`; `spawn {agent} "
    "--max-tokens N` starts the next run with another cap)",
    "freeze": "its model requests are refused and it is paused until `resume {agent}` or its end",
    "stop": "it is being stopped",
    "ask": "it is paused, and its operators are asked: `raise {agent} +AMOUNT` or `stop {agent}`",
}
RETRY_INFLIGHT: Final = 2.0  # seconds: requests in flight settle within an answer or two
ASK_LOOK: Final = timedelta(seconds=1)
"""How often a request held at a cap that asks looks again whether it was raised."""
_EARLY: Final = 64  # spend kept per agent from before its run was armed (a reattach)

_SAME_START: Final = timedelta(milliseconds=1)

log = logging.getLogger(__name__)


Worst = tuple[float | None, float | None]  # (tokens, dollars); None: no bound


@dataclass(slots=True)
class _Run:
    key: int  # the task's: kept by the runs that continue it
    run_id: int | None  # None: armed for a launch whose run is not recorded yet
    cap: RunBudget
    started_at: datetime  # when its task began
    tokens: float = 0.0  # settled
    usd: float = 0.0
    inflight: dict[int, Worst] = field(default_factory=dict)
    told: bool = False
    alone: bool = False  # a request used more than its worst case: one at a time from now

    def reached(self) -> bool:
        cap = self.cap
        return (cap.max_tokens is not None and self.tokens >= cap.max_tokens) or (
            cap.max_usd is not None and self.usd >= cap.max_usd
        )

    def fits(self, worst: Worst) -> bool:
        """Whether a request of ``worst`` case fits beside those in flight, all at their
        worst, under the cap."""
        if self.alone:
            return False
        held = [*self.inflight.values(), worst]
        for index, (limit, settled) in enumerate(
            ((self.cap.max_tokens, self.tokens), (self.cap.max_usd, self.usd))
        ):
            if limit is None:
                continue
            amounts = [case[index] for case in held]
            if any(amount is None for amount in amounts):
                return False
            if settled + sum(a for a in amounts if a is not None) > limit:
                return False
        return True

    def spent(self) -> str:
        dollars = f" ({units.usd(self.usd)})" if self.cap.max_usd is not None else ""
        return f"{units.tokens_words(self.tokens)}{dollars}"


@dataclass(frozen=True, slots=True)
class RunClaim:
    """A request's claim on its run's cap until its answer ends."""

    id: int
    agent: str
    run_key: int | None  # None: its agent had no armed run (kept, then counted at arming)
    at: datetime


class RunCaps:
    """Each agent's live run: its cap and its spend so far. ``on_capped(agent, message,
    cutoff)`` hears once per task that it reached its cap (once more at each cap an
    operator raised it to), and the cutoff to carry out."""

    def __init__(self) -> None:
        self._runs: dict[str, _Run] = {}
        self._ended: dict[str, _Run] = {}  # each agent's last ended run, for a restart
        self._early: dict[str, list[tuple[datetime, float, float]]] = {}
        self._ids = itertools.count(1)
        self._keys = itertools.count(1)
        self.on_capped: Callable[[str, str, str], None] | None = None

    def arm(
        self,
        agent: str,
        run_id: int | None,
        cap: RunBudget | None,
        started_at: datetime,
        spent: tuple[float, float] = (0.0, 0.0),
    ) -> None:
        """Run ``run_id`` of ``agent`` (``None``: about to be launched, :meth:`bind` it
        then) under ``cap`` (``None``: uncapped), its task started at ``started_at``. A
        run continuing the task of the agent's last run (the same start) keeps that run's
        spend; otherwise it has spent ``spent`` (tokens, dollars) already — read from the
        ledger after a restart of Fleetwarden — and what settled for the agent since its
        task started, before this, counts."""
        early = self._early.pop(agent, [])
        if cap is None or (cap.max_tokens is None and cap.max_usd is None):
            self._runs.pop(agent, None)
            self._ended.pop(agent, None)
            return
        kept = self.task_of(agent, started_at)
        self._ended.pop(agent, None)
        if kept is not None:
            kept.cap, kept.run_id = cap, run_id
            self._runs[agent] = kept
            return
        run = _Run(next(self._keys), run_id, cap, started_at, *spent)
        for at, tokens, usd in early:
            if at >= started_at:
                run.tokens, run.usd = run.tokens + tokens, run.usd + usd
        self._runs[agent] = run

    def task_of(self, agent: str, started_at: datetime) -> _Run | None:
        """The live or last ended run of ``agent`` whose task began at ``started_at``."""
        for runs in (self._runs, self._ended):
            run = runs.get(agent)
            # The ledger keeps times as epoch seconds: equal to within its rounding.
            if run is not None and abs(run.started_at - started_at) < _SAME_START:
                return run
        return None

    def bind(self, agent: str, run_id: int) -> None:
        """The run armed for ``agent``'s launch was recorded as ``run_id``."""
        run = self._runs.get(agent)
        if run is not None and run.run_id is None:
            run.run_id = run_id

    def end(self, agent: str, run_id: int | None) -> None:
        """Run ``run_id`` of ``agent`` ended (``None``: its launch failed): its cap goes
        with it, its spend kept for a run that continues its task."""
        run = self._runs.get(agent)
        if run is not None and run.run_id == run_id:
            self._ended[agent] = self._runs.pop(agent)
        self._early.pop(agent, None)

    def charge(self, agent: str, at: datetime, usd: float) -> None:
        """``agent`` spent ``usd`` at ``at`` on something billed beside its model requests
        (a priced MCP call): settled spend of its run, told once when it reaches the cap."""
        run = self._runs.get(agent)
        if run is None:
            early = self._early.setdefault(agent, [])
            early.append((at, 0.0, usd))
            del early[:-_EARLY]
            return
        run.usd += usd
        if run.reached():
            self._capped(agent, run)

    def cap_of(self, agent: str) -> tuple[RunBudget, float, float] | None:
        """``agent``'s live run's cap and its settled tokens and dollars, if it has one."""
        run = self._runs.get(agent)
        return None if run is None else (run.cap, run.tokens, run.usd)

    def raise_cap(self, agent: str, cap: RunBudget) -> bool:
        """``agent``'s live run goes on under ``cap`` (raised by an operator), told again
        when it reaches it; whether it had a live capped run."""
        run = self._runs.get(agent)
        if run is None:
            return False
        run.cap, run.told = cap, False
        return True

    def check(self, request: RequestInfo) -> Refuse | Hold | None:
        """Refuse a request of a capped run before anything else is asked — or, when its
        cap asks (``cutoff: ask``), hold it while its operators are asked: it goes on when
        the cap is raised, and is refused when the run ends (stopped at its cap)."""
        agent = request.agent
        run = self._runs.get(agent)
        if run is None:
            ended = self._ended.get(agent)
            if ended is not None and ended.cap.cutoff == "ask" and ended.reached():
                return Refuse(
                    0.0,
                    f"{agent}'s run ended at its cap of {cap_text(ended.cap)}: refused",
                    status=400,
                )
            return None
        if not run.reached():
            return None
        if run.cap.cutoff == "ask":
            self._capped(agent, run)  # said once: the run is paused and its operators asked
            return Hold(
                request.at + ASK_LOOK,
                f"{agent}'s run is paused at its cap of {cap_text(run.cap)} while its "
                "operators are asked to raise it",
            )
        return self._capped(agent, run)

    def claim(self, request: RequestInfo, estimate: Estimate) -> RunClaim | Refuse:
        """Claim ``estimate``'s worst case on the request's run, or refuse it (see the
        module)."""
        agent, run = request.agent, self._runs.get(request.agent)
        if run is None:
            return RunClaim(next(self._ids), agent, None, request.at)
        if run.reached():
            refused = self._capped(agent, run)
            if run.cap.cutoff == "ask":  # reached since its verdict: held when it comes again
                return Refuse(RETRY_INFLIGHT, refused.reason)
            return refused
        if run.cap.max_usd is not None and estimate.usd is None:
            model = estimate.model or request.model
            what = f"model {model!r} has no price" if model else "the request names no model"
            return Refuse(
                0.0,
                f"{agent}'s run is capped at {cap_text(run.cap)}, but {what}, so the cap "
                f"cannot charge it: {UNPRICED_FIX}",
                status=400,
            )
        if estimate.detached is not None:
            key = estimate.detached
            return Refuse(
                0.0,
                f"{agent}'s run is capped at {cap_text(run.cap)}, and `{key}` has the "
                "provider work on the request after answering it, so its usage never comes "
                f"back for the cap to count: send it without `{key}`",
                status=400,
            )
        worst_tokens, worst_usd = estimate.worst()
        worst: Worst = (None if worst_tokens is None else float(worst_tokens), worst_usd)
        if run.inflight and not run.fits(worst):
            return Refuse(
                RETRY_INFLIGHT,
                f"{agent}'s run is capped at {cap_text(run.cap)} and its requests in "
                "flight may reach it: try again when they end",
            )
        claim = RunClaim(next(self._ids), agent, run.key, request.at)
        run.inflight[claim.id] = worst
        return claim

    def settle(
        self, claim: RunClaim, tokens: int, cost: float | None, *, unmetered: bool = False
    ) -> None:
        """The claimed request's answer ended having used ``tokens`` (``cost`` dollars);
        ``unmetered``: it carried no usage, and is charged its worst case (see the module)."""
        run = self._runs.get(claim.agent)
        if claim.run_key is None:
            if run is not None:  # armed meanwhile: counted when it started after the run
                if claim.at >= run.started_at:
                    run.tokens, run.usd = run.tokens + tokens, run.usd + (cost or 0.0)
                return
            early = self._early.setdefault(claim.agent, [])
            early.append((claim.at, float(tokens), cost or 0.0))
            del early[:-_EARLY]
            return
        if run is None or run.key != claim.run_key:
            run = self._ended.get(claim.agent)  # its run ended while it was in flight
            if run is None or run.key != claim.run_key:
                return
        worst_tokens, worst_usd = run.inflight.pop(claim.id, (None, None))
        if unmetered:
            spent = _unmetered(
                claim.agent, run, (float(tokens), cost or 0.0), worst_tokens, worst_usd
            )
            run.tokens, run.usd = run.tokens + spent[0], run.usd + spent[1]
            return
        over = (worst_tokens is not None and tokens > worst_tokens) or (
            worst_usd is not None and (cost or 0.0) > worst_usd
        )
        if over and not run.alone:  # said once: the run goes one at a time from then on
            log.warning(
                "%s: a request used %s tokens, more than its worst case %s: its run's "
                "requests go one at a time from now",
                claim.agent,
                tokens,
                worst_tokens,
            )
        run.alone = run.alone or over
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


def _unmetered(
    agent: str,
    run: _Run,
    floor: tuple[float, float],
    worst_tokens: float | None,
    worst_usd: float | None,
) -> tuple[float, float]:
    """What an answer without usage is charged on ``run``: its request's worst case (at
    least ``floor``, what the meter counted), or, where nothing bounded it, what is left
    under the cap, so the cap counts as reached."""
    cap = run.cap
    tokens, usd = floor
    if worst_tokens is not None:
        tokens = max(tokens, worst_tokens)
    elif cap.max_tokens is not None:
        tokens = max(tokens, cap.max_tokens - run.tokens)
    if worst_usd is not None:
        usd = max(usd, worst_usd)
    elif cap.max_usd is not None:
        usd = max(usd, cap.max_usd - run.usd)
    log.warning(
        "%s: an answer carried no usage; its run's cap charges it %s tokens%s",
        agent,
        f"{tokens:,.0f}",
        "" if cap.max_usd is None else f" (${usd:,.4f})",
    )
    return tokens, usd


class CappedPolicy:
    """The proxy's policy: the run caps first, then ``inner`` (the budgets'). ``spent``:
    told what each settled request of an agent used (tokens, dollars) — what its run's
    quote holds against the budgets comes down by it."""

    def __init__(
        self,
        inner: Policy,
        caps: RunCaps,
        spent: Callable[[str, int, float | None], None] | None = None,
    ) -> None:
        self.inner = inner
        self.caps = caps
        self._spent = spent
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

    def settle(
        self, reservation: Reservation, tokens: int, cost: float | None, *, unmetered: bool = False
    ) -> None:
        claim = self._claims.pop(reservation.id, None)
        if claim is not None:
            self.caps.settle(claim, tokens, cost, unmetered=unmetered)
            if self._spent is not None:
                self._spent(claim.agent, tokens, cost)
        if reservation.id > 0:
            self.inner.settle(reservation, tokens, cost)

"""The budgets at work: what each budget has used, how that compares with an even spread,
and what the proxy's policy should do about it. The one :class:`BudgetBook` of a running
Fleetwarden.

Each **tick** (an APScheduler job, every ``pacing.tick_seconds``) reads the ledger, applies
the pacing law to every budget, hands the statuses to the :class:`PacingPolicy` the
metering proxy consults, and returns the ladder steps that changed, for posting.

What each budget has used, and where the numbers come from, is
:class:`fleet.budgets.pacing.measures.Measures`'.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import replace
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from fleet.budgets.model import (
    BudgetError,
    BudgetStatus,
    Cutoffs,
    Groups,
    Transition,
    contradictions,
    covers,
    governing,
)
from fleet.budgets.pacing.law import SpendEstimator, TaskSpend, prompt_class
from fleet.budgets.pacing.measures import Measures
from fleet.budgets.pacing.policy import PacingPolicy
from fleet.budgets.pacing.typical import TypicalSpend, typical_spend
from fleet.budgets.quoting.holds import Holds
from fleet.budgets.stores import BudgetStores
from fleet.ledger import StepRecord
from fleet.ledger.records.budgets import Budget, Burst, Cutoff, Scope, Step
from fleet.notices import NoticeBoard
from fleet.timing.clock import Clock

log = logging.getLogger(__name__)


class BudgetService:
    """Budgets from the config and from ``budget set``, paced against the ledger."""

    def __init__(
        self,
        *,
        stores: BudgetStores,
        budgets: Mapping[str, Budget],
        groups: Groups,
        timezone: ZoneInfo,
        clock: Clock,
        policy: PacingPolicy,
        notices: NoticeBoard | None = None,
        via: Callable[[str], Sequence[Scope]] | None = None,
        unenforceable: str | None = None,
    ) -> None:
        """``via``: the account and provider scopes an agent's requests go through now
        (after its groups, before global, in the scope rule). ``unenforceable``: why no
        budget could bind (metering is off), refusing ``budget set`` with it."""
        self._unenforceable = unenforceable
        self._stores = stores
        self._via = via or (lambda agent: ())
        self._budgets = dict(budgets)
        self._configured = dict(budgets)  # what ``budget unset`` puts back
        self._groups = groups
        self._tz = timezone
        self._clock = clock
        self.policy = policy
        self._notices = notices  # where a step change made outside the pacing job goes
        self._measures = Measures(stores, groups, timezone)
        self._cutoffs: Cutoffs | None = None
        self._between: set[asyncio.Task[None]] = set()  # changes a request made, being posted
        self.holds = Holds(self)  # what live runs' quotes hold against the budgets
        policy.on_transition = self._on_request_transition

    async def enforce_with(self, cutoffs: Cutoffs) -> None:
        """Who carries out a budget's ``cutoff`` (freeze, stop) when it runs out; the
        budgets already out (crossed while Fleetwarden was down) have theirs carried out
        now."""
        self._cutoffs = cutoffs
        for key, agents in self.policy.refusing():
            budget = self._budgets.get(key)
            if budget is not None and budget.cutoff is not Cutoff.REFUSE:
                now = Transition(key, agents, Step.NONE, Step.REFUSE, f"{key} is at its limit")
                await cutoffs.apply(now, budget.cutoff)

    async def start(self) -> None:
        """Take in what the ledger holds: budgets set by command (over the config's of the
        same scope) and bursts still running; then a first tick, so the policy knows where
        every budget stands before the first request."""
        for budget in await self._stores.budgets.command_budgets():
            self._budgets[budget.key] = budget
        for burst in await self._stores.budgets.active_bursts(self.now()):
            self.policy.allow_burst(burst)
        steps = await self._stores.budgets.load_steps()
        self.policy.resume({k: (r.step, r.level, r.changed_at) for k, r in steps.items()})
        await self.tick()

    # -- BudgetBook --------------------------------------------------------------------

    @property
    def timezone(self) -> ZoneInfo:
        return self._tz

    def now(self) -> datetime:
        return self._clock.now()

    def budgets(self) -> list[Budget]:
        return [self._budgets[key] for key in sorted(self._budgets, key=_order)]

    async def statuses(self) -> list[BudgetStatus]:
        return [
            self._held(self.policy.annotate(s))
            for s in await self._measures.statuses(self.budgets(), self.now())
        ]

    def _held(self, status: BudgetStatus) -> BudgetStatus:
        """``status`` with what the live runs' quotes hold against it."""
        held = self.holds.held(status.budget.key, status.unit)
        return replace(status, held=held.amount, holding=held.runs)

    def governing_key(self, agent: str) -> str | None:
        """The budget that governs ``agent`` (the scope rule: the most specific of its
        own, its groups', the host's, account's and provider's its requests go through, and
        global), if any."""
        budget = governing(agent, self._budgets, self._groups, self._via(agent))
        return None if budget is None else budget.key

    def live(self, key: str) -> tuple[BudgetStatus, float] | None:
        """Budget ``key`` as of the last tick, and what it has used now."""
        return self.policy.live_status(key)

    def live_dollars(self, key: str) -> float | None:
        """The dollars budget ``key`` with limits in both measures has used now."""
        return self.policy.live_dollars(key)

    async def set_budget(self, budget: Budget, by: str) -> Budget:
        if self._unenforceable is not None:
            raise BudgetError(self._unenforceable)
        problems = contradictions(budget, self._groups, self.now())
        if problems:
            raise BudgetError("; ".join(f"{field}: {message}" for field, message in problems))
        await self._stores.budgets.set_budget(budget, by)
        self._budgets[budget.key] = budget
        self._measures.forget(budget.key)
        log.info("budget %s set by %s", budget.key, by)
        await self._tick_and_announce()
        return budget

    async def unset_budget(self, scope: Scope, by: str) -> tuple[Budget, Budget | None]:
        removed = self._budgets.get(str(scope))
        if removed is None or removed.source != "command":
            raise BudgetError(_not_set(scope, removed))
        await self._stores.budgets.remove_budget(scope)
        back = self._configured.get(str(scope))
        if back is None:
            del self._budgets[str(scope)]
        else:
            self._budgets[str(scope)] = back
        self._measures.forget(str(scope))
        log.info("budget %s unset by %s", scope, by)
        await self._tick_and_announce()
        return removed, back

    async def end_burst(self, scope: Scope, by: str) -> int:
        ended = await self._stores.budgets.end_bursts(scope, self.now())
        self.policy.end_bursts(scope)
        log.info("bursts on %s ended by %s: %d", scope, by, ended)
        if ended:
            await self._tick_and_announce()
        return ended

    async def allow_burst(self, burst: Burst) -> Burst:
        now = self.now()
        if burst.until <= now:
            raise BudgetError(
                f"the burst would end at {burst.until:%Y-%m-%d %H:%M} UTC, "
                "which has passed: give a time in the future"
            )
        budgets = self._budgets.values()
        if not any(covers(budget.scope, burst.scope, self._groups) for budget in budgets):
            raise BudgetError(
                f"no budget applies to {burst.scope}: a burst lifts a budget's "
                "pace, so set one first (`budget set`)"
            )
        granted = Burst(burst.scope, burst.until, burst.granted_by, burst.reason, now)
        await self._stores.budgets.add_burst(granted)
        self.policy.allow_burst(granted)
        if self._cutoffs is not None:
            for budget in self._budgets.values():
                if covers(budget.scope, granted.scope, self._groups):
                    await self._cutoffs.release(budget.key)
        log.info("burst on %s until %s granted by %s", burst.scope, burst.until, burst.granted_by)
        return granted

    # -- what the app asks ---------------------------------------------------------------

    async def _tick_and_announce(self) -> None:
        """A tick outside the pacing job (a budget set by command): post what changed."""
        for transition in await self.tick():
            if self._notices is not None:
                await self._notices.post(transition.notice())  # the board logs failures

    async def tick(self) -> list[Transition]:
        """Recompute every budget, update the policy, return the steps that changed (their
        cutoffs carried out)."""
        now = self.now()
        mark = self.policy.live.mark()  # before the ledger is read: see fleet.budgets.pacing.live
        statuses = await self._measures.statuses(self.budgets(), now)
        agents = await self._agents(now)
        rule = {
            agent: budget.key
            for agent in agents
            if (budget := governing(agent, self._budgets, self._groups, self._via(agent)))
            is not None
        }
        transitions = self.policy.update(statuses, rule, now, mark)
        await self._settle_steps(transitions, now)
        return transitions

    async def _settle_steps(self, transitions: Sequence[Transition], now: datetime) -> None:
        """Save where the changed budgets stand, then carry out their cutoffs."""
        if not transitions:
            return
        changed = dict.fromkeys(t.budget for t in transitions)
        await self._stores.budgets.save_steps(
            [StepRecord(key, *self.policy.place_of(key), now) for key in changed]
        )
        if self._cutoffs is None:
            return
        for transition in transitions:
            budget = self._budgets.get(transition.budget)
            try:
                await self._cutoffs.apply(transition, budget.cutoff if budget else Cutoff.REFUSE)
            except Exception:
                log.exception("could not carry out the cutoff of %s", transition.budget)

    def _on_request_transition(self, transition: Transition) -> None:
        """A request found its budget at the limit between ticks: post it (once), save the
        step and carry out the cutoff, off the request's path."""

        async def announce() -> None:
            try:
                await self._settle_steps([transition], self.now())
            finally:
                if self._notices is not None:
                    await self._notices.post(transition.notice())

        task = asyncio.get_running_loop().create_task(announce(), name="budget-limit")
        self._between.add(task)
        task.add_done_callback(self._between.discard)

    async def drain(self) -> None:
        """Wait for the limit changes requests made to be posted (at stop)."""
        if self._between:
            await asyncio.gather(*self._between, return_exceptions=True)

    def next_reset(self) -> datetime | None:
        """The earliest end of a budget's current window, for the reset job."""
        now = self.now()
        ends = [self._measures.bounds(b, now)[1] for b in self._budgets.values()]
        return min((end for end in ends if end > now), default=None)

    def queued_until(self, agent: str) -> datetime | None:
        return self.policy.queued_until(agent)

    async def governing_status(self, agent: str) -> BudgetStatus | None:
        """The status now of the budget that governs ``agent`` (``None``: none does)."""
        budget = governing(agent, self._budgets, self._groups, self._via(agent))
        if budget is None:
            return None
        return next((s for s in await self.statuses() if s.budget.key == budget.key), None)

    async def governing_statuses(self, agents: Iterable[str]) -> dict[str, BudgetStatus]:
        """Each of ``agents``' governing budget's status now (those no budget governs are
        absent), the budgets assessed once for all of them."""
        keys = {
            agent: budget.key
            for agent in agents
            if (budget := governing(agent, self._budgets, self._groups, self._via(agent)))
        }
        if not keys:
            return {}
        statuses = {s.budget.key: s for s in await self.statuses()}
        return {agent: statuses[key] for agent, key in keys.items() if key in statuses}

    async def admit_spawn(self, agent: str, *, urgent: bool) -> tuple[bool, str]:
        return self.policy.admit_spawn(agent, urgent, await self._expected(agent))

    async def typical(self) -> TypicalSpend:
        """Each agent's and each budget's typical day (:mod:`fleet.budgets.pacing.typical`)."""
        return await typical_spend(
            self._stores.metering, self.budgets(), self._groups.covers, self.now()
        )

    async def _expected(self, agent: str) -> float | None:
        """What a launch of ``agent`` is expected to spend, learned from past runs."""
        record = await self._stores.agents.get_agent(agent)
        if record is None:
            return None
        history = [
            TaskSpend(runtime, model, prompt_class(prompt or ""), tokens)
            for runtime, model, prompt, tokens in await self._stores.metering.run_spend()
        ]
        spec = record.spec
        return SpendEstimator(history).expected(
            spec.runtime, spec.model, prompt_class(spec.prompt or "")
        )

    async def _agents(self, now: datetime) -> set[str]:
        names: set[str] = {record.name for record in await self._stores.agents.list_agents()}
        names |= set(await self._stores.metering.tokens_by_agent(now - timedelta(days=31)))
        return names


def _not_set(scope: Scope, budget: Budget | None) -> str:
    """Why ``budget unset`` cannot unset ``scope``'s budget (``budget``: the one in force)."""
    if budget is None:
        return f"{scope} has no budget to unset: `budget` lists the budgets"
    return (
        f"{scope}'s budget is the config's, not one set in chat: change it in the config file "
        "(`budget set` replaces it until `budget unset`)"
    )


def _order(key: str) -> tuple[int, str]:
    """Budgets listed global first, then groups, then agents."""
    return ({"global": 0, "group": 1}.get(key.split(":", 1)[0], 2), key)

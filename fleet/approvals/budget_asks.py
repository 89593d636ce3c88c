"""Asks at a budget's limit (``cutoff: ask``): the agents it governs are frozen
(:class:`~fleet.supervisor.cutoffs.CutoffKeeper`) and the operators asked, once per window,
to raise the limit or stop them.

The ask is a spend ask (:mod:`fleet.approvals.spend`: Fleetwarden's own ``spend`` channel,
its offer and fallback in its record) of no agent and no run: its ``agent`` is
``budget:SCOPE`` (no agent is named so) and its run 0, so it is shown in the home rooms and
answered there — ✅ raises the limit by the offer (half the limit), ❌ stops the agents it
froze, ``raise budget SCOPE [+AMOUNT]`` raises it by AMOUNT — an operator's only as the
answer of the open ask, by at most its offer; any other raise is an admin's, as ``budget
set`` is. A raise sets the budget as
``budget set`` does (recorded with who, surviving restarts), and the budget's step leaves
``refuse``, which continues its agents. Nobody answering within :data:`ASK_WITHIN` leaves
them frozen until the window resets (or a later ``raise budget``).
"""

from __future__ import annotations

import asyncio
import logging
from contextlib import suppress
from dataclasses import replace
from datetime import timedelta
from typing import Final, Protocol

from fleet.approvals.service import AlreadyAnswered, Approvals
from fleet.budgets.model import BudgetError, BudgetStatus
from fleet.budgets.runs.asking import RaiseError, Unit, amount_text, parse_raise, raise_word
from fleet.errors import AgentNotRunning, FleetError
from fleet.ledger.records.approvals import ApprovalRequest, ApprovalState, Ask, Decision
from fleet.ledger.records.budgets import Budget, Cutoff, Freeze
from fleet.ledger.records.epoch import to_epoch
from fleet.ledger.stores.spend.spend_asks import SpendAsk, SpendAsksStore, SpendOutcome
from fleet.model import ExitInfo, RunBudget
from fleet.transcript.story import Outcome

log = logging.getLogger(__name__)

PREFIX: Final = "budget:"
"""What the ``agent`` of a budget's ask starts with (no agent's name has a colon)."""
ASK_WITHIN: Final = timedelta(minutes=30)
NO_RUN: Final = 0
RAISED: Final = "raise"
"""How an ask answered by ``raise`` is recorded: carried out by the command itself."""


class RaiseDenied(FleetError):
    """A raise of a budget's limit that needs the admin role; the message says so."""


class BudgetBook(Protocol):
    """What the asks need of the budgets (:class:`~fleet.budgets.service.BudgetService`)."""

    def budgets(self) -> list[Budget]: ...

    async def statuses(self) -> list[BudgetStatus]: ...

    async def set_budget(self, budget: Budget, by: str) -> Budget: ...


class BudgetFleet(Protocol):
    """What the asks need of the fleet: who a budget froze, and to stop them."""

    async def frozen(self) -> list[Freeze]: ...

    async def stop_agent(
        self,
        name: str,
        *,
        force: bool = False,
        by: str = "operator",
        outcome: Outcome = Outcome.STOPPED,
    ) -> ExitInfo: ...


def is_budget_ask(agent: str) -> bool:
    """Whether a spend ask's ``agent`` names a budget, not an agent."""
    return agent.startswith(PREFIX)


class BudgetAsks:
    """Opens the asks at budgets' limits and carries out their answers."""

    def __init__(
        self,
        approvals: Approvals,
        asks: SpendAsksStore,
        book: BudgetBook,
        fleet: BudgetFleet | None,
        channel: str,
    ) -> None:
        self._approvals = approvals
        self._asks = asks
        self._book = book
        self._fleet = fleet
        self._channel = channel
        self._raising = asyncio.Lock()  # a raise by command, against a ✅ meanwhile

    def _budget(self, key: str) -> Budget:
        for budget in self._book.budgets():
            if budget.key == key:
                return budget
        raise FleetError(f"no budget {key!r}: `budget` lists them")

    async def ask_at_limit(self, key: str, agents: tuple[str, ...]) -> bool:
        """Ask, once per window, to raise budget ``key`` or stop its ``agents``; whether it
        was asked (or had been)."""
        budget = self._budget(key)
        unit, limit = _measure(budget)
        starts = [s.start for s in await self._book.statuses() if s.budget.key == key]
        window_start = to_epoch(starts[0]) if starts else 0.0
        for earlier in await self._asks.spend_asks_of(PREFIX + key, NO_RUN):
            if to_epoch(earlier.asked_at) >= window_start:
                return True  # asked in this window already (its agents or words may differ)
        offer = _half(unit, limit)
        names = ", ".join(agents) or "none running"
        ask = Ask(
            native_id=f"{key}:{window_start:.0f}",
            tool="spend",
            subject=f"{key} reached its {amount_text(unit, limit)} limit (its agents: {names})",
            detail=(
                f"`raise budget {key} {raise_word(unit, offer)}`, or deny this ask (❌) to "
                "stop its agents. "
                f"Unanswered within {int(ASK_WITHIN.total_seconds() // 60)} min, they stay "
                "frozen until the window resets."
            ),
        )
        request = await self._approvals.open(
            agent=PREFIX + key,
            run_id=NO_RUN,
            channel=self._channel,
            ask=ask,
            wait_seconds=ASK_WITHIN.total_seconds(),
            max_open=1,
            starter=None,
            ruled=False,
        )
        await self._asks.record_spend_ask(
            SpendAsk(request.id, request.agent, NO_RUN, unit, limit, offer, "freeze",
                     request.asked_at)
        )  # fmt: skip
        return True

    async def raise_by_command(
        self,
        key: str,
        amount: str | None,
        asked: tuple[ApprovalRequest, SpendAsk] | None,
        *,
        by: str,
        admin: bool,
    ) -> str:
        """``raise budget KEY [AMOUNT]`` with ``asked``, its open ask: what was done. Not
        ``admin``: only the ask is answered, by at most its offer (else
        :class:`RaiseDenied`). The ask is answered once the limit is raised — a raise that
        fails leaves it open — and its row settled first, so a ✅ meanwhile raises nothing
        more. Raises :class:`FleetError` saying why."""
        unit, value = self.amount(key, amount, asked[1] if asked else None)
        if not admin:
            _answers_ask(key, asked, unit, value)
        async with self._raising:
            said = await self.raise_limit(key, unit, value, by)
            if asked is not None:
                await self._asks.settle_spend_ask(asked[1].approval_id, "raised", value, by)
        if asked is not None:
            why = f"raised by {amount_text(unit, value)}"
            with suppress(AlreadyAnswered):  # answered meanwhile: raised once, by this
                await self._approvals.answer(
                    asked[0].id, by=by, decision=Decision.ALLOW, how=RAISED, reason=why
                )
        return said

    async def deliver(self, request: ApprovalRequest, ask: SpendAsk, by: str) -> None:
        """Carry out an answer to budget ``ask``. A ✅ whose raise fails is settled
        ``frozen`` — nothing raised, its agents stay frozen (`raise budget` or `budget
        set` continues them) — and logged."""
        key = ask.agent.removeprefix(PREFIX)
        outcome: SpendOutcome = "frozen"
        amount = None
        if request.state is ApprovalState.ALLOWED:
            async with self._raising:
                settled = await self._asks.spend_ask(ask.approval_id)
                if settled is not None and settled.outcome is not None:
                    return  # `raise budget` raised it first
                try:
                    await self.raise_limit(key, _unit(ask.unit), ask.offer, by)
                    outcome, amount = "raised", ask.offer
                except FleetError as exc:
                    log.warning("%s: the raise %s allowed was not made: %s", key, by, exc)
                await self._asks.settle_spend_ask(ask.approval_id, outcome, amount, by)
            return
        if request.state is ApprovalState.DENIED:
            await self.stop_agents(key, f"{by}, at {key}'s limit")
            outcome = "stopped"
        elif request.state is not ApprovalState.TIMED_OUT:
            outcome = "closed"
        await self._asks.settle_spend_ask(ask.approval_id, outcome, amount, by)

    def amount(self, key: str, text: str | None, asked: SpendAsk | None) -> tuple[Unit, float]:
        """The raise ``text`` says on budget ``key`` (``None``: the ask's offer, else half
        the limit). Raises :class:`FleetError` saying what to write."""
        budget = self._budget(key)
        unit, limit = _measure(budget)
        if text is None:
            return unit, asked.offer if asked is not None else _half(unit, limit)
        cap = RunBudget(
            max_tokens=budget.limit_tokens if unit == "tokens" else None,
            max_usd=budget.limit_usd if unit == "usd" else None,
        )
        try:
            return parse_raise(text, cap, unit)
        except RaiseError as exc:
            raise FleetError(str(exc).replace("the cap", f"{key}'s limit")) from None

    async def raise_limit(self, key: str, unit: Unit, amount: float, by: str) -> str:
        """Raise budget ``key``'s limit by ``amount`` of ``unit``, as ``budget set`` does."""
        budget = self._budget(key)
        if unit == "usd":
            raised = replace(budget, limit_usd=round((budget.limit_usd or 0.0) + amount, 2))
        else:
            raised = replace(budget, limit_tokens=int((budget.limit_tokens or 0) + amount))
        try:
            done = await self._book.set_budget(replace(raised, source="command"), by)
        except BudgetError as exc:
            raise FleetError(f"{key}'s limit was not raised: {exc}") from None
        _, limit = _measure(done)
        return (
            f"Raised {key}'s limit by {amount_text(unit, amount)} to "
            f"{amount_text(unit, limit)}: its agents continue."
        )

    async def stop_agents(self, key: str, by: str) -> list[str]:
        """Stop every agent budget ``key`` froze, recorded as cut off; their names."""
        fleet = self._fleet
        if fleet is None:
            return []
        stopped = []
        for freeze in await fleet.frozen():
            if freeze.budget != key:
                continue
            try:
                await fleet.stop_agent(freeze.agent, by=by, outcome=Outcome.CUT_OFF)
                stopped.append(freeze.agent)
            except AgentNotRunning:
                pass
            except FleetError as exc:
                log.warning("%s: could not stop %s at its limit: %s", key, freeze.agent, exc)
        return stopped

    def asks(self, key: str) -> bool:
        """Whether budget ``key`` asks at its limit."""
        try:
            return self._budget(key).cutoff is Cutoff.ASK
        except FleetError:
            return False


def _answers_ask(
    key: str, asked: tuple[ApprovalRequest, SpendAsk] | None, unit: Unit, value: float
) -> None:
    """Refuse an operator's raise of budget ``key`` that does not answer its open ask by
    at most its offer: that is an admin's, as `budget set` is."""
    if asked is not None and unit == asked[1].unit and value <= asked[1].offer:
        return
    if asked is None:
        why = f"{key} has no open ask"
    else:
        offered = amount_text(_unit(asked[1].unit), asked[1].offer)
        why = f"its ask offers {offered} (`raise budget {key}` grants it)"
    raise RaiseDenied(
        f"{why}: any other raise of a budget's limit needs the admin role, as `budget set` "
        "does — an operator answers an open ask by at most its offer"
    )


def _unit(text: str) -> Unit:
    return "usd" if text == "usd" else "tokens"


def _measure(budget: Budget) -> tuple[Unit, float]:
    if budget.limit_usd is not None:
        return "usd", budget.limit_usd
    return "tokens", float(budget.limit_tokens or 0)


def _half(unit: Unit, limit: float) -> float:
    return max(round(limit / 2, 2), 0.01) if unit == "usd" else float(max(int(limit // 2), 1))

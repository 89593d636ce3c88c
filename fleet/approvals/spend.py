"""Asks at a run's cap (``cutoff: ask``): the run is frozen at its cap
(:mod:`fleet.budgets.runs.watch`) and its operators are asked, once per task and cap, to
raise the cap or stop the run.

The ask is an approval request on Fleetwarden's own channel, ``spend``: it is shown in the
agent's thread, answered once by a reaction (✅ raise by the offer, ❌ stop), a reply
(``yes`` / ``no``), ``approve ID`` / ``deny ID``, the ``raise NAME [+AMOUNT]`` command, or a
comment on a forge run's issue; it times out by its deadline, is audited and listed by
``pending`` and the dashboard — all as the agents' own asks are. What is carried out is
read from Fleetwarden's record of the ask (:mod:`fleet.ledger.stores.spend.spend_asks`: the raise
offered, its measure, the fallback), never from the request's words, and only this
channel's deliverer acts on an answer: an agent's ask on another channel can neither look
like a spend ask nor raise a cap. No rule an ``always`` answer taught decides it.

A raise lifts the cap of the live run (:meth:`~fleet.budgets.runs.caps.RunCaps.raise_cap`,
told again at the new cap) and of the agent's spec in the ledger (a restart of the run, or
of Fleetwarden, keeps it), and thaws the run. It is the task's: raise after raise offers
the cap the task began with, and a new task begins at the agent's cap as configured. A
comment on a forge run's issue raises only by answering that run's own open ask, by at most
its offer; ``stop NAME`` answers the ask once the run is stopped. A stop stops it,
recorded as cut off. Nobody answering applies the fallback: ``stop``, or ``freeze`` — it
stays frozen, and ``raise`` or ``resume`` still continues it. An open ask lives in the
ledger: a restarted Fleetwarden registers this channel again and the ask stays
answerable. A budget's ask at its limit is one of this channel's too
(:mod:`fleet.approvals.budget_asks`).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from dataclasses import replace
from typing import Protocol

from fleet.approvals.budget_asks import (
    PREFIX,
    RAISED,
    BudgetAsks,
    BudgetBook,
    RaiseDenied,
    is_budget_ask,
)
from fleet.approvals.service import AlreadyAnswered, ApprovalEvent, Approvals
from fleet.budgets.runs.asking import (
    RaiseError,
    Unit,
    amount_text,
    ask_detail,
    ask_subject,
    offer,
    parse_raise,
    raise_word,
    raised,
    reached_unit,
)
from fleet.budgets.runs.budget import cap_text
from fleet.budgets.runs.caps import RunCaps
from fleet.budgets.runs.watch import UNANSWERED, CutoffFleet
from fleet.errors import AgentNotRunning, FleetError
from fleet.ledger.records.approvals import ApprovalRequest, ApprovalState, Ask, Decision
from fleet.ledger.records.budgets import Freeze
from fleet.ledger.records.epoch import to_epoch
from fleet.ledger.stores.running.agents import AgentsStore
from fleet.ledger.stores.running.runs import RunsStore
from fleet.ledger.stores.spend.spend_asks import SpendAsk, SpendAsksStore
from fleet.metering import units
from fleet.model import RunBudget
from fleet.notices import starter
from fleet.transcript.story import Outcome

log = logging.getLogger(__name__)

CHANNEL = "spend"
TOOL = "spend"
STOPPED = "stop"  # and one answered by `stop NAME`


class SpendError(FleetError):
    """A raise or a stop that cannot be carried out; the message says why and what to do."""


class SpendDenied(SpendError):
    """A raise the asker's role does not allow; the message says who may make it."""


class SpendFleet(CutoffFleet, Protocol):
    """What the asks need of the fleet: to freeze, thaw and stop a run."""

    async def thaw(self, name: str) -> bool: ...

    async def frozen(self) -> list[Freeze]: ...


class SpendAsks:
    """Opens the asks at a run's cap and carries out their answers (see the module)."""

    def __init__(
        self,
        approvals: Approvals,
        asks: SpendAsksStore,
        agents: AgentsStore,
        runs: RunsStore,
        caps: RunCaps,
        fleet: SpendFleet | None,
    ) -> None:
        self._approvals = approvals
        self._asks = asks
        self._agents = agents
        self._runs = runs
        self._caps = caps
        self._fleet = fleet
        self._budgets: BudgetAsks | None = None
        self._stopping: set[str] = set()  # asks a `stop NAME` under way answers

    def ask_for_budgets(self, book: BudgetBook) -> None:
        """Ask at the limits of ``book``'s budgets with ``cutoff: ask`` too."""
        self._budgets = BudgetAsks(self._approvals, self._asks, book, self._fleet, CHANNEL)

    async def start(self) -> None:
        """Carry out this channel's answers from now on (asks opened before a restart too),
        and keep on each ask's row how it ended when its run ended first."""
        await self._approvals.register(CHANNEL, self._deliver)
        self._approvals.subscribe(self._on_event)

    async def _on_event(self, event: ApprovalEvent) -> None:
        """An ask closed because its run ended before anyone answered (nothing is carried
        out then: a closed request is delivered to nobody) is settled ``closed``."""
        request = event.request
        if event.opened or request.channel != CHANNEL:
            return
        if request.state is ApprovalState.CLOSED and request.id not in self._stopping:
            await self._asks.settle_spend_ask(request.id, "closed", None, None)

    # -- asking --------------------------------------------------------------------------

    async def ask_at_cap(self, agent: str, cap: RunBudget, spent: tuple[float, float]) -> bool:
        """Ask ``agent``'s operators to raise ``cap`` or stop its run; once per task and
        cap (asked already: nothing more). Whether it is asked."""
        run = await self._runs.last_run(agent)
        if run is None or run.ended_at is not None:
            return False
        tokens, usd = spent
        unit = reached_unit(cap, tokens, usd)
        limit = cap.max_usd if unit == "usd" else cap.max_tokens
        since = to_epoch(cap.since) if cap.since is not None else 0.0
        native = f"cap:{since:.3f}:{unit}:{limit}"
        for earlier in await self._asks.spend_asks_of(agent, run.id):
            if earlier.unit == unit and earlier.cap == limit:
                return True
        amount = offer(cap, unit)
        used = units.tokens_words(tokens) + (
            f" ({units.usd(usd)})" if cap.max_usd is not None else ""
        )
        ask = Ask(
            native_id=native,
            tool=TOOL,
            subject=ask_subject(agent, cap, used),
            detail=ask_detail(agent, unit, amount, cap.then, cap.ask_within),
        )
        start = await self._runs.run_start(run.id)
        request = await self._approvals.open(
            agent=agent,
            run_id=run.id,
            channel=CHANNEL,
            ask=ask,
            wait_seconds=cap.ask_within,
            max_open=1,
            starter=starter(start.trigger) if start is not None else None,
            ruled=False,
        )
        await self._asks.record_spend_ask(
            SpendAsk(
                approval_id=request.id,
                agent=agent,
                run_id=run.id,
                unit=unit,
                cap=float(limit or 0),
                offer=amount,
                fallback=cap.then,
                asked_at=request.asked_at,
            )
        )
        log.info("%s: asked its operators at its cap (%s)", agent, request.id)
        return True

    async def ask_at_limit(self, key: str, agents: tuple[str, ...]) -> bool:
        """Ask, once per window, to raise budget ``key`` or stop its ``agents``
        (:mod:`fleet.approvals.budget_asks`); whether it was asked."""
        if self._budgets is None:
            return False
        return await self._budgets.ask_at_limit(key, agents)

    async def raise_budget(
        self, key: str, amount: str | None, *, by: str, admin: bool = False
    ) -> str:
        """``raise budget SCOPE [+AMOUNT]``: raise the limit of budget ``key`` — one with
        ``cutoff: ask`` — by ``amount`` (``None``: its ask's offer, else half the limit);
        what was done. Without ``admin``, only its open ask is answered, by at most its
        offer (:class:`SpendDenied` otherwise). The ask is answered once the limit is
        raised: a raise that fails leaves it open. Raises :class:`SpendError`."""
        budgets = self._budgets
        if budgets is None or not budgets.asks(key):
            raise SpendError(
                f"no budget {key!r} asks at its limit: `raise budget SCOPE` raises a budget "
                "with `cutoff: ask` (`budget set` sets any budget's limit)"
            )
        asked = await self.open_ask(PREFIX + key)
        try:
            return await budgets.raise_by_command(key, amount, asked, by=by, admin=admin)
        except RaiseDenied as exc:
            raise SpendDenied(str(exc)) from None
        except FleetError as exc:
            raise SpendError(str(exc)) from None

    async def open_ask(self, agent: str) -> tuple[ApprovalRequest, SpendAsk] | None:
        """``agent``'s open ask at its cap, with Fleetwarden's record of it, if any."""
        for request in await self._approvals.pending(agent):
            if request.channel != CHANNEL:
                continue
            ask = await self._asks.spend_ask(request.id)
            if ask is not None:
                return request, ask
        return None

    # -- answering -----------------------------------------------------------------------

    async def raise_cap(
        self,
        agent: str,
        amount: str | None,
        *,
        by: str,
        how: str = RAISED,
        run_id: int | None = None,
    ) -> str:
        """``raise NAME [+AMOUNT]``: raise ``agent``'s live run's cap by ``amount`` (``None``:
        by the offer of its open ask, else the cap its task began with) and thaw it; answers
        its open ask first, and raises only if that answer won. ``run_id`` (a forge
        comment's): only as the answer to that run's open ask, by at most its offer —
        nothing is raised when none is open (it timed out, or was answered). What was done,
        in words. Raises :class:`SpendError`."""
        capped = self._caps.cap_of(agent)
        if capped is None:
            raise SpendError(
                f"{agent} has no capped run going: `raise` lifts the cap of a live run "
                "(`spawn NAME --max-usd X` starts one with another cap)"
            )
        cap, tokens, usd = capped
        asked = await self.open_ask(agent)
        if run_id is not None and (asked is None or asked[1].run_id != run_id):
            raise SpendError(
                f"{agent}'s ask at its cap is no longer open (answered, or nobody answered "
                f"in time): an operator's `raise {agent}` in chat continues it"
            )
        reached = reached_unit(cap, tokens, usd)
        unit: Unit
        if amount is None:
            unit = _unit(asked[1].unit) if asked is not None else reached
            value = asked[1].offer if asked is not None else offer(cap, unit)
        else:
            try:
                unit, value = parse_raise(amount, cap, reached)
            except RaiseError as exc:
                raise SpendError(str(exc)) from None
        if run_id is not None and asked is not None:
            offered = asked[1].offer
            if unit != asked[1].unit or value > offered:
                word = raise_word(_unit(asked[1].unit), offered)
                raise SpendError(
                    f"a comment raises {agent}'s cap by at most the "
                    f"{amount_text(_unit(asked[1].unit), offered)} offered (`raise {word}`): "
                    f"an operator raises more in chat (`raise {agent} +AMOUNT`)"
                )
        if asked is not None:
            request, _ = asked
            why = f"raised by {amount_text(unit, value)}"
            try:
                await self._approvals.answer(
                    request.id, by=by, decision=Decision.ALLOW, how=how, reason=why
                )
            except AlreadyAnswered as exc:
                raise SpendError(str(exc)) from None
        return await self._raise(agent, unit, value, by, asked[1] if asked else None)

    async def stop_asked(
        self, agent: str, *, by: str, how: str = "comment", run_id: int | None = None
    ) -> bool:
        """Answer ``agent``'s open ask at its cap (``run_id``: only one of that run) with a
        stop, carried out by this channel's deliverer (recorded as cut off); whether it had
        one open. ``stop NAME`` answers with :meth:`stopping` instead."""
        asked = None if is_budget_ask(agent) else await self.open_ask(agent)
        if asked is None or (run_id is not None and asked[1].run_id != run_id):
            return False
        try:
            await self._approvals.answer(
                asked[0].id, by=by, decision=Decision.DENY, how=how, reason="stopped"
            )
        except AlreadyAnswered:
            return False
        return True

    @asynccontextmanager
    async def stopping(self, agent: str, *, by: str) -> AsyncIterator[None]:
        """``stop NAME`` under way: ``agent``'s open ask at its cap, if any, is answered by
        the stop once it succeeded (recorded ``stopped``, though the run's end closed the
        ask meanwhile); a stop that fails answers nothing. A budget's ask is never an
        agent's to stop."""
        asked = None if is_budget_ask(agent) else await self.open_ask(agent)
        if asked is None:
            yield
            return
        request, ask = asked
        self._stopping.add(request.id)
        try:
            yield
        except BaseException:
            self._stopping.discard(request.id)
            now = await self._approvals.get(request.id)
            if now.state is ApprovalState.CLOSED:  # its run ended all the same
                await self._asks.settle_spend_ask(ask.approval_id, "closed", None, None)
            raise
        self._stopping.discard(request.id)
        with suppress(AlreadyAnswered):  # closed with its run's end
            await self._approvals.answer(
                request.id, by=by, decision=Decision.DENY, how=STOPPED, reason="stopped"
            )
        await self._asks.settle_spend_ask(ask.approval_id, "stopped", None, by)

    async def _deliver(self, request: ApprovalRequest) -> None:
        """Carry out an answer to a spend ask, as Fleetwarden's record of it says."""
        if request.channel != CHANNEL or request.how in (RAISED, STOPPED):
            return  # `raise` and `stop` carried their answers out themselves
        ask = await self._asks.spend_ask(request.id)
        if ask is None:
            log.warning("approval %s is on the spend channel but no ask of ours", request.id)
            return
        by = request.answered_by or "nobody"
        if is_budget_ask(ask.agent):
            if self._budgets is not None:
                await self._budgets.deliver(request, ask, by)
        elif request.state is ApprovalState.ALLOWED:
            try:
                await self._raise(ask.agent, _unit(ask.unit), ask.offer, by, ask)
            except SpendError as exc:  # its run ended: settled closed
                log.warning("%s: the raise %s allowed was not made: %s", ask.agent, by, exc)
        elif request.state is ApprovalState.DENIED:
            await self._stop(ask, f"{by}, at its run's cap")
        elif request.state is ApprovalState.TIMED_OUT and ask.fallback == "stop":
            await self._stop(ask, "nobody answered at its run's cap")
        elif request.state is ApprovalState.TIMED_OUT:
            await self._asks.settle_spend_ask(ask.approval_id, "frozen", None, None)
            await self._still_frozen(ask.agent)
        else:
            await self._asks.settle_spend_ask(ask.approval_id, "closed", None, None)

    async def _raise(
        self, agent: str, unit: Unit, amount: float, by: str, ask: SpendAsk | None
    ) -> str:
        capped = self._caps.cap_of(agent)
        if capped is None:
            if ask is not None:
                await self._asks.settle_spend_ask(ask.approval_id, "closed", None, by)
            raise SpendError(f"{agent}'s run ended: there is no cap left to raise")
        cap = capped[0]
        new = raised(cap, unit, amount)
        self._caps.raise_cap(agent, new)
        record = await self._agents.get_agent(agent)
        if record is not None and record.spec.run_budget is not None:
            kept = replace(new, since=record.spec.run_budget.since)
            await self._agents.upsert_agent(replace(record.spec, run_budget=kept), record.desired)
        if ask is not None:
            await self._asks.settle_spend_ask(ask.approval_id, "raised", amount, by)
        thawed = await self._thaw(agent)
        log.info("%s: cap raised to %s by %s", agent, cap_text(new), by)
        goes_on = "it goes on" if thawed else "its requests pass again"
        return (
            f"Raised **{agent}**'s cap by {amount_text(unit, amount)} "
            f"(`{raise_word(unit, amount)}`) to {cap_text(new)}: {goes_on}."
        )

    async def _still_frozen(self, agent: str) -> None:
        """Nobody answered and the run stays frozen: ``ps`` says so from now on."""
        fleet, key = self._fleet, f"run:{agent}"
        if fleet is None:
            return
        for freeze in await fleet.frozen():
            if freeze.agent == agent and freeze.budget == key:
                await fleet.freeze(agent, reason=UNANSWERED, budget=key)

    async def _thaw(self, agent: str) -> bool:
        fleet = self._fleet
        if fleet is None:
            return False
        for freeze in await fleet.frozen():
            if freeze.agent == agent and freeze.budget == f"run:{agent}":
                return await fleet.thaw(agent)
        return False

    async def _stop(self, ask: SpendAsk, by: str) -> None:
        await self._asks.settle_spend_ask(ask.approval_id, "stopped", None, by)
        fleet = self._fleet
        if fleet is None:
            return
        try:
            await fleet.stop_agent(ask.agent, by=by, outcome=Outcome.CUT_OFF)
        except AgentNotRunning:
            pass
        except FleetError as exc:
            log.warning("%s: could not stop it at its run's cap: %s", ask.agent, exc)


def _unit(text: str) -> Unit:
    return "usd" if text == "usd" else "tokens"

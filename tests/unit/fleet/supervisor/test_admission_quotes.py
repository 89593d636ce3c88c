"""The admission's quote: made for every launch on the runtime and model it will really
run (after the fallback moved it), kept on its run; a launch over its limit refused with
the quote and how to go ahead; and its hold taken against the budgets at once with the
check — launches made together cannot all take the same remainder: those that do not fit
wait in the queue, and a launch that did not start lets its hold go."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from fleet.budgets.model import Groups
from fleet.budgets.quoting.holds import Holds
from fleet.budgets.quoting.quote import quote_of
from fleet.budgets.quoting.service import Quoting
from fleet.caps import Caps
from fleet.errors import UnknownAgent
from fleet.events import EventKind, FleetEvent
from fleet.ledger import Ledger, QueuedSpawn, SpawnAsk
from fleet.ledger.records.budgets import Scope
from fleet.ledger.stores.running.runs import RunStart
from fleet.model import (
    AgentSpec,
    AgentState,
    DesiredState,
    ExitInfo,
    Fallback,
    RunBudget,
    RunHandle,
)
from fleet.names import AgentName
from fleet.supervisor.admission.admit import Admission, Wait
from fleet.supervisor.admission.held import request_of
from fleet.supervisor.admission.queue import Launch, LaunchQueue
from fleet.supervisor.admission.request import (
    Admitted,
    LaunchRequest,
    Queued,
    Refused,
    Started,
)
from fleet.supervisor.admission.slots import Slots
from fleet.supervisor.status import AgentStatus, SpawnOutcome
from fleet.timing.clock import ManualClock
from tests.fakes.doubles.launches import an_admission, given_of
from tests.unit.chat_fakes import T0
from tests.unit.fleet.budgets.test_holds import Book, status
from tests.unit.fleet.metering.test_run_watch import used

CODER = AgentSpec(AgentName("coder-1"), "claude", model="m-1")


class Launches:
    """The supervisor as the admission launches through it: each launch recorded as a
    run in the ledger, as the real one does; ``known``: the agents it has settings for."""

    def __init__(self, ledger: Ledger, tmp_path: Path, fallback: Fallback | None = None) -> None:
        self.ledger, self.tmp_path, self.fallback = ledger, tmp_path, fallback
        self.known = {CODER.name: CODER}
        self.spawned: list[dict[str, Any]] = []
        self.running: set[str] = set()
        self.gate: asyncio.Event | None = None  # launches wait on it when set
        self.under_way = asyncio.Event()  # set once ``expect`` launches are under way
        self.expect = 3

    async def fallback_of(self, name: str) -> Fallback | None:
        return self.fallback

    def busy(self) -> set[str]:
        return set()

    def roster(self) -> list[AgentSpec]:
        return list(self.known.values())

    async def spec(self, name: str) -> AgentSpec:
        found = self.known.get(name)
        if found is None:
            raise UnknownAgent(f"no agent {name}")
        return found

    async def spawn(self, request: LaunchRequest) -> SpawnOutcome:
        given = given_of(request)
        name = request.agent
        self.spawned.append(given)
        if len(self.spawned) >= self.expect:
            self.under_way.set()
        if self.gate is not None:
            await self.gate.wait()
        started = name not in self.running
        if started:
            self.running.add(name)
            spec = self.known.get(name) or AgentSpec(AgentName(name), "claude")
            await self.ledger.agents.upsert_agent(spec, DesiredState.RUNNING)
            handle = RunHandle("subprocess", 1, 1, self.tmp_path / name, self.tmp_path / "log")
            run = await self.ledger.runs.start_run(name, handle)
            runtime, model = given.get("runtime") or spec.runtime, given.get("model") or spec.model
            start = RunStart("spawned by test", (), None, None, 0, runtime, model)
            await self.ledger.runs.record_run_start(run, start)
        state = AgentStatus(
            AgentName(name), "claude", "subprocess", None, AgentState.RUNNING, "", 7, T0, None,
            None, None,
        )  # fmt: skip
        return SpawnOutcome(state, started=started, pid=7)


def admission(
    ledger: Ledger, fleet: Launches, clock: ManualClock, holds: Holds | None = None
) -> Admission:
    quoting = Quoting(ledger.runs, ledger.quotes, clock, default_runtime="claude")
    return an_admission(fleet, slots=None, budgets=None, quoting=quoting, holds=holds)


async def past_runs(ledger: Ledger, clock: ManualClock, tmp_path: Path, costs: list[float]) -> None:
    """Finished runs of coder-1 on claude (m-1), one per cost in dollars."""
    await ledger.agents.upsert_agent(CODER, DesiredState.RUNNING)
    for n, cost in enumerate(costs):
        handle = RunHandle("subprocess", 1, 1, tmp_path / "old", tmp_path / "log")
        run = await ledger.runs.start_run(CODER.name, handle, at=clock.now())
        start = RunStart("spawned by test", (), None, None, 0, "claude", "m-1")
        await ledger.runs.record_run_start(run, start)
        clock.advance(10)
        await ledger.metering.record_metering(
            [replace(used(0, 1000 * (n + 1), cost), at=clock.now())], []
        )
        clock.advance(10)
        await ledger.runs.end_run(run.id, ExitInfo(0, "exited"), at=clock.now())


def waiter(ledger: Ledger) -> Wait:
    async def wait(request: LaunchRequest, why: str, until: datetime | None) -> QueuedSpawn:
        ask = SpawnAsk(request.agent, f"spawn {request.agent}", "ann", "chat", "room", why)
        return await ledger.spawn_queue.enqueue_spawn(ask, host="host-a")

    return wait


async def test_every_launch_is_quoted_on_what_it_will_run_and_the_quote_kept_on_its_run(
    ledger: Ledger, clock: ManualClock, tmp_path: Path
) -> None:
    await past_runs(ledger, clock, tmp_path, [1.0, 2.0, 3.0])
    fleet = Launches(ledger, tmp_path)
    started = await admission(ledger, fleet, clock).admit(LaunchRequest("coder-1"))
    assert isinstance(started, Started) and started.quote is not None
    quote = started.quote
    assert (quote.runtime, quote.model, quote.runs) == ("claude", "m-1", 3)
    assert quote.usd == (2.0, 2.8) and quote.hold_usd == 2.8
    run = await ledger.runs.last_run("coder-1")
    assert run is not None and await ledger.quotes.quote_of(run.id) == quote
    # Another runtime named: the agent's model is not that CLI's; no history there.
    fleet.running.clear()
    other = await admission(ledger, fleet, clock).admit(LaunchRequest("coder-1", runtime="codex"))
    assert isinstance(other, Started) and other.quote is not None
    assert (other.quote.runtime, other.quote.model, other.quote.runs) == ("codex", None, 0)


async def test_a_launch_over_its_limit_is_refused_with_its_quote_and_how_to_go_ahead(
    ledger: Ledger, clock: ManualClock, tmp_path: Path
) -> None:
    await past_runs(ledger, clock, tmp_path, [1.0, 2.0, 3.1])
    fleet = Launches(ledger, tmp_path)
    gate = admission(ledger, fleet, clock)
    refused = await gate.admit(LaunchRequest("coder-1", quote_under=2.0))
    assert isinstance(refused, Refused) and refused.quote is not None
    assert refused.why == (
        "coder-1's quote: p90 $2.88 (median $2.00, from 3 past runs on claude (m-1)) is over "
        "--quote-under $2.00: `spawn coder-1 --quote-under 3.00` to start it at this quote"
    )
    assert fleet.spawned == []
    # The agent's own setting holds when the request gives none; a forge's words name it.
    fleet.known[CODER.name] = replace(CODER, quote_under=1.5)
    forge = await gate.admit(LaunchRequest("coder-1", origin="forge"))
    assert isinstance(forge, Refused) and "is over its quote_under $1.50: raise its" in forge.why
    # Typed in chat with the roster's own limit: named as its, the flag the way past it.
    typed = await gate.admit(LaunchRequest("coder-1"))
    assert isinstance(typed, Refused)
    assert "is over its quote_under $1.50: `spawn coder-1 --quote-under 3.00`" in typed.why
    # A cap at most the limit is the quote: it starts.
    capped = LaunchRequest("coder-1", quote_under=2.0, run_budget=RunBudget(None, 2.0))
    started = await gate.admit(capped)
    assert isinstance(started, Started) and started.quote is not None
    assert started.quote.hold_usd == 2.0
    assert isinstance(await gate.admit(LaunchRequest("coder-1", quote_under=3.0)), Started)


async def test_ten_launches_at_once_under_a_budget_that_fits_three_start_three(
    ledger: Ledger, clock: ManualClock, tmp_path: Path
) -> None:
    """Each holds its cap of $1.00 under a global $3.50 (0.40 spent): three start; the
    other seven wait in the queue, saying why; none is refused."""
    fleet = Launches(ledger, tmp_path)
    holds = Holds(Book(status(Scope("global"), 3.5, 0.4)))
    gate = admission(ledger, fleet, clock, holds)
    fleet.gate = asyncio.Event()  # every launch under way at once until let go
    requests = [LaunchRequest(f"a{n}", run_budget=RunBudget(None, 1.0)) for n in range(10)]
    admitting = [asyncio.create_task(gate.admit(r, waiter(ledger))) for r in requests]
    await fleet.under_way.wait()  # three launches under way, their holds taken
    fleet.gate.set()
    admitted = await asyncio.gather(*admitting)
    started = [a for a in admitted if isinstance(a, Started)]
    queued = [a for a in admitted if isinstance(a, Queued)]
    assert (len(started), len(queued)) == (3, 7) and all(q.held for q in queued)
    assert queued[0].why == (
        "global: $0.40 spent + $3.00 held by 3 runs + $1.00 quoted > $3.50: waits for a run to end"
    )
    assert len(await ledger.spawn_queue.queued_spawns("host-a")) == 7
    assert holds.held("global", "usd").runs == 3
    # Without a queue to wait in, such a launch is refused with the same words.
    refused = await gate.admit(LaunchRequest("a9", run_budget=RunBudget(None, 1.0)))
    assert isinstance(refused, Refused) and refused.why == queued[0].why
    # A run that ends lets its hold go: one more fits.
    first = await ledger.runs.last_run(fleet.spawned[0]["name"])
    assert first is not None
    await ledger.runs.end_run(first.id, ExitInfo(0, "exited"))
    holds.release(first.agent, first.id)
    again = await gate.admit(LaunchRequest("a9", run_budget=RunBudget(None, 1.0)))
    assert isinstance(again, Started)


async def test_a_launch_that_did_not_start_lets_its_hold_go_and_autostart_is_not_held(
    ledger: Ledger, clock: ManualClock, tmp_path: Path
) -> None:
    fleet = Launches(ledger, tmp_path)
    holds = Holds(Book(status(Scope("global"), 1.5, 0.0)))
    gate = admission(ledger, fleet, clock, holds)
    capped = RunBudget(None, 1.0)
    assert isinstance(await gate.admit(LaunchRequest("a", run_budget=capped)), Started)
    again = await gate.admit(LaunchRequest("a", run_budget=capped))  # it runs: only reported
    assert isinstance(again, Started) and not again.outcome.started and again.quote is None
    assert holds.of("a") == {"usd": 1.0}
    # The budget full, a launch of the running agent still only reports it: not queued.
    bigger = await gate.admit(LaunchRequest("a", run_budget=RunBudget(None, 9.0)))
    assert isinstance(bigger, Started) and not bigger.outcome.started
    assert holds.of("a") == {"usd": 1.0}
    roster = await gate.admit(LaunchRequest("b", origin="autostart", run_budget=capped))
    assert isinstance(roster, Started) and holds.held("global", "usd").amount == 2.0

    async def failing(request: LaunchRequest) -> SpawnOutcome:
        raise UnknownAgent("the launch failed")

    fleet.spawn = failing  # type: ignore[method-assign]
    holds.release("a")
    holds.release("b")
    with pytest.raises(UnknownAgent, match="the launch failed"):
        await gate.admit(LaunchRequest("c", run_budget=capped))
    assert holds.of("c") == {}


class Starts:
    """Where queued chat launches are answered: always reachable; each start tried.
    ``first``: what happens just before a start (another launch taking the room)."""

    def __init__(self) -> None:
        self.tried: list[str] = []
        self.outcomes: list[Admitted] = []
        self.first: Callable[[], object] = lambda: None

    def ready(self, entry: QueuedSpawn) -> bool:
        return True

    async def start(self, entry: QueuedSpawn, launch: Launch) -> None:
        request = request_of(entry)
        assert request is not None
        self.tried.append(entry.agent)
        self.first()
        self.outcomes.append(await launch(request))


async def test_a_queued_launch_the_holds_leave_no_room_waits_in_its_place_for_a_run_end(
    ledger: Ledger, clock: ManualClock, tmp_path: Path
) -> None:
    """Two runs fill global's $2.00: two more wait, passed over (not tried, nothing said)
    until a run ends; then the oldest starts. One turned away all the same (the room taken
    just before its start) goes back in its place."""
    fleet = Launches(ledger, tmp_path)
    holds = Holds(Book(status(Scope("global"), 2.0, 0.0)))
    slots = Slots(
        agents=ledger.agents, spawn_queue=ledger.spawn_queue, fleet=fleet, caps=Caps(),
        groups=Groups(), accounts=None, default_runtime="claude", host="host-a",
    )  # fmt: skip
    quoting = Quoting(ledger.runs, ledger.quotes, clock, default_runtime="claude")
    gate = an_admission(fleet, slots=slots, budgets=None, quoting=quoting, holds=holds)
    queue = LaunchQueue(store=ledger.spawn_queue, admission=gate, clock=clock)
    starts = Starts()
    queue.listen("chat", starts)
    queue.open()
    capped = RunBudget(None, 1.0)
    for name in ("a", "b"):
        assert isinstance(await gate.admit(LaunchRequest(name, run_budget=capped)), Started)
    for name in ("c", "d", "e"):
        ask = SpawnAsk(name, f"spawn {name}", "ann", "chat", "room", "")
        waits = await gate.admit(LaunchRequest(name, run_budget=capped), queue.waiter(ask))
        assert isinstance(waits, Queued) and waits.held
    order = [e.id for e in await queue.entries()]
    assert await queue.sweep() == 0 and starts.tried == []  # no room: passed over

    async def end(agent: str) -> None:
        run = await ledger.runs.last_run(agent)
        assert run is not None
        ended = FleetEvent(AgentName(agent), EventKind.ENDED, AgentState.EXITED, "", False, run.id)
        await holds.on_fleet_event(ended)
        await queue.on_fleet_event(ended)
        await queue.sweep()

    # b's end makes room, but another launch takes it just before c starts: c is turned
    # away and keeps its place, ahead of d and e.
    starts.first = lambda: holds.admit("x", quote_of("x", "claude", None, [], capped, T0))
    await end("b")
    assert starts.tried == ["c"] and isinstance(starts.outcomes[0], Queued)
    assert [e.id for e in await queue.entries()] == order
    starts.first = lambda: None
    await end("a")  # room again beside x: the oldest waiting starts, the next is passed over
    assert starts.tried == ["c", "c"] and isinstance(starts.outcomes[1], Started)
    assert [e.agent for e in await queue.entries()] == ["d", "e"]
    await queue.stop()


async def test_a_launch_of_an_unpriced_model_over_its_limit_is_told_a_way_that_works(
    ledger: Ledger, clock: ManualClock, tmp_path: Path
) -> None:
    """With no quote in dollars, the way ahead is a cap in dollars only where the model has
    a price; for an unpriced one (which --max-usd refuses) it is pricing the model, or
    spawning without the limit where the agent has none of its own."""
    fleet = Launches(ledger, tmp_path)
    quoting = Quoting(
        ledger.runs, ledger.quotes, clock, default_runtime="claude", priced=lambda m: False
    )
    gate = an_admission(fleet, slots=None, budgets=None, quoting=quoting)
    refused = await gate.admit(LaunchRequest("fresh", quote_under=1.0))
    assert isinstance(refused, Refused)
    assert "--max-usd" not in refused.why
    assert refused.why.endswith(
        "add it to `prices` in the config, or set `price_default` — or leave --quote-under "
        "out: `spawn fresh`"
    )
    # With a quote_under of its own, leaving the flag out would not do: not suggested.
    fleet.known["fresh"] = AgentSpec(AgentName("fresh"), "claude", quote_under=2.0)
    own = await gate.admit(LaunchRequest("fresh", quote_under=1.0))
    assert isinstance(own, Refused) and "leave --quote-under out" not in own.why
    assert own.why.endswith("add it to `prices` in the config, or set `price_default`")
    del fleet.known["fresh"]
    priced = admission(ledger, fleet, clock)
    said = await priced.admit(LaunchRequest("fresh", quote_under=1.0))
    assert isinstance(said, Refused)
    assert "`spawn fresh --max-usd 1.00 --quote-under 1.00`" in said.why

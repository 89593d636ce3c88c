"""The launch's contract: a table of every origin × every outcome it can have, driven
through the one admission over the real ledger — the request goes whole to the supervisor's
launch, waits in the one spawn queue keeping its origin, or is refused saying why."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest

from fleet.budgets.model import Groups
from fleet.caps import Caps
from fleet.ledger import Ledger, SpawnAsk
from fleet.model import AgentSpec, AgentState, DesiredState
from fleet.names import AgentName
from fleet.repos.hook.policy import Issue
from fleet.supervisor.admission.admit import Admission
from fleet.supervisor.admission.held import request_of
from fleet.supervisor.admission.queue import LaunchQueue
from fleet.supervisor.admission.request import (
    ASKED_BY_A_PERSON,
    ORIGINS,
    Admitted,
    LaunchRequest,
    Origin,
    Queued,
    Refused,
    Started,
)
from fleet.supervisor.admission.slots import Slots
from fleet.timing.clock import ManualClock
from fleet.watchdog.verdicts import Restart
from tests.fakes.doubles.launches import an_admission
from tests.unit.fleet.supervisor.test_admission import Budgets, Launches

T = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)

OUTCOMES: tuple[tuple[Origin, str], ...] = tuple(
    (origin, outcome)
    for origin in ORIGINS
    if origin not in ("restart", "watchdog")
    for outcome in ("started", "queued", "refused")
)
"""Every origin can start, wait behind a full cap, and be refused (its task closed) — but
a restart, which the caps hold without queueing it, and the watchdog's, which they do not
hold (their own rows below)."""


class Tasks:
    """The register's binding: task 1 is open, task 2 was cancelled meanwhile."""

    def __init__(self) -> None:
        self.heard: list[tuple[int, str, type]] = []
        self.bound: list[tuple[str, int | None]] = []  # launches that named their run's task

    async def closed(self, task: int) -> str | None:
        return "task #2 was cancelled" if task == 2 else None

    @contextlib.asynccontextmanager
    async def launching(self, agent: str, task: int | None) -> AsyncIterator[None]:
        self.bound.append((agent, task))
        yield

    async def told(self, task: int, agent: str, admitted: Admitted) -> None:
        self.heard.append((task, agent, type(admitted)))

    async def settle_queued(self) -> int:
        return 0


class HandedOn:
    """The tasks handed on: ``coder``'s last run was for a task whose sender lost the right
    to reach it (``lost``), or for none."""

    def __init__(self, lost: bool) -> None:
        self.lost = lost
        self.asked: list[str] = []

    async def restart_refused(self, agent: str) -> str | None:
        self.asked.append(agent)
        if not self.lost:
            return None
        return f"task #1 fix was handed on by boss, and {agent} is no longer one of boss's peers"


def gate(
    ledger: Ledger,
    fleet: Launches,
    budgets: Budgets,
    tasks: Tasks,
    handed: HandedOn | None = None,
) -> Admission:
    slots = Slots(
        agents=ledger.agents,
        spawn_queue=ledger.spawn_queue,
        fleet=fleet,
        caps=Caps(max_running=1),
        groups=Groups(),
        accounts=None,
        default_runtime="stub",
        host="host-a",
    )
    return an_admission(fleet, slots=slots, budgets=budgets, tasks=tasks, handed=handed)


async def occupy(ledger: Ledger, name: str) -> None:
    """``name`` runs: the one slot of ``max_running: 1`` is taken."""
    await ledger.agents.upsert_agent(AgentSpec(AgentName(name), "stub"), DesiredState.RUNNING)
    await ledger.agents.set_state(name, AgentState.RUNNING, "test")


@pytest.mark.parametrize(("origin", "outcome"), OUTCOMES)
async def test_every_origin_through_the_one_admission(
    ledger: Ledger, origin: Origin, outcome: str
) -> None:
    """Each origin × outcome: started, the request reaches the launch whole (its origin
    and prompt with it); queued behind a full cap, it waits in the one spawn queue, its
    request held there with its origin; refused, nothing launches and the task hears."""
    fleet, tasks = Launches(), Tasks()
    admission = gate(ledger, fleet, Budgets(True), tasks)
    queue = LaunchQueue(store=ledger.spawn_queue, admission=admission, clock=ManualClock(T))
    ask = SpawnAsk("coder", "", "ann", "chat", "room", "", origin="chat")
    task = 2 if outcome == "refused" else 1
    request = LaunchRequest("coder", origin=origin, by=f"{origin} test", prompt="go", task=task)
    if outcome == "queued":
        await occupy(ledger, "other")
    admitted = await admission.admit(request, queue.waiter(ask))
    if outcome == "started":
        assert isinstance(admitted, Started) and admitted.outcome.started
        [spawned] = fleet.spawned
        assert (spawned["name"], spawned["prompt"], spawned["by"]) == (
            "coder", "go", f"{origin} test",
        )  # fmt: skip
    elif outcome == "queued":
        assert isinstance(admitted, Queued) and admitted.entry is not None
        assert admitted.why == "global max_running 1 reached (1 running)"
        [entry] = await ledger.spawn_queue.queued_spawns(host="host-a")
        held = request_of(entry)
        assert held is not None and (held.origin, held.prompt, held.task) == (origin, "go", 1)
        assert fleet.spawned == []
    else:
        assert admitted == Refused("task #2 was cancelled")
        assert fleet.spawned == [] and await ledger.spawn_queue.queued_spawns(host="host-a") == []
    assert [told[0] for told in tasks.heard] == ([] if outcome == "refused" else [1])


@pytest.mark.parametrize("outcome", ["started", "held"])
async def test_a_restart_through_the_one_admission(ledger: Ledger, outcome: str) -> None:
    """Origin ``restart``: started, the request reaches the launch whole; behind a full cap
    it is held saying why, and written to no queue (as the chat ``restart`` always was)."""
    fleet, tasks = Launches(), Tasks()
    admission = gate(ledger, fleet, Budgets(False), tasks)
    queue = LaunchQueue(store=ledger.spawn_queue, admission=admission, clock=ManualClock(T))
    ask = SpawnAsk("coder", "", "ann", "chat", "room", "", origin="chat")
    if outcome == "held":
        await occupy(ledger, "other")
    admitted = await admission.admit(
        LaunchRequest("coder", origin="restart", by="ann"), queue.waiter(ask)
    )
    if outcome == "started":
        assert isinstance(admitted, Started) and admitted.outcome.started
        [spawned] = fleet.spawned
        assert (spawned["name"], spawned["by"]) == ("coder", "ann")
    else:
        assert isinstance(admitted, Queued) and admitted.entry is None
        assert admitted.why == "global max_running 1 reached (1 running)"
        assert fleet.spawned == []
    assert await ledger.spawn_queue.queued_spawns(host="host-a") == []


@pytest.mark.parametrize("outcome", ["started", "over a full cap", "refused"])
async def test_a_watchdog_restart_through_the_one_admission(ledger: Ledger, outcome: str) -> None:
    """Origin ``watchdog``: started, the request reaches the launch whole (its restart with
    it) and names no task, so the run goes on with the agent's; a full cap does not hold it,
    nor does a budget that says no (as ever: neither was asked of the watchdog's restart);
    a task another agent handed on whose sender lost the right is refused by the hand-off
    stage, saying why, before anything launches — and written to no queue either way."""
    fleet, tasks = Launches(), Tasks()
    handed, budgets = HandedOn(lost=outcome == "refused"), Budgets(False)
    admission = gate(ledger, fleet, budgets, tasks, handed)
    queue = LaunchQueue(store=ledger.spawn_queue, admission=admission, clock=ManualClock(T))
    ask = SpawnAsk("coder", "", "ann", "chat", "room", "", origin="chat")
    if outcome == "over a full cap":
        await occupy(ledger, "other")
    restart = Restart(AgentName("coder"), 2, "stalled; restart 2 of 3")
    request = LaunchRequest("coder", origin="watchdog", by="the watchdog", restart=restart)
    admitted = await admission.admit(request, queue.waiter(ask))
    assert handed.asked == ["coder"] and budgets.asked == []
    if outcome == "refused":
        why = "task #1 fix was handed on by boss, and coder is no longer one of boss's peers"
        assert admitted == Refused(why)
        assert fleet.spawned == []
    else:
        assert isinstance(admitted, Started) and admitted.outcome.started
        assert fleet.requests == [request] and tasks.bound == []
    assert await ledger.spawn_queue.queued_spawns(host="host-a") == []


@pytest.mark.parametrize("origin", ORIGINS)
async def test_a_budget_turns_away_every_origin_but_the_rosters_own(
    ledger: Ledger, origin: Origin
) -> None:
    """A budget that says no refuses a launch from any origin (not queued where its budget
    has no queue) — except the roster's own launches, which their cutoffs hold instead, and
    a restart (an operator's or the watchdog's), which goes on with its agent's task."""
    fleet, tasks = Launches(), Tasks()
    budgets = Budgets(False)
    admitted = await gate(ledger, fleet, budgets, tasks).admit(
        LaunchRequest("coder", origin=origin)
    )
    if origin in ("autostart", "restart", "watchdog"):  # cutoffs hold the roster's
        assert isinstance(admitted, Started) and budgets.asked == []
    else:
        assert admitted == Refused("agent:coder is over (this launch is not queued)")
        assert budgets.asked == [("coder", False)] and fleet.spawned == []


def test_the_origins_asked_by_a_person_are_those_that_once_were_chat() -> None:
    """A schedule, a hand-off, a peer's wake and a review were launched as ``chat`` before
    they had names: their quote's words still name the chat flag or the roster."""
    assert frozenset(ORIGINS) - {"autostart", "forge", "restart", "watchdog"} == ASKED_BY_A_PERSON


class OnAnIssue:
    """Whose ``coder`` is: it works on forge issue #12, its session ended."""

    async def live(self, agent: str) -> bool:
        return False

    async def on_an_issue(self, agent: str, live: bool) -> str | None:
        return f"{agent} works on #12 (waiting)"

    async def branch_of(self, agent: str) -> str | None:
        return None

    async def not_free(self, request: LaunchRequest) -> str | None:
        issue = request.issue
        if issue is not None and issue.number != 12:
            return f"{request.agent} works on acme/app#12 until its PR closes"
        return None  # free for the run of its own issue


@pytest.mark.parametrize("origin", ORIGINS)
async def test_an_agent_on_an_issue_is_refused_to_chat_and_schedule_only(
    ledger: Ledger, origin: Origin
) -> None:
    """The ownership stage: a chat or schedule launch of an agent working on a forge issue
    is refused saying whose it is, before the budgets are asked; every other origin goes on
    (the forge's own runs, a peer's wake, a review, a hand-off, the roster's start)."""
    fleet, tasks, budgets = Launches(), Tasks(), Budgets(True)
    slots = gate(ledger, fleet, budgets, tasks).slots
    admission = an_admission(fleet, slots=slots, budgets=budgets, tasks=tasks, owners=OnAnIssue())
    admitted = await admission.admit(LaunchRequest("coder", origin=origin))
    if origin in ("chat", "schedule"):
        assert admitted == Refused("coder works on #12 (waiting)")
        assert fleet.spawned == [] and budgets.asked == []
    else:
        assert isinstance(admitted, Started) and len(fleet.spawned) == 1


async def test_a_forge_run_of_an_agent_on_another_issue_waits_in_the_spawn_queue(
    ledger: Ledger,
) -> None:
    """Forge origin × Queued by the ownership stage: a forge run of an agent working on
    another issue waits in the one spawn queue (origin forge, its run's key), saying why,
    before the budgets are asked; the queue's start of that very entry is not held by its
    own mark as starting; without a wait (a next run on its line) it is refused in words
    fit for the issue."""
    fleet, tasks, budgets = Launches(), Tasks(), Budgets(True)
    slots = gate(ledger, fleet, budgets, tasks).slots
    assert slots is not None
    admission = an_admission(fleet, slots=slots, budgets=budgets, tasks=tasks, owners=OnAnIssue())
    queue = LaunchQueue(store=ledger.spawn_queue, admission=admission, clock=ManualClock(T))
    ask = SpawnAsk("coder", "", "@ann on gh", "", "", "", origin="forge", ref="5")
    why = "coder works on acme/app#12 until its PR closes"
    request = LaunchRequest("coder", origin="forge", issue=Issue("acme/app", 13))
    admitted = await admission.admit(request, queue.waiter(ask))
    assert isinstance(admitted, Queued) and admitted.why == why
    [entry] = await ledger.spawn_queue.queued_spawns(host="host-a")
    assert (entry.origin, entry.ref, entry.reason) == ("forge", "5", why)
    assert fleet.spawned == [] and budgets.asked == []
    assert await admission.admit(request) == Refused(why, public=True)
    # Its issue's run free now: the queue starting it is its own turn, another launch waits.
    own = LaunchRequest("coder", origin="forge", issue=Issue("acme/app", 12))
    slots.starting["coder"] = entry.id
    assert await admission.no_room(own, entry.id) is None
    other = await admission.admit(own)
    assert other == Refused("coder is starting another run", public=True)
    admitted = await admission.admit(own, queue.waiter(ask), entry.id)
    assert isinstance(admitted, Started) and len(fleet.spawned) == 1


async def test_a_forge_run_behind_an_earlier_one_says_so_not_its_words(ledger: Ledger) -> None:
    """A forge run of an agent whose earlier forge run waits in the spawn queue waits behind
    it (the oldest starts first), in words of its own: the earlier entry's reason — a
    budget's or a hold's, the operator's — is never this issue's."""
    fleet, tasks, budgets = Launches(), Tasks(), Budgets(True)
    slots = gate(ledger, fleet, budgets, tasks).slots
    assert slots is not None
    admission = an_admission(fleet, slots=slots, budgets=budgets, tasks=tasks, owners=OnAnIssue())
    queue = LaunchQueue(store=ledger.spawn_queue, admission=admission, clock=ManualClock(T))
    earlier = SpawnAsk("coder", "", "@ann on gh", "", "", "", origin="forge", ref="4")
    private = "budget acme-prod: $12.00 of $10.00 spent; `budget raise acme-prod` lifts it"
    await queue.waiter(earlier)(LaunchRequest("coder", origin="forge"), private, None)
    ask = SpawnAsk("coder", "", "@bob on gh", "", "", "", origin="forge", ref="5")
    request = LaunchRequest("coder", origin="forge", issue=Issue("acme/app", 12))
    admitted = await admission.admit(request, queue.waiter(ask))
    assert isinstance(admitted, Queued)
    assert admitted.why == "coder starts an earlier issue's run first"
    assert "acme-prod" not in admitted.why and fleet.spawned == []


async def test_a_restart_leaves_its_run_to_go_on_with_the_agents_task(ledger: Ledger) -> None:
    """An operator's restart names no task: its run is not bound to "no task" by the
    admission, so the register carries the agent's task on to it, as before the restart
    passed the admission; any other launch names its task (``None``: none)."""
    fleet, tasks, budgets = Launches(), Tasks(), Budgets(True)
    admission = an_admission(fleet, slots=None, budgets=budgets, tasks=tasks)
    assert isinstance(await admission.admit(LaunchRequest("coder", origin="restart")), Started)
    assert tasks.bound == [] and len(fleet.spawned) == 1
    assert isinstance(await admission.admit(LaunchRequest("coder", origin="chat")), Started)
    assert tasks.bound == [("coder", None)]

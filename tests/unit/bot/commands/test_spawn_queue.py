"""Tests for bot.commands.handlers.launches.spawn_queue and bot.commands.handlers.launches.queue:
the gate a spawn passes, the drain that starts queued launches once each, `queue`'s table and
`cancel`'s errors."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from bot.acl import Role
from bot.commands.errors import CommandError, NotFound
from bot.commands.handlers.launches.queue import EMPTY, render_queue
from bot.commands.handlers.launches.spawn_queue import SpawnQueue
from bot.commands.parsing.grammar import Grammar
from bot.commands.routing.request import Reply, Request
from bot.commands.routing.router import Ran
from bot.commands.routing.sources import Delegated
from bot.commands.specs import COMMANDS
from fleet.budgets.model import Groups
from fleet.caps import Caps
from fleet.events import FleetEvent
from fleet.ledger import Ledger, SpawnAsk
from fleet.model import AgentSpec, AgentState, DesiredState
from fleet.names import AgentName
from fleet.runs.launch.launch_kit import LaunchKit
from fleet.runtimes import default_registry
from fleet.supervisor.admission.request import LaunchRequest
from fleet.supervisor.autostart import autostart
from fleet.supervisor.fleet import FleetSettings
from fleet.timing.clock import ManualClock
from tests.fakes.doubles.launches import real_fleet
from tests.fakes.doubles.spawn_queues import a_spawn_queue
from tests.fakes.doubles.stores import fleet_stores
from tests.unit.chat_fakes import OPERATOR, T0, FakeConnector, message

HOST = "host-a"


def spawn(text: str, event_id: str = "$ev1") -> Request:
    """``text`` typed by the operator (``event_id``: the queue's start of an entry is
    ``queue:<id>``, as the router runs it)."""
    command = Grammar(COMMANDS).parse(text)
    assert command is not None
    return Request(message(text, sender=OPERATOR, event_id=event_id), Role.OPERATOR, command)


def make_queue(ledger: Ledger, tmp_path: Path, caps: Caps) -> SpawnQueue:
    fleet = real_fleet(
        stores=fleet_stores(ledger),
        clock=ManualClock(T0),
        kit=LaunchKit(
            runtimes=default_registry(),
            backends={},
            settings=FleetSettings(state_dir=tmp_path),
            environ={},
        ),
    )
    return a_spawn_queue(
        ledger=ledger,
        fleet=fleet,
        caps=caps,
        groups=Groups(),
        accounts=None,
        clock=ManualClock(T0),
        default_runtime="stub",
        host=HOST,
    )


async def set_live(ledger: Ledger, name: str, live: bool = True) -> None:
    await ledger.agents.upsert_agent(AgentSpec(AgentName(name), "stub"), DesiredState.RUNNING)
    await ledger.agents.set_state(name, AgentState.RUNNING if live else AgentState.STOPPED, "test")


async def roster_launch(ledger: Ledger, queue: SpawnQueue, spec: AgentSpec) -> list[AgentName]:
    """The roster's own launch of ``spec`` through ``queue``'s admission; the names started."""

    async def emit(event: FleetEvent) -> None:
        raise AssertionError(f"refused: {event}")

    return await autostart(
        [spec],
        reason="autostart",
        agents=ledger.agents,
        forge=ledger.forge,
        spawn_queue=ledger.spawn_queue,
        admission=queue.admission,
        emit=emit,
    )


class Starter:
    """A router whose run_as hands the queued start its request, and a ``spawn`` that
    "starts" the agent the entry holds (marks it live)."""

    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger
        self.runs: list[Delegated] = []
        self.held: list[LaunchRequest | None] = []

    async def run_as(self, connector: Any, run: Delegated, act: Any = None) -> Ran | None:
        self.runs.append(run)
        assert act is not None
        await act(spawn(run.text))
        return Ran("ok", "spawn", None)

    async def spawner(self, req: Request, held: LaunchRequest | None, launch: Any) -> Reply:
        self.held.append(held)
        await set_live(self.ledger, req.arg("NAME"))
        return Reply("started")


async def test_two_spawns_at_once_cannot_both_take_the_last_slot(
    ledger: Ledger, tmp_path: Path
) -> None:
    """An admitted launch holds its slot until released: the next spawn is queued meanwhile,
    with its reason and place; after the release (the agent now runs) it is still full."""
    queue = make_queue(ledger, tmp_path, Caps(max_running=1))
    assert await queue.admit(spawn("!spawn a"), runtime=None, account=None) is None
    queued = await queue.admit(spawn("!spawn b --model m"), runtime=None, account=None)
    assert queued is not None and queued.startswith(
        "Not started now: global max_running 1 reached (1 running). Queued as #1, position 1 of 1"
    )
    [entry] = await queue.entries()
    assert (entry.agent, dict(entry.request), entry.sender) == ("b", {"model": "m"}, OPERATOR)
    await set_live(ledger, "a")
    queue.release("a")
    again = await queue.admit(spawn("!spawn c"), runtime=None, account=None)
    assert again is not None and "position 2 of 2" in again


async def test_a_running_agent_or_no_caps_are_admitted_at_once(
    ledger: Ledger, tmp_path: Path
) -> None:
    """Spawning a running agent only reports it, so no cap applies; without caps nothing
    is ever queued."""
    await set_live(ledger, "a")
    capped = make_queue(ledger, tmp_path, Caps(max_running=1))
    assert await capped.admit(spawn("!spawn a"), runtime=None, account=None) is None
    free = make_queue(ledger, tmp_path, Caps())
    assert await free.admit(spawn("!spawn b"), runtime=None, account=None) is None


async def test_a_freed_slot_starts_the_oldest_entry_once(ledger: Ledger, tmp_path: Path) -> None:
    """Kicked twice for one freed slot, the drain starts only the oldest entry, as its
    sender, under the claimed id queue:<id>; the entry is gone, the younger one waits."""
    queue = make_queue(ledger, tmp_path, Caps(max_running=1))
    starter = Starter(ledger)
    queue.open(starter, lambda name: FakeConnector(name), starter.spawner)  # type: ignore[arg-type]
    await set_live(ledger, "r")
    for name in ("b", "c"):
        assert await queue.admit(spawn(f"!spawn {name}"), runtime=None, account=None)
    assert await queue.sweep() == 0  # no slot yet
    await set_live(ledger, "r", live=False)
    queue.kick()
    queue.kick()
    assert await queue.sweep() == 1
    [run] = starter.runs
    assert (run.text, run.sender, run.event_id, run.source) == (
        "!spawn b",
        OPERATOR,
        "queue:1",
        "queue:1",
    )
    assert run.heading.startswith("Queued launch #1 of **b** (waiting since 12:00 UTC: global")
    assert [h.agent if h else None for h in starter.held] == ["b"]  # the request it held
    assert [e.agent for e in await queue.entries()] == ["c"]
    await queue.stop()


async def test_an_entry_left_starting_by_a_crash_is_tried_again(
    ledger: Ledger, tmp_path: Path
) -> None:
    """A `starting` entry (Fleetwarden died mid-start) is started again under the same
    claimed id — which the router runs at most once — and then removed."""
    queue = make_queue(ledger, tmp_path, Caps(max_running=1))
    assert await queue.admit(spawn("!spawn a"), runtime=None, account=None) is None
    assert await queue.admit(spawn("!spawn b"), runtime=None, account=None)
    [entry] = await queue.entries()
    assert await ledger.spawn_queue.mark_spawn_starting(entry.id)
    fresh = make_queue(ledger, tmp_path, Caps(max_running=1))
    starter = Starter(ledger)
    fresh.open(starter, lambda name: FakeConnector(name), starter.spawner)  # type: ignore[arg-type]
    assert await fresh.restore() == 1
    assert await fresh.sweep() == 1
    assert [r.event_id for r in starter.runs] == ["queue:1"]
    assert await fresh.entries() == []


async def test_cancel_by_number_or_name_and_its_errors(ledger: Ledger, tmp_path: Path) -> None:
    """cancel drops by number (with or without #) or by agent; an unknown one lists what
    is queued; one being started cannot be cancelled."""
    queue = make_queue(ledger, tmp_path, Caps(max_running=1))
    await set_live(ledger, "r")
    for name in ("b", "c", "d"):
        await queue.admit(spawn(f"!spawn {name}"), runtime=None, account=None)
    with pytest.raises(NotFound, match=r"nothing queued as 'zz' \(#1 b, #2 c, #3 d\)"):
        await queue.cancel("zz")
    assert [e.agent for e in await queue.cancel("#1")] == ["b"]
    assert [e.agent for e in await queue.cancel("c")] == ["c"]
    await ledger.spawn_queue.mark_spawn_starting(3)
    with pytest.raises(CommandError, match="3 is being started now"):
        await queue.cancel("3")


async def test_the_queue_table_shows_place_who_why_and_when(ledger: Ledger, tmp_path: Path) -> None:
    """`queue` lists entries in order: place, number, agent, runtime, who asked, why, since
    when, not before."""
    assert render_queue([], T0) == EMPTY
    queue = make_queue(ledger, tmp_path, Caps(max_running=1))
    await set_live(ledger, "r")
    await queue.admit(spawn("!spawn b --runtime stub"), runtime="stub", account=None)
    text = render_queue(await queue.entries(), T0)
    row = next(line for line in text.splitlines() if "#1" in line)
    for cell in ("b", "stub", f"{OPERATOR} on matrix", "global max_running 1 reached"):
        assert cell in row
    assert "12:00 UTC" in row


async def test_a_start_its_budget_defers_again_keeps_its_place(
    ledger: Ledger, tmp_path: Path
) -> None:
    """When the queued start is deferred by its budget, the entry goes back
    to wait under its own number with the new reason and time — not a second entry."""
    queue = make_queue(ledger, tmp_path, Caps())
    later = T0 + timedelta(hours=2)

    class Deferring:
        runs = 0

        async def run_as(self, connector: Any, run: Delegated, act: Any = None) -> Ran | None:
            self.runs += 1
            await queue.defer(spawn(run.text, run.event_id), later, "agent:b is queued until 14:00")
            return Ran("ok", "spawn", None)

    router = Deferring()
    queue.open(router, lambda name: FakeConnector(name), Starter(ledger).spawner)  # type: ignore[arg-type]
    await queue.defer(spawn("!spawn b"), T0, "agent:b is queued until 12:00")
    assert await queue.sweep() == 1
    [entry] = await queue.entries()
    assert (entry.id, entry.status, entry.reason, entry.not_before) == (
        1,
        "waiting",
        "agent:b is queued until 14:00",
        later,
    )
    again = await queue.defer(spawn("!spawn b"), later, "agent:b is queued until 14:00")
    assert again == "**b** is already queued (#1): agent:b is queued until 14:00."
    assert router.runs == 1 and len(await queue.entries()) == 1


async def test_another_launch_of_an_agent_the_queue_starts_waits_in_a_place_of_its_own(
    ledger: Ledger, tmp_path: Path
) -> None:
    """While the queue starts entry #1 of ``b``, a launch of ``b`` that is not that start
    (a forge run, another spawn) turned away waits as an entry of its own: #1 is not put
    back in its place for it, so it is neither started twice nor lost."""
    queue = make_queue(ledger, tmp_path, Caps())
    later = T0 + timedelta(hours=2)
    await queue.defer(spawn("!spawn b"), T0, "agent:b is queued until 12:00")
    [first] = await queue.entries()
    queue.launches.slots.starting["b"] = first.id  # the queue is starting #1 now
    other = await queue.defer(spawn("!spawn b", "$other"), later, "agent:b is queued until 14:00")
    assert "queued as #2" in other
    entry = await queue.launches.waiter(
        SpawnAsk("b", "", "@ann on gh", "", "", "", origin="forge", ref="42")
    )(LaunchRequest("b", origin="forge"), "b is starting another run", None)
    assert (entry.id, entry.origin, entry.ref) == (3, "forge", "42")
    waiting = await queue.launches.entries()
    assert [(e.id, e.status) for e in waiting] == [(1, "waiting"), (2, "waiting"), (3, "waiting")]


async def test_a_restart_needs_a_slot_only_when_the_agent_does_not_run(
    ledger: Ledger, tmp_path: Path
) -> None:
    """Restarting a running agent keeps its own slot; restarting a stopped one needs a free
    slot, and is refused (not queued) when the cap is full."""
    queue = make_queue(ledger, tmp_path, Caps(max_running=1))
    await set_live(ledger, "r")
    await set_live(ledger, "gone", live=False)
    assert await queue.hold("r") is None
    assert await queue.hold("gone") == "global max_running 1 reached (1 running)"
    assert await queue.entries() == []


async def test_an_agent_on_a_forge_issue_is_not_launched_by_the_roster_or_the_queue(
    ledger: Ledger, tmp_path: Path
) -> None:
    """While ``coder`` works on an issue, the roster's own launch is turned away with why
    (nothing queued), and a launch queued before the issue came is not started: its forge
    run owns its branch and its session."""
    from fleet.ledger.records.forge import ForgeRunState, NewForgeRun, Slug

    queue = make_queue(ledger, tmp_path, Caps(max_running=1))
    starter = Starter(ledger)
    queue.open(starter, lambda name: FakeConnector(name), starter.spawner)  # type: ignore[arg-type]
    await set_live(ledger, "r")
    coder = AgentSpec(name=AgentName("coder"), runtime="stub", autostart=True)
    assert await roster_launch(ledger, queue, coder) == []  # no slot: queued
    [entry] = await queue.entries()
    added = await ledger.forge.add_forge_run(NewForgeRun(
        forge="gh", repo="app", slug=Slug("acme", "app"), issue=12, title="Fix it",
        agent="coder", branch="fw/coder/issue-12", requester="ann",
        issue_url="https://github.com/acme/app/issues/12",
    ))  # fmt: skip
    assert added is not None
    key = added.id
    await ledger.forge.update_forge_run(key, state=ForgeRunState.WORKING)
    assert await roster_launch(ledger, queue, coder) == []  # working on the issue
    assert [e.agent for e in await queue.entries()] == ["coder"]  # nothing more queued
    await set_live(ledger, "r", live=False)
    await queue.sweep()
    assert starter.runs == [] and await ledger.agents.get_agent("coder") is None  # never launched
    assert [e.agent for e in await queue.entries()] == []  # tried, and dropped
    assert entry.agent == "coder"
    await queue.stop()


async def test_queue_lists_the_forge_runs_waiting_to_start(ledger: Ledger, tmp_path: Path) -> None:
    """A forge run waiting for its agent (or its budget) is in `queue`: its issue, agent,
    why it waits and since when — not "nothing is queued"."""
    from bot.commands.handlers.launches.queue import QueueCommands
    from fleet.ledger.records.forge import ForgeRunState, NewForgeRun, Slug

    added = await ledger.forge.add_forge_run(NewForgeRun(
        forge="gh", repo="app", slug=Slug("acme", "app"), issue=12, title="Fix it",
        agent="coder", branch="fw/coder/issue-12", requester="ann",
        issue_url="https://github.com/acme/app/issues/12",
    ))  # fmt: skip
    assert added is not None
    key = added.id
    why = "coder works on acme/app#9 until its PR closes"
    await ledger.forge.update_forge_run(key, state=ForgeRunState.QUEUED, summary=why)

    async def forge_runs(agent: str | None) -> list[Any]:
        return await ledger.forge.forge_runs(agent=agent)

    queue = make_queue(ledger, tmp_path, Caps())
    commands = QueueCommands(queue, forge_runs)
    assert await commands.queue(spawn("!queue")) == EMPTY  # read from the spawn queue: no place
    ask = SpawnAsk("coder", "", "@ann on gh", "", "", "", origin="forge", ref=str(key))
    await queue.launches.waiter(ask)(LaunchRequest("coder", origin="forge"), why, None)
    text = await commands.queue(spawn("!queue"))
    assert text.startswith("1 forge run waits to start:")
    assert "| [acme/app#12](https://github.com/acme/app/issues/12) | coder | " + why in text
    await ledger.forge.update_forge_run(key, state=ForgeRunState.WORKING)
    assert await commands.queue(spawn("!queue")) == EMPTY


async def test_cancel_of_a_forge_runs_place_says_its_issue_owns_it(
    ledger: Ledger, tmp_path: Path
) -> None:
    """A forge run's place in the queue is not chat's to drop: cancel names it so, and says
    how to drop it, instead of calling the queue empty."""
    queue = make_queue(ledger, tmp_path, Caps(max_running=1))
    ask = SpawnAsk("coder", "", "@ann on gh", "", "", "cap", origin="forge", ref="5")
    entry = await ledger.spawn_queue.enqueue_spawn(ask, host=queue.host)
    with pytest.raises(NotFound, match="no launch from chat waits; 1 is a forge run's place"):
        await queue.cancel(str(entry.id))
    with pytest.raises(NotFound, match=r"\(no launch from chat waits\)$"):
        await queue.cancel("99")
    assert [e.id for e in await queue.launches.entries()] == [entry.id]
    await set_live(ledger, "r")
    said = await queue.admit(spawn("!spawn b"), runtime=None, account=None)
    assert said is not None and "position 1 of 1" in said  # as `queue` numbers chat's

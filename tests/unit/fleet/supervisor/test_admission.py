"""The one admission against a real sqlite ledger: each outcome (started, queued, refused),
each cap, the fallback, deferral, ``urgent``, and the roster's own launches."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from fleet.budgets.model import Groups
from fleet.caps import Caps
from fleet.ledger import Ledger, QueuedSpawn, SpawnAsk
from fleet.model import AgentSpec, AgentState, DesiredState, Fallback
from fleet.names import AgentName
from fleet.repos.hook.policy import Issue
from fleet.repos.line.cutting import Asked
from fleet.supervisor.admission.admit import Admission, Wait
from fleet.supervisor.admission.request import LaunchRequest, Queued, Refused, Started
from fleet.supervisor.admission.slots import Slots
from fleet.supervisor.status import AgentStatus, SpawnOutcome
from tests.fakes.doubles.launches import an_admission, given_of

T = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
LATER = datetime(2025, 3, 1, 14, 0, tzinfo=UTC)


class Launches:
    """The supervisor as the admission launches through it: records each launch."""

    def __init__(self, fallback: Fallback | None = None) -> None:
        self.spawned: list[dict[str, Any]] = []
        self.requests: list[LaunchRequest] = []  # each launch's request, whole
        self._fallback = fallback
        self.specs: dict[str, AgentSpec] = {}

    async def fallback_of(self, name: str) -> Fallback | None:
        return self._fallback

    async def spec(self, name: str) -> AgentSpec:
        return self.specs.get(name) or AgentSpec(AgentName(name), "stub")

    async def spawn(self, request: LaunchRequest) -> SpawnOutcome:
        given = given_of(request)
        self.requests.append(request)
        name = request.agent
        self.spawned.append(given)
        status = AgentStatus(
            AgentName(name), "stub", "subprocess", None, AgentState.RUNNING, "", 7, T, None,
            None, None,
        )  # fmt: skip
        return SpawnOutcome(status, started=True, pid=7)

    def busy(self) -> set[str]:
        return set()

    def roster(self) -> list[AgentSpec]:
        return []


class Budgets:
    def __init__(self, admitted: bool, until: datetime | None = None) -> None:
        self.admitted, self.until = admitted, until
        self.asked: list[tuple[str, bool]] = []

    async def admit_spawn(self, agent: str, *, urgent: bool) -> tuple[bool, str]:
        self.asked.append((agent, urgent))
        return (True, "") if self.admitted or urgent else (False, f"agent:{agent} is over")

    def queued_until(self, agent: str) -> datetime | None:
        return self.until


def admission(
    ledger: Ledger, fleet: Launches, caps: Caps | None = None, budgets: Budgets | None = None
) -> Admission:
    slots = Slots(
        agents=ledger.agents,
        spawn_queue=ledger.spawn_queue,
        fleet=fleet,
        caps=caps or Caps(),
        groups=Groups(),
        accounts=None,
        default_runtime="stub",
        host="host-a",
    )
    return an_admission(fleet, slots=slots, budgets=budgets)


def waiter(ledger: Ledger) -> Wait:
    async def wait(request: LaunchRequest, why: str, until: datetime | None) -> QueuedSpawn:
        ask = SpawnAsk(request.agent, f"spawn {request.agent}", "ann", "chat", "room", why,
                       not_before=until)  # fmt: skip
        return await ledger.spawn_queue.enqueue_spawn(ask, host="host-a")

    return wait


async def live(ledger: Ledger, name: str) -> None:
    await ledger.agents.upsert_agent(AgentSpec(AgentName(name), "stub"), DesiredState.RUNNING)
    await ledger.agents.set_state(name, AgentState.RUNNING, "test")


async def test_a_launch_that_fits_starts_with_what_it_asks_of_its_line(ledger: Ledger) -> None:
    fleet = Launches()
    request = LaunchRequest(
        "coder", by="@ann on chat", prompt="go", repo="app", branch="fw/coder/issue-3",
        issue=Issue("acme/app", 3), co_author="Ann <ann@example.org>", collect=False,
    )  # fmt: skip
    started = await admission(ledger, fleet, budgets=Budgets(True)).admit(request)
    assert isinstance(started, Started) and started.outcome.pid == 7 and not started.fallback
    [spawned] = fleet.spawned
    assert (spawned["prompt"], spawned["repo"], spawned["by"], spawned["collect"]) == (
        "go", "app", "@ann on chat", False,
    )  # fmt: skip
    assert spawned["asked"] == Asked(
        co_author="Ann <ann@example.org>", issue=Issue("acme/app", 3), branch="fw/coder/issue-3"
    )


async def test_a_budget_refusal_moves_to_the_fallback_unless_a_runtime_is_named(
    ledger: Ledger,
) -> None:
    fleet = Launches(Fallback(runtime="codex", model="small", account="spare"))
    gate = admission(ledger, fleet, budgets=Budgets(False))
    started = await gate.admit(LaunchRequest("coder"))
    assert isinstance(started, Started)
    assert (
        started.fallback == "Started on its fallback, codex on account spare: agent:coder is over."
    )
    assert (fleet.spawned[0]["runtime"], fleet.spawned[0]["account"]) == ("codex", "spare")
    refused = await gate.admit(LaunchRequest("coder", runtime="claude"))
    assert refused == Refused("agent:coder is over (this launch is not queued)")
    assert len(fleet.spawned) == 1


async def test_a_budget_queue_defers_the_launch_where_it_may_wait(ledger: Ledger) -> None:
    """A launch a queued budget defers waits in the spawn queue where it may (so `queue`
    lists it); where it may not, it is refused saying it is not queued."""
    fleet = Launches()
    gate = admission(ledger, fleet, budgets=Budgets(False, until=LATER))
    assert await gate.admit(LaunchRequest("coder")) == Refused(
        "agent:coder is over (this launch is not queued)"
    )
    assert await ledger.spawn_queue.queued_spawns("host-a") == []
    queued = await gate.admit(LaunchRequest("coder"), waiter(ledger))
    assert isinstance(queued, Queued) and queued.until == LATER and queued.entry is not None
    assert queued.entry.not_before == LATER and not queued.already
    again = await gate.admit(LaunchRequest("coder"), waiter(ledger))
    assert isinstance(again, Queued) and again.already and again.entry == queued.entry
    assert [e.id for e in await ledger.spawn_queue.queued_spawns("host-a")] == [queued.entry.id]
    assert fleet.spawned == []


async def test_urgent_passes_the_budget_and_autostart_is_not_asked(ledger: Ledger) -> None:
    fleet, budgets = Launches(), Budgets(False)
    gate = admission(ledger, fleet, budgets=budgets)
    assert isinstance(await gate.admit(LaunchRequest("coder", urgent=True)), Started)
    assert isinstance(await gate.admit(LaunchRequest("roster", origin="autostart")), Started)
    assert budgets.asked == [("coder", True)]
    assert [s["name"] for s in fleet.spawned] == ["coder", "roster"]


async def test_the_global_cap_queues_a_launch_oldest_first(ledger: Ledger) -> None:
    fleet = Launches()
    gate = admission(ledger, fleet, Caps(max_running=1))
    await live(ledger, "one")
    queued = await gate.admit(LaunchRequest("two"), waiter(ledger))
    assert isinstance(queued, Queued) and queued.entry is not None
    assert queued.why == "global max_running 1 reached (1 running)"
    held = await gate.admit(LaunchRequest("three"))  # a forge run's: kept by its caller
    assert held == Queued("global max_running 1 reached (1 running)")
    assert [e.agent for e in await ledger.spawn_queue.queued_spawns("host-a")] == ["two"]
    assert fleet.spawned == []


async def test_an_account_cap_and_a_budget_scope_cap_hold_a_launch(ledger: Ledger) -> None:
    fleet = Launches()
    await live(ledger, "one")
    scoped = admission(ledger, fleet, Caps(scopes={"agent:two": 1, "global": 1}))
    why = (await scoped.admit(LaunchRequest("two"))).why  # type: ignore[union-attr]
    assert why == "budget global: max_running 1 reached (1 running)"
    roomy = admission(ledger, fleet, Caps(accounts={"capped": 1}))
    assert isinstance(await roomy.admit(LaunchRequest("two")), Started)


async def test_a_slot_is_held_until_the_launch_returns(ledger: Ledger, tmp_path: Path) -> None:
    """Two launches at once cannot both take the last slot."""
    fleet = Launches()
    gate = admission(ledger, fleet, Caps(max_running=1))
    slots = gate.slots
    assert slots is not None
    assert await slots.take("a", None, None, None) is None  # held, as a launch under way
    queued = await gate.admit(LaunchRequest("b"))
    assert isinstance(queued, Queued) and "max_running 1 reached" in queued.why
    slots.release("a")
    assert isinstance(await gate.admit(LaunchRequest("b")), Started)


async def test_a_slot_let_go_is_told_to_every_listener(ledger: Ledger) -> None:
    """Each listener of the slots hears a held slot let go, a second one as well as the
    first (none replaces another); a launch that held none tells nobody."""
    slots = admission(ledger, Launches(), Caps(max_running=2)).slots
    assert slots is not None
    heard: list[str] = []
    slots.listen_freed(lambda: heard.append("queue"))
    slots.listen_freed(lambda: heard.append("another"))
    assert await slots.take("a", None, None, None) is None
    slots.release("a")
    slots.release("b")  # held nothing
    assert heard == ["queue", "another"]


async def test_a_forge_runs_place_and_an_operators_spawn_do_not_answer_for_each_other(
    ledger: Ledger,
) -> None:
    """An issue's run of ``two`` waiting in the queue does not make an operator's ``spawn
    two`` "already queued" (nor the other way round): each takes its own place."""
    fleet = Launches()
    gate = admission(ledger, fleet, Caps(max_running=1))
    await live(ledger, "one")
    forge_ask = SpawnAsk("two", "", "@ann on gh", "", "", "cap", origin="forge", ref="5")
    forge_entry = await ledger.spawn_queue.enqueue_spawn(forge_ask, host="host-a")
    chat = await gate.admit(LaunchRequest("two"), waiter(ledger))
    assert isinstance(chat, Queued) and not chat.already and chat.entry is not None
    assert chat.entry.id != forge_entry.id
    forge = await gate.admit(LaunchRequest("two", origin="forge"))
    assert isinstance(forge, Queued) and forge.already and forge.entry == forge_entry

"""Tests for bot.chat.run_states: each run's thread told its state — by the fleet's events
and by its open asks — once per change, with its task's title or its agent's. The ledger
and the approvals service are real; the connector is the threaded fake, which records each
state it is told."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from bot.chat import run_states
from bot.chat.ordering import Ordering
from bot.chat.run_states import TITLE_CHARS, RunStates, run_title, state_of
from connectors.base import RoomId, RunState, ThreadId
from fleet.approvals.service import Approvals
from fleet.events import EventKind, FleetEvent
from fleet.ledger import Ledger
from fleet.ledger.records.approvals import ApprovalRequest, Ask, Decision
from fleet.ledger.records.tasks import NO_PROJECTION, NewTask
from fleet.model import AgentSpec, AgentState, DesiredState, RunHandle
from fleet.names import AgentName
from fleet.timing.clock import ManualClock
from tests.unit.chat_fakes import HomeConnector, ThreadedConnector

ROOM = "!ops:example.org"
THREAD = "$root-c1"
RUN = 7


def event(kind: EventKind, state: AgentState = AgentState.RUNNING, run: int = RUN) -> FleetEvent:
    return FleetEvent(AgentName("c1"), kind, state, "", False, run)


async def spec(name: str) -> AgentSpec:
    if name != "c1":
        raise KeyError(name)
    return AgentSpec(name=AgentName(name), runtime="claude")


@pytest.fixture
async def chat(ledger: Ledger) -> ThreadedConnector:
    connector = ThreadedConnector()
    connector.add_thread(ROOM, THREAD)
    await ledger.chat.bind_thread("matrix", ROOM, "c1", ThreadId(THREAD))
    return connector


def states_of(chat: ThreadedConnector) -> list[RunState]:
    assert all((room, thread) == (ROOM, THREAD) for room, thread, _, _ in chat.run_states)
    return [state for _, _, state, _ in chat.run_states]


async def ask(approvals: Approvals, native: str) -> ApprovalRequest:
    """An ask of c1's run, opened."""
    return await approvals.open(
        agent="c1", run_id=RUN, channel="x", ask=Ask(native, "Bash", "ls"), wait_seconds=60,
        max_open=5, starter=None, ruled=False,
    )  # fmt: skip


def listener(ledger: Ledger, chat: ThreadedConnector, **kw: Ordering) -> RunStates:
    return RunStates(ledger.chat, lambda: [chat], run_title(ledger.tasks, spec), **kw)


def test_each_fleet_event_maps_to_the_state_it_puts_a_run_in() -> None:
    """Started/reattached/restarted work, a turn over idles (or works on), frozen waits, a
    thaw works (or idles, as the agent is), ended and given up end; a stall or a refusal changes
    nothing."""
    assert state_of(event(EventKind.STARTED)) is RunState.WORKING
    assert state_of(event(EventKind.REATTACHED)) is RunState.WORKING
    assert state_of(event(EventKind.RESTARTED)) is RunState.WORKING
    assert state_of(event(EventKind.TURN_OVER, AgentState.IDLE)) is RunState.IDLE
    assert state_of(event(EventKind.TURN_OVER, AgentState.RUNNING)) is RunState.WORKING
    assert state_of(event(EventKind.FROZEN)) is RunState.WAITING
    assert state_of(event(EventKind.THAWED, AgentState.RUNNING)) is RunState.WORKING
    assert state_of(event(EventKind.THAWED, AgentState.IDLE)) is RunState.IDLE
    assert state_of(event(EventKind.ENDED, AgentState.EXITED)) is RunState.ENDED
    assert state_of(event(EventKind.GAVE_UP, AgentState.FAILED)) is RunState.ENDED
    assert state_of(event(EventKind.STALLED, AgentState.STALLED)) is None
    assert state_of(event(EventKind.REFUSED, AgentState.FAILED)) is None


async def test_a_runs_thread_is_told_each_change_once_titled_by_its_agent(
    ledger: Ledger, chat: ThreadedConnector
) -> None:
    """Working, idle, working, ended, each told once in the agent's thread, a repeat not at
    all; without a task the title is the agent's name and runtime."""
    states = listener(ledger, chat)
    for kind, state in [
        (EventKind.STARTED, AgentState.RUNNING),
        (EventKind.TURN_OVER, AgentState.RUNNING),  # working still: not told again
        (EventKind.TURN_OVER, AgentState.IDLE),
        (EventKind.TURN_OVER, AgentState.IDLE),
        (EventKind.RESTARTED, AgentState.RUNNING),
        (EventKind.STALLED, AgentState.STALLED),
        (EventKind.ENDED, AgentState.EXITED),
    ]:
        await states.on_fleet_event(event(kind, state))
    assert states_of(chat) == [RunState.WORKING, RunState.IDLE, RunState.WORKING, RunState.ENDED]
    assert {title for *_, title in chat.run_states} == {"c1 (claude)"}


async def test_an_open_ask_makes_the_run_wait_until_the_last_is_answered(
    ledger: Ledger, chat: ThreadedConnector, clock: ManualClock
) -> None:
    """Two asks open: waiting, told once; one answered: still waiting; the last answered:
    back to what the fleet last said (idle, here)."""
    states = listener(ledger, chat)
    approvals = Approvals(ledger.approvals, clock)
    approvals.subscribe(states.on_approval)
    await states.on_fleet_event(event(EventKind.STARTED))
    first, second = [await ask(approvals, native) for native in ("n1", "n2")]
    await states.on_fleet_event(event(EventKind.TURN_OVER, AgentState.IDLE))  # shown: waiting
    await approvals.answer(first.id, by="@ann:hs", decision=Decision.ALLOW, how="reaction")
    assert states_of(chat) == [RunState.WORKING, RunState.WAITING]
    await approvals.answer(second.id, by="@ann:hs", decision=Decision.DENY, how="reaction")
    assert states_of(chat) == [RunState.WORKING, RunState.WAITING, RunState.IDLE]


async def test_a_run_ending_with_an_ask_open_shows_ended_and_its_closing_nothing_more(
    ledger: Ledger, chat: ThreadedConnector, clock: ManualClock
) -> None:
    """The run ends while it waits: ended is told; the ask closed after it tells nothing."""
    states = listener(ledger, chat)
    approvals = Approvals(ledger.approvals, clock)
    approvals.subscribe(states.on_approval)
    await ask(approvals, "n1")
    await states.on_fleet_event(event(EventKind.ENDED, AgentState.STOPPED))
    await approvals.close_run(RUN, "c1 ended")
    assert states_of(chat) == [RunState.WAITING, RunState.ENDED]


async def test_a_budgets_ask_makes_no_run_wait(
    ledger: Ledger, chat: ThreadedConnector, clock: ManualClock
) -> None:
    """A budget's ask (run 0, no agent) is no run's: no thread is told anything."""
    states = listener(ledger, chat)
    approvals = Approvals(ledger.approvals, clock)
    approvals.subscribe(states.on_approval)
    await approvals.open(
        agent="budget:global", run_id=0, channel="spend", ask=Ask("g:0", "spend", "limit"),
        wait_seconds=60, max_open=1, starter=None, ruled=False,
    )  # fmt: skip
    assert chat.run_states == []


async def test_the_title_is_the_runs_tasks_cut_to_the_limit(
    ledger: Ledger, chat: ThreadedConnector, tmp_path: Path
) -> None:
    """A run done for a task is titled by the task, on one line, at most 200 characters."""
    long = "Fix the\nlogin " + "x" * 300
    task = await ledger.tasks.add_task(NewTask(long, "chat", "@ann:hs"), NO_PROJECTION)
    await ledger.agents.upsert_agent(await spec("c1"), DesiredState.RUNNING)
    handle = RunHandle("subprocess", 10, 10, tmp_path, tmp_path)
    run = (await ledger.runs.start_run("c1", handle)).id
    await ledger.tasks.add_run(task.id, run)
    await listener(ledger, chat).on_fleet_event(event(EventKind.STARTED, run=run))
    [(_, _, _, title)] = chat.run_states
    assert title.startswith("Fix the login xxx") and len(title) == TITLE_CHARS


async def test_a_state_found_while_the_spawn_is_answered_waits_for_the_answer(
    ledger: Ledger, chat: ThreadedConnector
) -> None:
    """Started while its spawn is answered: told once the answer (which opens the thread)
    is posted."""
    ordering = Ordering()
    states = listener(ledger, chat, ordering=ordering)
    async with ordering.answering(["c1"]):
        await states.on_fleet_event(event(EventKind.STARTED))
        assert chat.run_states == []
    assert states_of(chat) == [RunState.WORKING]


async def test_a_connector_without_threads_or_failing_keeps_the_fleet_going(
    ledger: Ledger, chat: ThreadedConnector, caplog: pytest.LogCaptureFixture
) -> None:
    """No threads: nothing told there; a connector that raises is logged, the others told,
    and the failed thread told again at the next change."""

    class Broken(ThreadedConnector):
        async def show_run_state(
            self, room: RoomId, thread: ThreadId, state: RunState, title: str
        ) -> None:
            raise RuntimeError("down")

    broken = Broken("slack")
    await ledger.chat.bind_thread("slack", "C1", "c1", ThreadId("1.2"))
    home = HomeConnector("console", "console")
    states = RunStates(ledger.chat, lambda: [home, broken, chat], run_title(ledger.tasks, spec))
    with caplog.at_level(logging.ERROR):
        await states.on_fleet_event(event(EventKind.STARTED))
    assert states_of(chat) == [RunState.WORKING] and home.run_states == []
    assert "the state of thread 1.2 was not shown" in caplog.text


async def test_what_it_remembers_stays_bounded(
    ledger: Ledger, chat: ThreadedConnector, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Past its limit the oldest thread's state is forgotten (told again), not grown."""
    monkeypatch.setattr(run_states, "KEEP_THREADS", 3)
    states = listener(ledger, chat)
    for n in range(4):
        await ledger.chat.bind_thread("matrix", ROOM, f"a{n}", ThreadId(f"$t{n}"))
        await states.on_fleet_event(at(f"a{n}", n, EventKind.STARTED))
    await states.on_fleet_event(at("a3", 3, EventKind.REATTACHED))  # remembered: not told
    await states.on_fleet_event(at("a0", 0, EventKind.REATTACHED))  # forgotten: told again
    assert [thread for _, thread, _, _ in chat.run_states] == ["$t0", "$t1", "$t2", "$t3", "$t0"]


def at(agent: str, run: int, kind: EventKind) -> FleetEvent:
    return FleetEvent(AgentName(agent), kind, AgentState.RUNNING, "", False, run)


async def test_an_older_runs_late_news_never_shows_over_the_newest_run(
    ledger: Ledger, chat: ThreadedConnector
) -> None:
    """Run 8 began while run 7 still ended (a restart): 7's late end is not told over 8's
    work, nor is an ask of 7 opened then; 8's own end is."""
    states = listener(ledger, chat)
    await states.on_fleet_event(event(EventKind.STARTED, run=7))
    await states.on_fleet_event(event(EventKind.RESTARTED, run=8))
    await states.on_fleet_event(event(EventKind.ENDED, AgentState.EXITED, run=7))
    await states.on_fleet_event(event(EventKind.TURN_OVER, AgentState.IDLE, run=8))
    await states.on_fleet_event(event(EventKind.ENDED, AgentState.EXITED, run=8))
    assert states_of(chat) == [RunState.WORKING, RunState.IDLE, RunState.ENDED]

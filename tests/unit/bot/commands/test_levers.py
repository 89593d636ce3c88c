"""Tests for the emergency levers through the real router, a real Fleet and ledger: only an
admin pulls them; `all` asks, and acts only on its asker's `yes` in the same place before
the deadline; late and other people's replies are refused with why; all of it audited."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from functools import partial
from pathlib import Path

import pytest

from bot.acl import Acl, Grant, Role
from bot.commands.handlers.agents.control import Handlers
from bot.commands.handlers.agents.levers import Levers
from bot.commands.handlers.agents.restart_all import RestartAll, RestartOne
from bot.commands.handlers.agents.resume import LimitCommands
from bot.commands.handlers.agents.spawn.launching import Launching
from bot.commands.handlers.launches.spawn_queue import SpawnQueue
from bot.commands.handlers.overview import OverviewCommands
from bot.commands.handlers.spend.pacing import PacingCommands
from bot.commands.parsing.grammar import Grammar
from bot.commands.routing.confirmations import ConfirmationDesk
from bot.commands.routing.execution import STOPPING
from bot.commands.routing.request import Request
from bot.commands.routing.router import Router
from bot.commands.routing.sources import SHELL
from bot.commands.specs import COMMANDS
from bot.control.answers import ShellAnswers
from bot.control.wire import EXIT_REFUSED
from connectors.base import EventId
from fleet.approvals.service import Approvals
from fleet.approvals.spend import SpendAsks
from fleet.budgets.model import Groups
from fleet.budgets.runs.caps import RunCaps
from fleet.caps import Caps
from fleet.ledger import Ledger
from fleet.model import AgentSpec, AgentState, DesiredState, RestartMode, RestartPolicy
from fleet.names import AgentName
from fleet.runs.launch.launch_kit import LaunchKit
from fleet.runtimes import default_registry
from fleet.supervisor.admission.admit import Admission
from fleet.supervisor.fleet import Fleet, FleetSettings
from fleet.supervisor.status import AgentStatus
from fleet.timing.clock import ManualClock
from tests.fakes.doubles.launches import fleet_and_admission
from tests.fakes.doubles.spawn_queues import a_spawn_queue
from tests.fakes.doubles.stores import fleet_stores
from tests.polling import eventually
from tests.unit.chat_fakes import OPERATOR, T0, VIEWER, Calls, FakeConnector, message
from tests.unit.fleet.approvals.test_budget_asks import Book

ADMIN = "@ada:example.org"
CONSOLE = "console"


def a_fleet(ledger: Ledger, clock: ManualClock, tmp_path: Path) -> tuple[Fleet, Admission]:
    return fleet_and_admission(
        stores=fleet_stores(ledger),
        clock=clock,
        kit=LaunchKit(
            runtimes=default_registry(),
            backends={},
            settings=FleetSettings(state_dir=tmp_path),
            environ={},
        ),
    )


@pytest.fixture
def router(ledger: Ledger, clock: ManualClock, tmp_path: Path) -> Router:
    return a_router(ledger, clock, *a_fleet(ledger, clock, tmp_path))


def a_router(
    ledger: Ledger,
    clock: ManualClock,
    fleet: Fleet,
    admission: Admission,
    queue: SpawnQueue | None = None,
    asks: SpendAsks | None = None,
    restart_one: RestartOne | None = None,
    chat: FakeConnector | None = None,
) -> Router:
    """``restart_one``: in place of ``restart NAME``'s restart (the fleet's, by default);
    ``chat``: where a ``restart all``'s summary is posted."""
    handlers = Handlers(fleet=fleet, clock=clock, launching=Launching(admission))
    overview = OverviewCommands(fleet=fleet, specs=COMMANDS, clock=clock, prefix="!")
    desk = ConfirmationDesk(ledger.chat, clock)
    levers = Levers(
        fleet=fleet,
        agents=ledger.agents,
        budgets=ledger.budgets,
        desk=desk,
        stop_one=handlers.stop,
        queue=queue,
        asks=asks,
        restart_named=handlers.restart,
        restart_all=RestartAll(
            fleet,
            restart_one or handlers.restart_agent,
            connector_named=lambda name: chat if chat is not None and chat.name == name else None,
            audit=ledger.audit,
        ),
    )
    acl = Acl(
        [
            Grant(ADMIN, Role.ADMIN),
            Grant(OPERATOR, Role.OPERATOR),
            Grant(VIEWER, Role.VIEWER),
            Grant(CONSOLE, Role.ADMIN, connector=CONSOLE),
        ]
    )
    table = {
        **Calls().table(),
        **handlers.table(),
        **overview.table(),
        **PacingCommands(fleet).table(),
        **LimitCommands(fleet).table(),
        **levers.table(),
    }
    return Router(
        grammar=Grammar(COMMANDS),
        acl=acl,
        handlers=table,
        audit=ledger.audit,
        chat=ledger.chat,
        confirmations=desk,
    )


async def wanted_running(ledger: Ledger, name: str = "coder") -> None:
    """An agent the watchdog would restart: on-failure, wanted running, not running now."""
    spec = AgentSpec(
        name=AgentName(name),
        runtime="stub",
        backend="subprocess",
        restart=RestartPolicy(mode=RestartMode.ON_FAILURE),
    )
    await ledger.agents.upsert_agent(spec, DesiredState.RUNNING)


async def desired(ledger: Ledger, name: str = "coder") -> DesiredState:
    record = await ledger.agents.get_agent(name)
    assert record is not None
    return record.desired


@pytest.mark.parametrize("sender", [VIEWER, OPERATOR])
@pytest.mark.parametrize(
    "text", ["!freeze coder", "!freeze all", "!stop all", "!resume all", "!restart all"]
)
async def test_only_an_admin_pulls_a_lever(
    router: Router, chat: FakeConnector, ledger: Ledger, sender: str, text: str
) -> None:
    """A viewer's or an operator's lever is refused, naming the role it needs (an operator
    is told: admin); nothing is asked and nothing changes; the refusal is audited as denied."""
    await wanted_running(ledger)
    await router.handle(chat, message(text, sender=sender))
    [reply] = chat.sent
    assert ("admin role" if sender == OPERATOR else " role") in reply.markdown
    assert "yes" not in reply.markdown
    [entry] = await ledger.audit.audit_entries()
    assert (entry.outcome, entry.sender) == ("denied", sender)
    assert await ledger.chat.confirmations_at("matrix", "!room:example.org", None) == []
    assert await desired(ledger) is DesiredState.RUNNING


async def test_restart_all_refuses_force_with_only_idle_and_says_when_none_runs(
    router: Router, chat: FakeConnector, ledger: Ledger
) -> None:
    """`restart all --force --only idle` is refused with why, asking nothing; with no agent
    live, `restart all` says there is nothing to restart; `restart NAME --force` is told
    the flags are `restart all`'s."""
    await router.handle(chat, message("!restart all --force --only idle", sender=ADMIN))
    assert "give one of them" in chat.sent[-1].markdown
    assert await ledger.chat.confirmations_at("matrix", "!room:example.org", None) == []
    await router.handle(chat, message("!restart all", sender=ADMIN, event_id="$2"))
    assert chat.sent[-1].markdown == "Nothing to restart: no agent is running."
    await router.handle(chat, message("!restart coder --only idle", sender=ADMIN, event_id="$3"))
    assert "`--force` and `--only` go with `restart all`, not `restart coder`" in (
        chat.sent[-1].markdown
    )
    outcomes = [(e.text, e.outcome) for e in reversed(await ledger.audit.audit_entries())]
    assert outcomes == [
        ("!restart all --force --only idle", "error"),
        ("!restart all", "ok"),
        ("!restart coder --only idle", "error"),
    ]


async def test_stop_all_asks_and_acts_only_on_its_askers_yes(
    router: Router, chat: FakeConnector, ledger: Ledger
) -> None:
    """`stop all` names what it would stop and waits; another person's `yes` is refused, a
    `yes` in another thread is ordinary chat, the asker's `yes` stops it; all audited."""
    await wanted_running(ledger)
    await router.handle(chat, message("!stop all", sender=ADMIN, event_id="$ask"))
    assert "`stop all` would stop 1 agent now: coder." in chat.sent[-1].markdown
    assert "Reply `yes` here within 60 s" in chat.sent[-1].markdown
    assert await desired(ledger) is DesiredState.RUNNING

    await router.handle(chat, message("yes", sender=OPERATOR, event_id="$other"))
    assert "waits for the reply of @ada:example.org" in chat.sent[-1].markdown
    await router.handle(chat, message("yes", sender=ADMIN, event_id="$elsewhere", thread_id="$t"))
    assert len(chat.sent) == 2  # not a reply to anything there: nothing said, nothing done
    assert await desired(ledger) is DesiredState.RUNNING

    await router.handle(chat, message("Yes", sender=ADMIN, event_id="$yes"))
    assert chat.sent[-1].markdown == "Stopped 1 agent: coder."
    assert await desired(ledger) is DesiredState.STOPPED
    await router.handle(chat, message("yes", sender=ADMIN, event_id="$again"))
    assert len(chat.sent) == 3  # answered already: a second `yes` is plain chat

    ask, other, confirmed = reversed(await ledger.audit.audit_entries())
    assert (ask.text, ask.command, ask.outcome, ask.source) == ("!stop all", "stop", "ok", "typed")
    assert ask.detail == "asked: `stop all` would stop 1 agent now: coder"
    assert (other.command, other.outcome, other.sender) == ("stop", "denied", OPERATOR)
    assert other.source.startswith("confirmation:")
    assert (confirmed.text, confirmed.command, confirmed.outcome) == ("Yes", "stop", "ok")
    assert (confirmed.source, confirmed.detail) == (other.source, "stopped coder")


async def test_a_late_yes_does_nothing_and_says_why(
    router: Router, chat: FakeConnector, ledger: Ledger, clock: ManualClock
) -> None:
    """A `yes` after the deadline is refused as too late and acts on nothing."""
    await wanted_running(ledger)
    await router.handle(chat, message("!stop all", sender=ADMIN, event_id="$ask"))
    clock.advance(61)
    await router.handle(chat, message("!yes", sender=ADMIN, event_id="$late"))
    assert "too late: `!stop all` waited 60 s for your reply and expired 1 s ago" in (
        chat.sent[-1].markdown
    )
    assert await desired(ledger) is DesiredState.RUNNING
    late = (await ledger.audit.audit_entries())[0]
    assert (late.text, late.command, late.outcome) == ("!yes", "stop", "error")
    assert late.source.startswith("confirmation:")


async def test_a_yes_read_while_stopping_is_refused_and_leaves_the_question_waiting(
    router: Router, chat: FakeConnector, ledger: Ledger
) -> None:
    """A `yes` read once the stop began confirms nothing and is told so; the question stays
    in the ledger, so the asker's `yes` after the start (before its deadline) still acts."""
    await wanted_running(ledger)
    await router.handle(chat, message("!stop all", sender=ADMIN, event_id="$ask"))
    await router.handle(chat, message("yes", sender=ADMIN, event_id="$yes1"), stopping=True)
    assert chat.sent[-1].markdown == STOPPING
    assert await desired(ledger) is DesiredState.RUNNING
    refused = (await ledger.audit.audit_entries())[0]
    assert (refused.text, refused.outcome, refused.detail) == ("yes", "denied", STOPPING)
    await router.handle(chat, message("yes", sender=ADMIN, event_id="$yes2"))
    assert chat.sent[-1].markdown == "Stopped 1 agent: coder."
    assert await desired(ledger) is DesiredState.STOPPED


async def test_an_edit_never_confirms(router: Router, chat: FakeConnector, ledger: Ledger) -> None:
    """Editing a message into `yes` does not confirm a waiting lever."""
    await wanted_running(ledger)
    await router.handle(chat, message("!stop all", sender=ADMIN, event_id="$ask"))
    await router.handle(chat, message("yse", sender=ADMIN, event_id="$typo"))
    edit = replace(message("yes", sender=ADMIN, event_id="$edit"), replaces=EventId("$typo"))
    await router.handle(chat, edit)
    assert await desired(ledger) is DesiredState.RUNNING


async def test_yes_with_nothing_waiting_is_what_it_always_was(router: Router) -> None:
    """On the console a `yes` with no question waiting is an unknown command, as before."""
    console = FakeConnector(CONSOLE)
    await router.handle(
        console, message("yes", sender=CONSOLE, connector=CONSOLE, event_id=None, addressed=True)
    )
    assert "unknown command 'yes'" in console.sent[-1].markdown


async def test_an_admin_with_nothing_to_act_on_is_told_so(
    router: Router, chat: FakeConnector
) -> None:
    """An admin's `freeze all`, `stop all` and `resume all` with no agents ask nothing."""
    for text in ("!freeze all", "!stop all", "!resume all"):
        await router.handle(chat, message(text, sender=ADMIN, event_id=f"${text}"))
    assert [m.markdown for m in chat.sent] == [
        "Nothing to freeze: no agent is running.",
        "Nothing to stop: no agent is running or waiting to restart.",
        "Nothing to resume: no agent is frozen.",
    ]


async def test_stop_all_from_a_shell_is_refused_and_says_to_run_it_in_chat(
    router: Router, ledger: Ledger
) -> None:
    """A shell cannot give the `yes` `stop all` asks for: it is refused (exit 1), saying
    what it would do and where to run it, and nothing waits for a `yes`."""
    await wanted_running(ledger)
    answer = await ShellAnswers(router, lambda: ADMIN, ManualClock(T0))("stop all")
    assert (answer.exit, answer.outcome) == (EXIT_REFUSED, "error")
    assert "`stop all` would stop 1 agent now: coder." in answer.text
    assert "run `stop all` in chat" in answer.text
    assert await desired(ledger) is DesiredState.RUNNING
    assert await ledger.chat.confirmations_at(SHELL, SHELL, None) == []


async def test_stop_all_empties_the_spawn_queue_first(
    ledger: Ledger, clock: ManualClock, tmp_path: Path, chat: FakeConnector
) -> None:
    """`stop all` names the queued launches it would drop, and on `yes` drops them with the
    agents it stops: nothing waits to start into the slots the stop frees."""
    fleet, admission = a_fleet(ledger, clock, tmp_path)
    queue = a_spawn_queue(
        ledger=ledger,
        fleet=fleet,
        caps=Caps(max_running=1),
        groups=Groups(),
        accounts=None,
        clock=clock,
        default_runtime="stub",
        host="host-a",
    )
    router = a_router(ledger, clock, fleet, admission, queue)
    await ledger.agents.upsert_agent(AgentSpec(AgentName("a"), "stub"), DesiredState.RUNNING)
    await ledger.agents.set_state("a", AgentState.RUNNING, "test")
    spawn = Grammar(COMMANDS).parse("!spawn b")
    assert spawn is not None
    request = Request(message("!spawn b", sender=OPERATOR), Role.OPERATOR, spawn)
    assert await queue.admit(request, runtime=None, account=None) is not None

    await router.handle(chat, message("!stop all", sender=ADMIN, event_id="$ask"))
    assert "drop 1 waiting spawn(s) from the queue: #1 b." in chat.sent[-1].markdown
    assert len(await queue.entries()) == 1
    await router.handle(chat, message("yes", sender=ADMIN, event_id="$yes"))
    assert chat.sent[-1].markdown == "Stopped 1 agent: a. Dropped from the spawn queue: #1 b."
    assert await queue.entries() == []
    assert await desired(ledger, "a") is DesiredState.STOPPED
    [confirmed, *_] = await ledger.audit.audit_entries()
    assert confirmed.detail == "stopped a; dropped #1 b"


async def test_all_is_no_agents_name(router: Router, chat: FakeConnector) -> None:
    """`spawn all` is refused: `all` means every agent to the levers, so no agent has it."""
    await router.handle(chat, message("!spawn all", sender=ADMIN))
    assert chat.sent[-1].markdown.startswith("'all' cannot be an agent's name")


async def test_budget_is_no_agents_name(router: Router, chat: FakeConnector) -> None:
    """`spawn budget` is refused: `raise budget SCOPE` raises a budget's limit, so no agent
    may be so named."""
    await router.handle(chat, message("!spawn budget", sender=ADMIN))
    assert chat.sent[-1].markdown.startswith("'budget' cannot be an agent's name")
    assert "`raise budget SCOPE` raises a budget's limit" in chat.sent[-1].markdown


async def test_stop_of_a_budgets_ask_key_is_refused_before_any_ask_is_answered(
    ledger: Ledger, clock: ManualClock, tmp_path: Path, chat: FakeConnector
) -> None:
    """`stop budget:global` names no agent: refused saying why, before it could answer the
    budget's open ask, which stays open."""
    fleet, admission = a_fleet(ledger, clock, tmp_path)
    approvals = Approvals(ledger.approvals, clock)
    asks = SpendAsks(approvals, ledger.spend_asks, ledger.agents, ledger.runs, RunCaps(), fleet)
    book = Book()
    asks.ask_for_budgets(book)
    await asks.start()
    assert await asks.ask_at_limit("global", ("coder",))
    router = a_router(ledger, clock, fleet, admission, asks=asks)
    await router.handle(chat, message("!stop budget:global", sender=ADMIN))
    assert "invalid agent name 'budget:global'" in chat.sent[-1].markdown
    [still] = await approvals.pending()
    assert still.agent == "budget:global"


class Restarts:
    """``restart NAME``'s restart as ``restart all`` sees it, recorded: the agent idle again at
    once, or only once :attr:`go` is set."""

    def __init__(self, ledger: Ledger, fleet: Fleet, *, held: bool = False) -> None:
        self._ledger = ledger
        self._fleet = fleet
        self.go = asyncio.Event()
        if not held:
            self.go.set()
        self.asked: list[str] = []

    async def __call__(self, name: str, by: str) -> AgentStatus:
        self.asked.append(name)
        await self.go.wait()
        await self._ledger.agents.set_state(name, AgentState.IDLE, "restarted")
        return await self._fleet.status(name)


async def idle(ledger: Ledger, *names: str) -> None:
    for name in names:
        await ledger.agents.upsert_agent(AgentSpec(AgentName(name), "stub"), DesiredState.RUNNING)
        await ledger.agents.set_state(name, AgentState.IDLE, "test")


def said(chat: FakeConnector, text: str) -> bool:
    return any(text in sent.markdown for sent in chat.sent)


async def test_restart_all_leaves_frozen_agents_alone_and_restarts_only_those_it_named(
    ledger: Ledger, clock: ManualClock, tmp_path: Path, chat: FakeConnector
) -> None:
    """A frozen agent is named with why and never restarted, `--force` or not; on `yes` only
    the agents the question named are restarted (one spawned since is left alone, unnamed),
    out of the command's handling; the summary is posted there and audited."""
    fleet, admission = a_fleet(ledger, clock, tmp_path)
    restarts = Restarts(ledger, fleet)
    router = a_router(ledger, clock, fleet, admission, restart_one=restarts, chat=chat)
    await idle(ledger, "a", "b")
    await ledger.budgets.add_freeze("b", "", "by @ada:example.org: careful", by=ADMIN)

    await router.handle(chat, message("!restart all --force", sender=ADMIN, event_id="$ask"))
    asked = chat.sent[-1].markdown
    assert "`restart all` would restart 1 agent one at a time: a." in asked
    assert "Left alone, frozen: b (frozen: by @ada:example.org: careful)" in asked
    assert "`--force` does not restart a frozen agent" in asked
    await idle(ledger, "c")  # spawned after the question
    await router.handle(chat, message("yes", sender=ADMIN, event_id="$yes"))
    assert chat.sent[-1].markdown.startswith("Restarting 1 agent one at a time: a.")
    await eventually(lambda: said(chat, "Restarted 1 agent: a."), "the summary posted")
    assert restarts.asked == ["a"]
    entries = await ledger.audit.audit_entries()
    summary = next(e for e in entries if e.detail == "restarted a")
    confirmed = next(e for e in entries if e.text == "yes")
    assert (summary.text, summary.command, summary.outcome) == (
        "!restart all --force",
        "restart",
        "ok",
    )
    assert summary.source == confirmed.source
    assert (
        confirmed.detail
        == "restarting a; left alone, frozen: b (frozen: by @ada:example.org: careful)"
    )


async def test_stop_all_cancels_a_restart_all_under_way_and_says_so(
    ledger: Ledger, clock: ManualClock, tmp_path: Path, chat: FakeConnector
) -> None:
    """While `restart all` waits on a restart, the room still answers commands; `stop all`
    asks saying it cancels the restarts first and, on `yes`, cancels them, stops the
    agents and says what the restarts had done; the cancelled run is audited."""
    fleet, admission = a_fleet(ledger, clock, tmp_path)
    restarts = Restarts(ledger, fleet, held=True)
    router = a_router(ledger, clock, fleet, admission, restart_one=restarts, chat=chat)
    await idle(ledger, "a", "b")
    await router.handle(chat, message("!restart all", sender=ADMIN, event_id="$ask"))
    await router.handle(chat, message("yes", sender=ADMIN, event_id="$yes"))
    await eventually(lambda: restarts.asked == ["a"], "the first restart under way")
    await router.handle(chat, message("!restart all", sender=ADMIN, event_id="$again"))
    assert "a `restart all` is under way already" in chat.sent[-1].markdown

    await router.handle(chat, message("!stop all", sender=ADMIN, event_id="$stop"))
    assert "It first cancels the `restart all` under way." in chat.sent[-1].markdown
    await router.handle(chat, message("yes", sender=ADMIN, event_id="$yes2"))
    stopped = chat.sent[-1].markdown
    assert stopped.startswith("Stopped 2 agents: a, b.")
    assert "Cancelled the `restart all` under way; it had restarted none." in stopped
    assert restarts.asked == ["a"]  # b's turn never came
    assert not said(chat, "Restarted")
    entries = await ledger.audit.audit_entries()
    assert any(e.detail == "cancelled; restarted none" and e.outcome == "error" for e in entries)
    assert any(e.detail == "stopped a, b; cancelled restart all (restarted none)" for e in entries)


async def test_a_question_offers_yes_and_a_click_is_its_clickers_yes(
    router: Router, chat: FakeConnector, ledger: Ledger
) -> None:
    """`stop all` offers a Yes button (a typed `yes`); another's click is refused as their
    `yes` is, the asker's click stops it, and the answer offers nothing."""
    await wanted_running(ledger)
    await router.handle(chat, message("!stop all", sender=ADMIN, event_id="$ask"))
    [choice] = chat.sent[-1].choices
    assert (choice.label, choice.answer, choice.as_reply, choice.style) == (
        "Yes",
        "yes",
        True,
        "primary",
    )
    click = partial(message, choice.answer, addressed=True)
    await router.handle(chat, click(sender=OPERATOR, event_id="action:1:op"))
    assert "waits for the reply of @ada:example.org" in chat.sent[-1].markdown
    assert await desired(ledger) is DesiredState.RUNNING
    await router.handle(chat, click(sender=ADMIN, event_id="action:2:ada"))
    assert chat.sent[-1].markdown == "Stopped 1 agent: coder." and chat.sent[-1].choices == ()
    assert await desired(ledger) is DesiredState.STOPPED

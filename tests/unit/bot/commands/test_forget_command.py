"""Tests for bot.commands.handlers.agents.forget, and how `ps` and `roster reload` show agents a
reload
removed: driven through the router with a real Fleet and ledger, as an operator's message
would be."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from bot.acl import Acl, Grant, Role
from bot.commands.handlers.agents.control import Handlers
from bot.commands.handlers.agents.forget import ForgetCommand
from bot.commands.handlers.agents.spawn.launching import Launching
from bot.commands.handlers.overview import OverviewCommands
from bot.commands.handlers.spend.pacing import PacingCommands
from bot.commands.parsing.grammar import Grammar
from bot.commands.routing.router import Router
from bot.commands.specs import COMMANDS
from bot.render import fleet as render
from fleet.ledger import Ledger
from fleet.model import AgentSpec, AgentState, DesiredState
from fleet.names import AgentName
from fleet.runs.launch.launch_kit import LaunchKit
from fleet.runtimes import default_registry
from fleet.supervisor.admission.admit import Admission
from fleet.supervisor.fleet import Fleet, FleetSettings, RosterDiff
from fleet.timing.clock import ManualClock
from tests.fakes.doubles.launches import fleet_and_admission
from tests.fakes.doubles.stores import fleet_stores
from tests.fakes.doubles.usage import metered
from tests.unit.chat_fakes import OPERATOR, T0, Calls, FakeConnector, message

ADMIN = "@ada:example.org"


@pytest.fixture
def fleeted(ledger: Ledger, tmp_path: Path) -> tuple[Fleet, Admission]:
    return fleet_and_admission(
        stores=fleet_stores(ledger),
        clock=ManualClock(T0),
        kit=LaunchKit(
            runtimes=default_registry(),
            backends={},
            settings=FleetSettings(state_dir=tmp_path),
            environ={},
        ),
    )


@pytest.fixture
def forget_command_router(ledger: Ledger, fleeted: tuple[Fleet, Admission]) -> Router:
    fleet, admission = fleeted
    handlers = Handlers(fleet=fleet, clock=ManualClock(T0), launching=Launching(admission))
    overview = OverviewCommands(fleet=fleet, specs=COMMANDS, clock=ManualClock(T0), prefix="!")
    acl = Acl([Grant(ADMIN, Role.ADMIN), Grant(OPERATOR, Role.OPERATOR)])
    # Commands other objects handle (the schedule commands) answer from the recorder.
    table = {
        **Calls().table(),
        **handlers.table(),
        **overview.table(),
        **PacingCommands(fleet).table(),
        **ForgetCommand(fleet).table(),
    }
    return Router(
        grammar=Grammar(COMMANDS), acl=acl, handlers=table, audit=ledger.audit, chat=ledger.chat
    )


async def removed_agent(ledger: Ledger, name: str, state: AgentState) -> None:
    """A roster agent in ``state`` that a reload has since dropped."""
    spec = AgentSpec(name=AgentName(name), runtime="stub", backend="subprocess")
    await ledger.agents.upsert_agent(spec, DesiredState.RUNNING, origin="roster")
    await ledger.agents.set_state(name, state, "test")
    await ledger.agents.sync_roster([])


async def reply_to(router: Router, text: str, sender: str = ADMIN) -> str:
    chat = FakeConnector()
    await router.handle(chat, message(text, sender=sender, event_id=None))
    [sent] = chat.sent
    return sent.markdown


async def test_ps_marks_an_agent_removed_from_the_roster(
    forget_command_router: Router, ledger: Ledger
) -> None:
    """`ps` shows a removed agent's state with `not in roster`; an ad hoc agent has no mark."""
    await removed_agent(ledger, "gone", AgentState.RUNNING)
    spec = AgentSpec(name=AgentName("temp"), runtime="stub", backend="subprocess")
    await ledger.agents.upsert_agent(spec, DesiredState.STOPPED)
    text = await reply_to(forget_command_router, "!ps")
    assert "| gone | stub | running, not in roster |" in text
    assert "| temp | stub | pending |" in text


def test_roster_reload_says_which_removed_agents_still_run() -> None:
    """The reload's answer lists the removed agents and, apart, those still running."""
    gone, old = AgentName("gone"), AgentName("old")
    diff = RosterDiff(
        added=(), removed=(gone, old), changed=(), changed_running=(), started=(),
        removed_running=(gone,),
    )  # fmt: skip
    assert render.roster_diff(diff) == (
        "Roster reloaded — removed: gone, old. Removed but still running, until stopped "
        "(never restarted): gone."
    )


async def test_forget_of_a_live_agent_is_refused_in_one_line(
    forget_command_router: Router, ledger: Ledger
) -> None:
    """`forget` of a running or stalled agent is refused with why and what to do, and audited
    as an error; the agent stays in `ps`."""
    for state in (AgentState.RUNNING, AgentState.STALLED):
        await removed_agent(ledger, "gone", state)
        text = await reply_to(forget_command_router, "!forget gone")
        assert text == f"gone is {state.value}: `stop gone` first"
        entry = (await ledger.audit.audit_entries())[0]
        assert (entry.command, entry.outcome) == ("forget", "error")
    assert "| gone |" in await reply_to(forget_command_router, "!ps")


async def test_forget_is_for_admins_only(forget_command_router: Router, ledger: Ledger) -> None:
    """An operator's `forget` is denied; the agent stays."""
    await removed_agent(ledger, "gone", AgentState.EXITED)
    text = await reply_to(forget_command_router, "!forget gone", sender=OPERATOR)
    assert "admin" in text
    assert await ledger.agents.get_agent("gone") is not None


async def test_forget_takes_the_agent_off_ps_and_usage_still_counts_it(
    forget_command_router: Router, ledger: Ledger
) -> None:
    """After `forget`, `ps` no longer lists the agent, `usage` still shows what it used, and
    a second `forget` finds no such agent."""
    await removed_agent(ledger, "gone", AgentState.EXITED)
    await ledger.metering.record_metering([metered("gone", T0 - timedelta(minutes=1))], [])
    text = await reply_to(forget_command_router, "!forget gone")
    assert text.startswith("Forgot **gone**: `ps` no longer lists it.")
    assert "`spawn gone` starts it afresh" in text
    assert (await reply_to(forget_command_router, "!ps")).startswith("No agents yet.")
    assert "| gone |" in await reply_to(forget_command_router, "!usage gone")
    assert "no agent is called 'gone'" in await reply_to(forget_command_router, "!forget gone")

"""Tests for bot.commands.handlers.agents.control with a real Fleet and ledger: `usage` and the
tokens `ps`
shows, driven through the router as an operator's message would be."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from bot.acl import Acl, Grant, Role
from bot.build import Build
from bot.commands.handlers.agents.control import Handlers
from bot.commands.handlers.agents.spawn.launching import Launching
from bot.commands.handlers.overview import OverviewCommands, Standing
from bot.commands.handlers.spend.pacing import PacingCommands
from bot.commands.parsing.grammar import Grammar
from bot.commands.routing.router import Router
from bot.commands.specs import COMMANDS
from connectors.health import LinkHealth
from fleet.ledger import Ledger
from fleet.metering.counting.events import Outcome, Tokens, UsageEvent
from fleet.model import AgentSpec, DesiredState
from fleet.names import AgentName
from fleet.runs.launch.launch_kit import LaunchKit
from fleet.runtimes import default_registry
from fleet.supervisor.admission.admit import Admission
from fleet.supervisor.fleet import Fleet, FleetSettings
from fleet.timing.clock import ManualClock
from tests.fakes.doubles.launches import fleet_and_admission
from tests.fakes.doubles.stores import fleet_stores
from tests.unit.chat_fakes import OPERATOR, T0, VIEWER, Calls, FakeConnector, message

# T0 is 12:00 UTC, 13:00 in Berlin: local midnight is 23:00 UTC the day before.
MIDNIGHT_UTC = T0 - timedelta(hours=13)


@pytest.fixture
def berlin(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The host's timezone is Europe/Berlin for the test."""
    monkeypatch.setenv("TZ", "Europe/Berlin")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


@pytest.fixture
def fleeted(ledger: Ledger, tmp_path: Path, berlin: None) -> tuple[Fleet, Admission]:
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
def handlers_router(ledger: Ledger, fleeted: tuple[Fleet, Admission]) -> Router:
    fleet, admission = fleeted
    handlers = Handlers(fleet=fleet, clock=ManualClock(T0), launching=Launching(admission))
    overview = OverviewCommands(fleet=fleet, specs=COMMANDS, clock=ManualClock(T0), prefix="!")
    acl = Acl([Grant(OPERATOR, Role.OPERATOR), Grant(VIEWER, Role.VIEWER)])
    # Commands other objects handle (the schedule commands) answer from the recorder.
    table = {
        **Calls().table(),
        **handlers.table(),
        **overview.table(),
        **PacingCommands(fleet).table(),
    }
    return Router(
        grammar=Grammar(COMMANDS), acl=acl, handlers=table, audit=ledger.audit, chat=ledger.chat
    )


def used(
    agent: str, minutes_after_midnight: float, tokens: Tokens, **changes: object
) -> UsageEvent:
    fields: dict[str, object] = {
        "at": MIDNIGHT_UTC + timedelta(minutes=minutes_after_midnight),
        "agent": agent,
        "provider": "anthropic",
        "api": "anthropic",
        "requested_model": "claude-sonnet-4",
        "served_model": "claude-sonnet-4",
        "tokens": tokens,
        "stream": True,
        "status": 200,
        "outcome": Outcome.OK,
        "latency_ms": 900.0,
        "ttfb_ms": 150.0,
        "request_id": "req_1",
        "cost_usd": 0.0123,
        "priced": True,
    }
    fields.update(changes)
    return UsageEvent(**fields)  # type: ignore[arg-type]


async def add_agent(ledger: Ledger, name: str) -> None:
    spec = AgentSpec(name=AgentName(name), runtime="stub", backend="subprocess")
    await ledger.agents.upsert_agent(spec, DesiredState.STOPPED)


async def reply_to(router: Router, text: str, sender: str = VIEWER) -> str:
    chat = FakeConnector()
    await router.handle(chat, message(text, sender=sender))
    [sent] = chat.sent
    return sent.markdown


def table_rows(markdown: str) -> list[list[str]]:
    lines = [line for line in markdown.splitlines() if line.startswith("|")]
    return [[cell.strip() for cell in line.strip("|").split("|")] for line in lines[2:]]


async def test_usage_today_counts_from_local_midnight(
    handlers_router: Router, ledger: Ledger
) -> None:
    """`usage` sums every agent's requests since local midnight (Berlin, not UTC)."""
    await ledger.metering.record_metering(
        [
            used("coder-1", -30, Tokens(input=999_999)),  # 22:30 UTC: yesterday in Berlin
            used("coder-1", 30, Tokens(input=1000, output=200, cache_read=5000)),
            used("coder-1", 60, Tokens(input=500, cache_write=300), cost_usd=0.5),
            used("docs", 90, Tokens(output=7), cost_usd=None, priced=False, served_model="x-1"),
        ],
        [],
    )
    text = await reply_to(handlers_router, "!usage")
    assert text.startswith("Token use today (since 2025-03-01 00:00 CET):")
    assert table_rows(text) == [
        ["coder-1", "claude-sonnet-4 (anthropic)", "2", "1,500", "200", "5,000", "300", "7,000",
         "$0.51"],
        ["docs", "x-1 (anthropic)", "1", "0", "7", "0", "0", "7", "—"],
        ["**total**", "", "3", "1,500", "207", "5,000", "300", "7,007", "$0.51"],
    ]  # fmt: skip
    assert text.endswith("Tokens only: no price configured for x-1.")
    [entry] = await ledger.audit.audit_entries()
    assert (entry.command, entry.outcome, entry.sender) == ("usage", "ok", VIEWER)


async def test_usage_of_one_agent_over_a_longer_window(
    handlers_router: Router, ledger: Ledger
) -> None:
    """`usage NAME --window 7d` shows only that agent, back seven days."""
    await ledger.metering.record_metering(
        [
            used("coder-1", -3 * 24 * 60, Tokens(input=40)),
            used("coder-1", -8 * 24 * 60, Tokens(input=1)),
            used("docs", 30, Tokens(input=9)),
        ],
        [],
    )
    text = await reply_to(handlers_router, "!usage coder-1 --window 7d")
    assert text.startswith(
        "Token use in the last 7 days (since 2025-02-22 13:00 CET) by **coder-1**:"
    )
    assert [row[:4] for row in table_rows(text)] == [
        ["coder-1", "claude-sonnet-4 (anthropic)", "1", "40"],
        ["**total**", "", "1", "40"],
    ]


async def test_usage_of_an_unknown_name_says_there_is_no_such_agent(
    handlers_router: Router, ledger: Ledger
) -> None:
    """An unknown NAME with no usage gets a plain answer, audited ok, not an error."""
    text = await reply_to(handlers_router, "!usage nobody")
    assert text == (
        "No agent is called `nobody` and no usage is recorded for that name today. "
        "`ps` lists the agents."
    )
    [entry] = await ledger.audit.audit_entries()
    assert entry.outcome == "ok"


async def test_usage_of_a_known_agent_without_requests(
    handlers_router: Router, ledger: Ledger
) -> None:
    """A known agent that made no requests in the window is named as such."""
    await add_agent(ledger, "coder-1")
    assert await reply_to(handlers_router, "!usage coder-1 --window 5h") == (
        "**coder-1** made no model requests in the last 5 hours (since 2025-03-01 08:00 CET)."
    )


async def test_usage_of_an_agent_that_is_gone_still_shows_its_usage(
    handlers_router: Router, ledger: Ledger
) -> None:
    """Usage outlives agents: a name the ledger no longer knows still has its rows shown."""
    await ledger.metering.record_metering([used("old-1", 10, Tokens(input=3))], [])
    assert table_rows(await reply_to(handlers_router, "!usage old-1"))[0][:4] == [
        "old-1",
        "claude-sonnet-4 (anthropic)",
        "1",
        "3",
    ]


async def test_usage_with_a_bad_window_names_the_allowed_ones(
    handlers_router: Router, ledger: Ledger
) -> None:
    """A window that is not 5h, today, 7d or 30d is a parse error, audited as an error."""
    assert await reply_to(handlers_router, "!usage --window week") == (
        "usage: --window must be one of 5h, today, 7d, 30d, got 'week' "
        "— usage: usage [NAME] [--window WINDOW] [--host H]"
    )
    [entry] = await ledger.audit.audit_entries()
    assert entry.outcome == "error"


async def test_ps_shows_each_agents_tokens_since_local_midnight(
    handlers_router: Router, ledger: Ledger, fleet: Fleet
) -> None:
    """Fleet.ps fills tokens_today (0 without usage) and ps shows it compactly."""
    await add_agent(ledger, "coder-1")
    await add_agent(ledger, "docs")
    await ledger.metering.record_metering(
        [
            used("coder-1", -1, Tokens(input=5_000_000)),  # before local midnight
            used("coder-1", 1, Tokens(input=12_000, output=300)),
            used("ghost", 1, Tokens(input=10)),  # no such agent: not a ps row
        ],
        [],
    )
    assert [(s.name, s.tokens_today) for s in await fleet.ps()] == [
        ("coder-1", 12_300),
        ("docs", 0),
    ]
    text = await reply_to(handlers_router, "!ps")
    assert text.splitlines()[0].endswith(
        "| last activity | tokens today | cost today | egress refused |"
    )
    assert [(row[0], row[-3]) for row in table_rows(text)] == [("coder-1", "12.3k"), ("docs", "0")]


async def test_fleet_status_leaves_tokens_today_unknown(fleet: Fleet, ledger: Ledger) -> None:
    """Only ps looks tokens up; a single agent's status leaves the field None."""
    await add_agent(ledger, "coder-1")
    assert (await fleet.status("coder-1")).tokens_today is None


async def test_ps_says_the_build_enforce_and_each_connectors_link(
    ledger: Ledger, fleet: Fleet
) -> None:
    """With the app's standing, ``ps`` starts with the build, ``enforce: strict`` and the
    connector that is down, and its data has the build, ``enforce`` and every link as
    ``/api/fleet`` has it, the last error redacted."""
    clock = ManualClock(T0)
    up, down = LinkHealth("console", clock), LinkHealth("matrix", clock)
    up.connected()
    down.lost("sync failed: token s3cr3t refused")
    standing = Standing(
        build=Build("0.2.0", "1a2b3c4"),
        enforce="strict",
        links=lambda: [up.report(), down.report()],
        redact=lambda text: text.replace("s3cr3t", "[redacted]"),
    )
    overview = OverviewCommands(
        fleet=fleet, specs=COMMANDS, clock=clock, prefix="!", standing=standing
    )
    handlers_router = Router(
        grammar=Grammar(COMMANDS),
        acl=Acl([Grant(OPERATOR, Role.OPERATOR)]),
        handlers={**Calls().table(), **overview.table()},
        audit=ledger.audit,
        chat=ledger.chat,
    )
    await add_agent(ledger, "coder-1")
    _, reply = await handlers_router.answer(message("!ps"), "shell")
    assert reply.markdown.split("\n\n")[0] == (
        "Fleetwarden 0.2.0 (commit 1a2b3c4); enforce: strict; matrix DOWN"
    )
    assert reply.data is not None
    assert reply.data["build"] == {"version": "0.2.0", "commit": "1a2b3c4"}
    assert reply.data["enforce"] == "strict"
    at = T0.isoformat()
    assert reply.data["connectors"] == [
        {
            "name": "console",
            "up": True,
            "connected": True,
            "logged_in": True,
            "since": at,
            "last_event_at": None,
            "last_error": None,
            "last_error_at": None,
        },
        {
            "name": "matrix",
            "up": False,
            "connected": False,
            "logged_in": False,
            "since": at,
            "last_event_at": None,
            "last_error": "sync failed: token [redacted] refused",
            "last_error_at": at,
        },
    ]
    assert [a["name"] for a in reply.data["agents"]] == ["coder-1"]  # type: ignore[union-attr]


async def test_ps_without_standing_says_only_the_fleet(
    handlers_router: Router, ledger: Ledger
) -> None:
    """Without the app's standing (a fleet built alone), ``ps`` starts with its table and
    its data has no build, ``enforce`` or connectors."""
    await add_agent(ledger, "coder-1")
    _, reply = await handlers_router.answer(message("!ps", sender=OPERATOR), "shell")
    assert reply.markdown.startswith("|")
    assert reply.data is not None and not {"build", "enforce", "connectors"} & set(reply.data)

"""Tests for the `pace` and `report` commands and for images in replies, through the router."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.acl import Acl, Grant, Role
from bot.commands.handlers.agents.control import Handlers
from bot.commands.handlers.agents.spawn.launching import Launching
from bot.commands.handlers.spend.changes import ChangeCommands
from bot.commands.handlers.spend.pacing import PacingCommands
from bot.commands.parsing.grammar import Grammar
from bot.commands.routing.request import Reply, Request
from bot.commands.routing.router import Router
from bot.commands.routing.threads import thread_note
from bot.commands.specs import COMMANDS, PACE, REPORT
from bot.render.spend.report import NO_BUDGETS, render_text
from connectors.base import EventId, OutboundMessage, RoomId, ThreadId
from fleet.budgets.model import Source
from fleet.ledger import Ledger
from fleet.runs.launch.launch_kit import LaunchKit
from fleet.runtimes import default_registry
from fleet.supervisor.fleet import Fleet, FleetSettings
from fleet.timing.clock import ManualClock
from tests.fakes.doubles.budget_book import StaticBook
from tests.fakes.doubles.launches import an_admission, real_fleet
from tests.fakes.doubles.stores import fleet_stores
from tests.unit.bot.render.test_report import BERLIN, NOW, PNG_SIGNATURE, backend, coder
from tests.unit.chat_fakes import (
    OPERATOR,
    T0,
    VIEWER,
    Calls,
    FakeConnector,
    ThreadedConnector,
    message,
)

ROOM = "!ops:example.org"


def handlers(
    ledger: Ledger,
    tmp_path: Path,
    book: StaticBook | None,
    reports: Path | None,
) -> Handlers:
    fleet = fleet_of(ledger, tmp_path)
    admission = an_admission(fleet, slots=None, budgets=book)
    return Handlers(fleet=fleet, clock=ManualClock(T0), launching=Launching(admission))


def pacing(
    ledger: Ledger, tmp_path: Path, book: StaticBook | None, reports: Path | None
) -> PacingCommands:
    return PacingCommands(fleet_of(ledger, tmp_path), book, reports)


def fleet_of(ledger: Ledger, tmp_path: Path) -> Fleet:
    return real_fleet(
        stores=fleet_stores(ledger),
        clock=ManualClock(T0),
        kit=LaunchKit(
            runtimes=default_registry(),
            backends={},
            settings=FleetSettings(state_dir=tmp_path),
            environ={},
        ),
    )


def request(text: str, role: Role = Role.VIEWER) -> Request:
    command = Grammar(COMMANDS).parse(text)
    assert command is not None
    return Request(message(text, sender=VIEWER), role, command)


@pytest.fixture
def book() -> StaticBook:
    return StaticBook([coder(), backend()], BERLIN, NOW)


async def test_pace_is_the_report_table(ledger: Ledger, tmp_path: Path, book: StaticBook) -> None:
    """`pace` answers with the pacing table at the book's time, in its zone; no chart."""
    table = pacing(ledger, tmp_path, book, tmp_path / "reports").table()
    assert await table["pace"](request("!pace")) == render_text([coder(), backend()], NOW, BERLIN)
    assert not (tmp_path / "reports").exists()


async def test_report_adds_a_chart_kept_in_the_reports_dir(
    ledger: Ledger, tmp_path: Path, book: StaticBook
) -> None:
    """`report` answers with the same table and the chart's PNG, written to reports_dir."""
    table = pacing(ledger, tmp_path, book, tmp_path / "reports").table()
    reply = await table["report"](request("!report"))
    assert isinstance(reply, Reply)
    assert reply.markdown == render_text([coder(), backend()], NOW, BERLIN)
    (chart,) = reply.images
    assert chart.parent == tmp_path / "reports"
    assert chart.name == "pacing-20261122-100000.png"
    assert chart.read_bytes().startswith(PNG_SIGNATURE)


async def test_without_budgets_both_say_so(ledger: Ledger, tmp_path: Path) -> None:
    """With no budget book, `pace` and `report` say no budgets are configured."""
    table = pacing(ledger, tmp_path, None, tmp_path / "reports").table()
    assert await table["pace"](request("!pace")) == NO_BUDGETS
    assert await table["report"](request("!report")) == Reply(NO_BUDGETS)


async def test_a_viewer_gets_the_report_with_its_image(
    ledger: Ledger, tmp_path: Path, book: StaticBook, chat: FakeConnector
) -> None:
    """Read-only: a viewer's `report` is answered in the room with the chart attached."""
    table = pacing(ledger, tmp_path, book, tmp_path / "reports").table()
    acl = Acl([Grant(OPERATOR, Role.OPERATOR), Grant(VIEWER, Role.VIEWER)])
    # Only the report commands: the test stands whatever other commands are being added.
    grammar = Grammar((PACE, REPORT))
    table = {**table, **ChangeCommands(ledger.changes, ManualClock(T0)).table()}
    router = Router(grammar=grammar, acl=acl, handlers=table, audit=ledger.audit, chat=ledger.chat)
    await router.handle(chat, message("!report", sender=VIEWER, room=ROOM))
    (sent,) = chat.sent
    assert sent.markdown.startswith("Pacing at 2026-11-22 11:00 CET:")
    (chart,) = sent.images
    assert chart.parent == tmp_path / "reports"


async def test_pace_and_report_say_how_sure_each_reset_is(
    ledger: Ledger, tmp_path: Path, chat: FakeConnector
) -> None:
    """Through the router: a window of our own is the config's, the provider's reset is the
    provider's; the same words in `pace` and `report`."""
    book = StaticBook([coder(), backend(source=Source.PROVIDER)], BERLIN, NOW)
    table = pacing(ledger, tmp_path, book, tmp_path / "reports").table()
    table = {**table, **ChangeCommands(ledger.changes, ManualClock(T0)).table()}
    acl = Acl([Grant(VIEWER, Role.VIEWER)])
    router = Router(
        grammar=Grammar((PACE, REPORT)),
        acl=acl,
        handlers=table,
        audit=ledger.audit,
        chat=ledger.chat,
    )
    await router.handle(chat, message("!pace", sender=VIEWER, room=ROOM, event_id="$p"))
    await router.handle(chat, message("!report", sender=VIEWER, room=ROOM, event_id="$r"))
    for sent in chat.sent:
        assert "| 10h, resets 17:00 (set by you) |" in sent.markdown
        assert "| 1w, resets Nov 27 10:00 (provider) |" in sent.markdown
    assert len(chat.sent) == 2


async def test_reply_images_reach_the_connector(
    ledger: Ledger, calls: Calls, chat: FakeConnector, tmp_path: Path
) -> None:
    """A handler's images are passed on with its text, in reply to the message."""
    picture = tmp_path / "p.png"

    async def ps(req: Request) -> Reply:
        return Reply("see the chart", images=(picture,))

    calls.behaviour["ps"] = ps  # type: ignore[assignment]
    acl = Acl([Grant(OPERATOR, Role.OPERATOR)])
    router = Router(
        grammar=Grammar(COMMANDS),
        acl=acl,
        handlers=calls.table(),
        audit=ledger.audit,
        chat=ledger.chat,
    )
    await router.handle(chat, message("!ps", room=ROOM, event_id="$ask"))
    answer = OutboundMessage(
        RoomId(ROOM), "see the chart", in_reply_to=EventId("$ask"), images=(picture,)
    )
    assert chat.sent == [answer]


async def test_images_of_a_reply_that_opens_a_thread_follow_in_it(
    ledger: Ledger, calls: Calls, tmp_path: Path
) -> None:
    """A thread root is text only; the reply's images are posted into the new thread."""
    picture = tmp_path / "p.png"

    async def spawn(req: Request) -> Reply:
        return Reply("started", topic=req.arg("NAME"), images=(picture,), new_thread=True)

    calls.behaviour["spawn"] = spawn  # type: ignore[assignment]
    threaded = ThreadedConnector()
    acl = Acl([Grant(OPERATOR, Role.OPERATOR)])
    router = Router(
        grammar=Grammar(COMMANDS),
        acl=acl,
        handlers=calls.table(),
        audit=ledger.audit,
        chat=ledger.chat,
    )
    await router.handle(threaded, message("!spawn demo", room=ROOM, event_id="$1"))
    assert threaded.roots == [(ROOM, "demo", "started" + thread_note("demo"))]
    follow = OutboundMessage(RoomId(ROOM), "", thread_id=ThreadId("$root-1"), images=(picture,))
    assert threaded.sent == [follow]

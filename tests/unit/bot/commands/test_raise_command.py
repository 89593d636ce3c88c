"""The ``raise budget`` command through the real router and a real ledger: an operator
answers a budget's open ask by at most its offer; any other raise of a budget is refused
as needing the admin role, which may make it."""

from __future__ import annotations

from bot.acl import Acl, Grant, Role
from bot.commands.handlers.spend.raising import RaiseCommand
from bot.commands.parsing.grammar import Grammar
from bot.commands.routing.router import Router
from bot.commands.specs import COMMANDS
from fleet.approvals.service import Approvals
from fleet.approvals.spend import SpendAsks
from fleet.budgets.runs.caps import RunCaps
from fleet.ledger import Ledger
from fleet.timing.clock import ManualClock
from tests.fakes.doubles.fleet import FakeFleet
from tests.unit.chat_fakes import OPERATOR, Calls, FakeConnector, message
from tests.unit.fleet.approvals.test_budget_asks import Book

ADMIN = "@ada:example.org"


async def test_an_operator_raises_a_budget_only_within_its_open_asks_offer(
    ledger: Ledger, clock: ManualClock, chat: FakeConnector
) -> None:
    """Before any ask, and past the $25.00 offered, the operator is refused with who may;
    `raise budget global` (the offer) answers the ask; an admin raises by any amount."""
    fleet, book = FakeFleet(), Book()
    approvals = Approvals(ledger.approvals, clock)
    stores = (ledger.spend_asks, ledger.agents, ledger.runs)
    asks = SpendAsks(approvals, *stores, RunCaps(), fleet)
    asks.ask_for_budgets(book)
    await asks.start()
    router = Router(
        grammar=Grammar(COMMANDS),
        acl=Acl([Grant(ADMIN, Role.ADMIN), Grant(OPERATOR, Role.OPERATOR)]),
        handlers={**Calls().table(), **RaiseCommand(asks).table()},
        audit=ledger.audit,
        chat=ledger.chat,
    )
    await router.handle(chat, message("!raise budget global +$5", sender=OPERATOR, event_id="$r1"))
    assert "global has no open ask" in chat.sent[-1].markdown
    assert "needs the admin role" in chat.sent[-1].markdown
    assert await asks.ask_at_limit("global", ("coder",))
    await router.handle(chat, message("!raise budget global +$30", sender=OPERATOR, event_id="$r3"))
    assert "its ask offers $25.00" in chat.sent[-1].markdown
    assert book.set_by == []
    await router.handle(chat, message("!raise budget global", sender=OPERATOR, event_id="$r5"))
    assert "Raised global's limit by $25.00 to $75.00" in chat.sent[-1].markdown
    assert await approvals.pending() == []  # the ask answered by the raise
    await router.handle(chat, message("!raise budget global +$30", sender=ADMIN, event_id="$r8"))
    assert "Raised global's limit by $30.00 to $105.00" in chat.sent[-1].markdown
    [(_, by_operator), (_, by_admin)] = book.set_by
    assert by_operator.startswith(OPERATOR) and by_admin.startswith(ADMIN)

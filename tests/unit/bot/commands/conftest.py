"""The command tests' shared fixtures: the fleet of the module's admission, and a router over a
ledger with an operator and a viewer."""

from __future__ import annotations

import pytest

from bot.acl import Acl, Grant, Role
from bot.commands.parsing.grammar import Grammar
from bot.commands.routing.router import Router
from bot.commands.specs import COMMANDS
from fleet.ledger import Ledger
from fleet.supervisor.admission.admit import Admission
from fleet.supervisor.fleet import Fleet
from tests.unit.chat_fakes import OPERATOR, VIEWER, Calls


@pytest.fixture
def fleet(fleeted: tuple[Fleet, Admission]) -> Fleet:
    return fleeted[0]


@pytest.fixture
def router(ledger: Ledger, calls: Calls) -> Router:
    acl = Acl([Grant(OPERATOR, Role.OPERATOR), Grant(VIEWER, Role.VIEWER)])
    return Router(
        grammar=Grammar(COMMANDS),
        acl=acl,
        handlers=calls.table(),
        audit=ledger.audit,
        chat=ledger.chat,
    )

"""The command registry: every family of command handlers, checked at import to handle
exactly the command table — each command by one family, with the table's own spec.

A command in the table that no family binds, a binding of a spec the table does not have,
or one command bound by two families is a ``ValueError`` when this module is imported.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from types import MappingProxyType

from bot.commands.family import Family
from bot.commands.handlers.agents.control import Handlers
from bot.commands.handlers.agents.forget import ForgetCommand
from bot.commands.handlers.agents.levers import Levers
from bot.commands.handlers.agents.messages import MessageCommands
from bot.commands.handlers.agents.resume import LimitCommands
from bot.commands.handlers.agents.runs import RunCommands
from bot.commands.handlers.approvals.desk import ApprovalCommands
from bot.commands.handlers.dashboard import DashboardCommands
from bot.commands.handlers.launches.queue import QueueCommands
from bot.commands.handlers.launches.schedules import ScheduleCommands
from bot.commands.handlers.overview import OverviewCommands
from bot.commands.handlers.places.egress import EgressCommands
from bot.commands.handlers.places.forge import ForgeCommands
from bot.commands.handlers.places.hosts import HostCommands
from bot.commands.handlers.places.repos import RepoCommands
from bot.commands.handlers.spend.accounts import AccountCommands
from bot.commands.handlers.spend.budgets import BudgetHandlers
from bot.commands.handlers.spend.changes import ChangeCommands
from bot.commands.handlers.spend.pacing import PacingCommands
from bot.commands.handlers.spend.raising import RaiseCommand
from bot.commands.handlers.verify import VerifyCommand
from bot.commands.handlers.work.board import TaskBoard
from bot.commands.handlers.work.missions import MissionCommands
from bot.commands.handlers.work.tasks import TaskCommands
from bot.commands.parsing.grammar import CommandSpec
from bot.commands.routing.request import Handler
from bot.commands.specs import COMMANDS

FAMILIES: tuple[type[Family], ...] = (
    OverviewCommands,
    Handlers,
    PacingCommands,
    ChangeCommands,
    BudgetHandlers,
    AccountCommands,
    Levers,
    LimitCommands,
    RaiseCommand,
    ApprovalCommands,
    RunCommands,
    MessageCommands,
    RepoCommands,
    ForgeCommands,
    ScheduleCommands,
    ForgetCommand,
    QueueCommands,
    EgressCommands,
    HostCommands,
    DashboardCommands,
    VerifyCommand,
    TaskCommands,
    TaskBoard,
    MissionCommands,
)


def check(
    table: Sequence[CommandSpec], families: Iterable[type[Family]]
) -> dict[str, type[Family]]:
    """Full command name → the family that handles it. Raises ``ValueError`` unless the
    families bind every command of ``table`` exactly once, each to the table's own spec."""
    specs = dict(_named(table))
    owners: dict[str, type[Family]] = {}
    for family in families:
        for name, binding in family.bindings.items():
            if name in owners:
                raise ValueError(
                    f"command {name!r} is bound twice: by {owners[name].__qualname__} and "
                    f"by {family.__qualname__}"
                )
            if specs.get(name) is not binding.spec:
                raise ValueError(
                    f"{family.__qualname__}.{binding.method} handles {name!r}, which is not "
                    "that command of the command table"
                )
            owners[name] = family
    missing = [name for name in specs if name not in owners]
    if missing:
        raise ValueError(f"commands without a handler: {', '.join(missing)}")
    return {name: owners[name] for name in specs}


def handlers(families: Sequence[Family]) -> dict[str, Handler]:
    """The router's table, command name → handler, from one instance of each family of
    :data:`FAMILIES`."""
    given = [type(family) for family in families]
    if len(given) != len(FAMILIES) or set(given) != set(FAMILIES):
        raise ValueError(
            "want one instance of each command family, got: "
            + ", ".join(f.__qualname__ for f in given)
        )
    table: dict[str, Handler] = {}
    for family in families:
        table.update(family.table())
    return table


def _named(specs: Iterable[CommandSpec], parent: str = "") -> Iterator[tuple[str, CommandSpec]]:
    """Each spec of the tree with its full name (``"roster reload"``), as written."""
    for spec in specs:
        name = f"{parent} {spec.name}" if parent else spec.name
        yield name, spec
        yield from _named(spec.subcommands, name)


HANDLED_BY: Mapping[str, type[Family]] = MappingProxyType(check(COMMANDS, FAMILIES))
"""Every command's full name → the family that handles it."""

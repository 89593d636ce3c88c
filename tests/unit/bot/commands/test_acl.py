"""Tests for bot.acl: who has which role, and which commands each role may run."""

from __future__ import annotations

import pytest

from bot.acl import Acl, Grant, Role
from bot.commands.handlers.agents.roster_specs import ROSTER_ADD, ROSTER_REMOVE, ROSTER_SET
from bot.commands.handlers.agents.specs import (
    FORGET,
    FREEZE,
    LOGS,
    MSGS,
    RESTART,
    RESUME,
    RUNS,
    STOP,
)
from bot.commands.handlers.approvals.specs import (
    ANSWER,
    APPROVE,
    DENY,
    INTERRUPT,
    PENDING,
    PERMISSIONS,
)
from bot.commands.handlers.launches.specs import (
    CANCEL,
    QUEUE,
    SCHEDULE,
    SCHEDULE_ADD,
    SCHEDULE_LIST,
    SCHEDULE_REMOVE,
)
from bot.commands.handlers.places.repo_specs import BRANCHES, DIFF, DISCARD, MERGE, PUSH
from bot.commands.handlers.places.specs import (
    EGRESS,
    EGRESS_BLOCK,
    EGRESS_UNBLOCK,
    FORGE,
    HOSTS,
    PR,
)
from bot.commands.handlers.specs import DASHBOARD, DASHBOARD_REVOKE, VERIFY
from bot.commands.handlers.spend.specs import (
    ACCOUNTS,
    BUDGET,
    BUDGET_ALLOW_BURST,
    BUDGET_END_BURST,
    BUDGET_REMOVE,
    BUDGET_SET,
    BUDGET_UNSET,
    RAISE,
)
from bot.commands.handlers.work.specs import (
    MISSION,
    MISSION_ADD,
    MISSION_APPROVE,
    MISSION_DENY,
    MISSION_NEW,
    MISSIONS,
    TASK,
    TASK_CANCEL,
    TASK_DONE,
    TASK_NEW,
    TASK_START,
    TASKS,
)
from bot.commands.parsing.grammar import CommandSpec
from bot.commands.specs import (
    COMMANDS,
    HELP,
    PACE,
    PS,
    REPORT,
    REPORT_CHANGES,
    ROSTER,
    ROSTER_RELOAD,
    SEND,
    SPAWN,
    USAGE,
    WATCH,
    WHOAMI,
)

READ_ONLY = (
    *(HELP, PS, LOGS, RUNS, WATCH, USAGE, PACE, REPORT, BUDGET, ROSTER, WHOAMI),
    *(SCHEDULE, SCHEDULE_LIST, ACCOUNTS, QUEUE, EGRESS, HOSTS, FORGE),
    *(APPROVE, DENY, ANSWER, PENDING),  # who may answer is decided per request
    *(DASHBOARD, DASHBOARD_REVOKE),  # a sign-in link, or an end to one's own sessions
    *(DIFF, BRANCHES),
    REPORT_CHANGES,
    *(TASK, TASKS, MISSION, MISSIONS),
    MSGS,
)
CONTROL = (
    *(TASK_NEW, TASK_START, TASK_DONE, TASK_CANCEL, MISSION_NEW, MISSION_ADD),
    *(MISSION_APPROVE, MISSION_DENY),
    *(SPAWN, STOP, RESTART, RESUME, SEND, ROSTER_RELOAD, CANCEL, EGRESS_BLOCK, EGRESS_UNBLOCK),
    RAISE,
    *(INTERRUPT, PERMISSIONS),
    *(MERGE, PUSH, DISCARD, PR),  # merging into a protected branch: an admin, checked per request
)
ADMIN_ONLY = (
    SCHEDULE_ADD,
    SCHEDULE_REMOVE,
    BUDGET_SET,
    BUDGET_UNSET,
    BUDGET_REMOVE,
    BUDGET_ALLOW_BURST,
    BUDGET_END_BURST,
    FORGET,
    FREEZE,
    VERIFY,
    ROSTER_ADD,
    ROSTER_SET,
    ROSTER_REMOVE,
)
_FULL_NAMES = {id(sub): f"{spec.name} {sub.name}" for spec in COMMANDS for sub in spec.subcommands}


def full_name(spec: CommandSpec) -> str:
    """A spec's name as typed: subcommands with their parent's name first."""
    return _FULL_NAMES.get(id(spec), spec.name)


def ids(spec: CommandSpec) -> str:
    return spec.name


def test_role_of_a_global_grant_applies_on_every_connector() -> None:
    """A grant without a connector gives the user that role on any connector."""
    acl = Acl([Grant("@ann:example.org", Role.OPERATOR)])
    assert acl.role_of("matrix", "@ann:example.org") is Role.OPERATOR
    assert acl.role_of("discord", "@ann:example.org") is Role.OPERATOR


def test_role_of_a_connector_grant_applies_only_there() -> None:
    """A grant for one connector gives no role to the same id on another connector."""
    acl = Acl([Grant("bob", Role.ADMIN, connector="console")])
    assert acl.role_of("console", "bob") is Role.ADMIN
    assert acl.role_of("matrix", "bob") is None


@pytest.mark.parametrize("order", ["global first", "specific first"])
def test_connector_specific_grant_beats_a_global_one(order: str) -> None:
    """A connector-specific entry wins over a global one, whatever the order they are listed in."""
    grants = [Grant("cat", Role.ADMIN), Grant("cat", Role.VIEWER, connector="matrix")]
    if order == "specific first":
        grants.reverse()
    acl = Acl(grants)
    assert acl.role_of("matrix", "cat") is Role.VIEWER
    assert acl.role_of("discord", "cat") is Role.ADMIN


def test_stranger_has_no_role() -> None:
    """Anyone not listed is a stranger: role_of returns None."""
    acl = Acl([Grant("ann", Role.ADMIN)])
    assert acl.role_of("matrix", "mallory") is None


def test_user_ids_are_matched_exactly() -> None:
    """User ids are compared as given: a differently cased id is a stranger."""
    acl = Acl([Grant("ann", Role.ADMIN)])
    assert acl.role_of("matrix", "Ann") is None


def test_the_read_only_and_control_split_covers_every_command() -> None:
    """The command table is exactly the read-only plus the control commands used below."""
    every = {spec.name for spec in COMMANDS} | {
        f"{spec.name} {sub.name}" for spec in COMMANDS for sub in spec.subcommands
    }
    split = {full_name(spec) for spec in (*READ_ONLY, *CONTROL, *ADMIN_ONLY)}
    assert every == split
    assert all(not spec.control and not spec.admin_only for spec in READ_ONLY)
    assert all(spec.control and not spec.admin_only for spec in CONTROL)
    assert all(spec.admin_only for spec in ADMIN_ONLY)


@pytest.mark.parametrize("spec", READ_ONLY, ids=ids)
def test_viewer_may_run_read_only_commands(spec: CommandSpec) -> None:
    """A viewer may run every command that changes nothing."""
    assert Acl.allows(Role.VIEWER, spec)


@pytest.mark.parametrize("spec", CONTROL, ids=ids)
def test_viewer_may_not_run_control_commands(spec: CommandSpec) -> None:
    """A viewer may not run a command that changes the fleet."""
    assert not Acl.allows(Role.VIEWER, spec)


@pytest.mark.parametrize("role", [Role.OPERATOR, Role.ADMIN])
@pytest.mark.parametrize("spec", READ_ONLY + CONTROL, ids=ids)
def test_operators_and_admins_may_run_every_command(role: Role, spec: CommandSpec) -> None:
    """Operators and admins may run every command that is not admin-only, control ones
    included."""
    assert Acl.allows(role, spec)


@pytest.mark.parametrize("spec", ADMIN_ONLY, ids=full_name)
def test_only_admins_may_run_admin_only_commands(spec: CommandSpec) -> None:
    """An admin-only command (schedule add, schedule remove) is refused to operators and
    viewers, allowed to admins."""
    assert Acl.allows(Role.ADMIN, spec)
    assert not Acl.allows(Role.OPERATOR, spec)
    assert not Acl.allows(Role.VIEWER, spec)

"""The permission policy's configuration: `permissions`, `allow`, `deny`,
`approval_timeout` and `max_open_approvals` per agent and in `defaults`, the mode that
follows the sandbox, the checks with their messages, ad hoc agents, and `spawn
--permissions` on the real supervisor."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bot.commands.errors import CommandError
from bot.commands.parsing.grammar import Grammar
from bot.commands.specs import COMMANDS
from fleet.backends.process import SubprocessBackend
from fleet.errors import LaunchFailed
from fleet.ledger import Ledger
from fleet.ledger.records.rows import AgentRecord
from fleet.model import AgentSpec, AgentState, DesiredState, PermissionMode
from fleet.names import AgentName
from fleet.permissions.config import PolicyDefaults, default_mode, unsandboxed_full
from fleet.runs.launch.launch_kit import LaunchKit
from fleet.runtimes import default_registry
from fleet.supervisor.admission.request import LaunchRequest
from fleet.supervisor.fleet import Fleet, FleetSettings
from fleet.timing.clock import SystemClock
from tests.fakes.doubles.launches import real_fleet
from tests.fakes.doubles.stores import fleet_stores
from tests.unit.bot.config.test_config import only_problem, parse


def specs(text: str) -> list[AgentSpec]:
    config = parse(text)
    return [entry.to_spec(config.defaults) for entry in config.agents]


def test_the_mode_follows_the_sandbox_unless_set() -> None:
    """Nothing set: `edits` with a sandbox, the safer `ask` without; `defaults.permissions`
    then the entry's own win over that."""
    boxed, loose, told = specs(
        "agents:\n  - name: a\n  - name: b\n    sandbox: none\n"
        "  - name: c\n    permissions: read-only\n"
    )
    assert (boxed.permissions, loose.permissions) == (PermissionMode.EDITS, PermissionMode.ASK)
    assert told.permissions is PermissionMode.READ_ONLY
    a, b = specs(
        "defaults:\n  permissions: ask\nagents:\n  - name: a\n  - name: b\n    permissions: full\n"
    )
    assert (a.permissions, b.permissions) == (PermissionMode.ASK, PermissionMode.FULL)
    assert default_mode("none") is PermissionMode.ASK


def test_rules_add_to_the_defaults_and_durations_read_as_seconds() -> None:
    """`allow`/`deny` follow the defaults' own, once each; `30m`-style timeouts and plain
    seconds both work; unset values come from `defaults`."""
    a, b = specs(
        "defaults:\n  allow: ['Bash(git *)']\n  deny: ['Bash(rm *)']\n  approval_timeout: 2h\n"
        "  max_open_approvals: 3\nagents:\n"
        "  - name: a\n    allow: ['Bash(npm test)', 'Bash(git *)']\n    deny: [WebFetch]\n"
        "    approval_timeout: 1d12h\n    max_open_approvals: 9\n"
        "  - name: b\n    approval_timeout: 90\n"
    )
    assert a.allow == ("Bash(git *)", "Bash(npm test)")
    assert a.deny == ("Bash(rm *)", "WebFetch")
    assert (a.approval_timeout, a.max_open_approvals) == (36 * 3600.0, 9)
    assert (b.allow, b.deny) == (("Bash(git *)",), ("Bash(rm *)",))
    assert (b.approval_timeout, b.max_open_approvals) == (90.0, 3)
    plain = specs("agents:\n  - name: a\n")[0]
    assert (plain.approval_timeout, plain.max_open_approvals) == (1800.0, 5)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "agents:\n  - name: a\n    permissions: sometimes\n",
            "unknown permissions 'sometimes'; allowed: ask, edits, full, read-only",
        ),
        (
            "agents:\n  - name: a\n    allow: ['Bash(git *']\n",
            "'Bash(git *' is not a rule: write a tool's name",
        ),
        ("agents:\n  - name: a\n    deny: ['']\n", "'' is not a rule"),
        ("agents:\n  - name: a\n    approval_timeout: soon\n", "'soon' is not a duration"),
        ("agents:\n  - name: a\n    approval_timeout: 0m\n", "'0m' is not a duration"),
        ("agents:\n  - name: a\n    approval_timeout: -5\n", "greater than 0"),
        ("agents:\n  - name: a\n    max_open_approvals: 0\n", "at least 1"),
        (
            "agents:\n  - name: a\n    sandbox: none\n    permissions: full\n",
            "agent 'a' has permissions `full` but no sandbox (`sandbox: none`)",
        ),
        (
            "defaults:\n  sandbox: none\nagents:\n  - name: a\n    permissions: full\n",
            "Give it `sandbox: bwrap`, or a mode that asks",
        ),
        (
            "defaults:\n  sandbox: none\n  permissions: full\n",
            "every agent by default has permissions `full` but no sandbox",
        ),
    ],
)
def test_bad_policy_is_refused_saying_what_and_how_to_fix(text: str, expected: str) -> None:
    """Each mistake is one problem whose message names it and the way out."""
    problem = only_problem(text)
    assert expected in problem.message, problem.message


def test_full_with_a_sandbox_is_accepted() -> None:
    """`full` is fine where bubblewrap confines the agent."""
    assert specs("agents:\n  - name: a\n    permissions: full\n")[0].permissions == "full"
    assert unsandboxed_full("a", "bwrap", "full") is None


def test_ad_hoc_agents_take_the_defaults_policy() -> None:
    """An agent no roster names gets `defaults`' mode and rules, or the sandbox's mode."""
    policy = PolicyDefaults(PermissionMode.READ_ONLY, ("Edit",), (), 60.0, 2)
    made = FleetSettings(state_dir=Path("/x"), policy=policy).ad_hoc(AgentName("z"))
    assert (made.permissions, made.allow, made.approval_timeout) == ("read-only", ("Edit",), 60)
    loose = FleetSettings(state_dir=Path("/x"), confinement=("none", "open", ()))
    assert loose.ad_hoc(AgentName("z")).permissions is PermissionMode.ASK


def test_spawn_permissions_flag_takes_only_the_modes() -> None:
    """`--permissions` parses to a mode; another word is refused with the list."""
    grammar = Grammar(COMMANDS)
    command = grammar.parse("spawn a --permissions READ-ONLY", addressed=True)
    assert command is not None and command.flags["permissions"] == "read-only"
    with pytest.raises(CommandError, match="must be one of ask, edits, full, read-only"):
        grammar.parse("spawn a --permissions yolo", addressed=True)


@pytest.fixture
async def loose_fleet(tmp_path: Path) -> AsyncIterator[Fleet]:
    """A started supervisor whose ad hoc agents run without a sandbox (the stub agent)."""
    ledger = await Ledger.open(tmp_path / "ledger.db", SystemClock())
    settings = FleetSettings(state_dir=tmp_path, confinement=("none", "open", ()))
    fleet = real_fleet(
        stores=fleet_stores(ledger),
        clock=SystemClock(),
        kit=LaunchKit(
            runtimes=default_registry(),
            backends={"subprocess": SubprocessBackend()},
            settings=settings,
            environ=os.environ,
        ),
    )
    await fleet.start()
    try:
        yield fleet
    finally:
        for status in await fleet.ps():
            if status.state.is_live:
                await fleet.stop_agent(status.name, force=True)
        await fleet.stop()
        await ledger.close()


async def test_spawn_full_is_refused_for_an_unsandboxed_agent(loose_fleet: Fleet) -> None:
    """`spawn --permissions full` of an agent without a sandbox starts nothing and says
    why; another mode is kept on the agent's spec."""
    with pytest.raises(LaunchFailed, match=r"loose has permissions `full` but no sandbox"):
        await loose_fleet.spawn(LaunchRequest("loose", permissions=PermissionMode.FULL))
    assert not await loose_fleet.knows("loose")
    await loose_fleet.spawn(
        LaunchRequest("loose", permissions=PermissionMode.READ_ONLY, collect=False)
    )
    assert (await loose_fleet.spec("loose")).permissions is PermissionMode.READ_ONLY


def test_an_agent_stored_before_modes_gets_its_sandboxs_default() -> None:
    """A ledger row without a mode reads as `ask` without a sandbox, `edits` with one."""
    now = datetime(2026, 1, 1, tzinfo=UTC)
    row = AgentRecord(
        AgentName("old"), "stub", "subprocess", None, None, None, {}, (),
        DesiredState.RUNNING, AgentState.EXITED, "", now, now, now,
        {"sandbox": "none"}, 0, None, None,
    )  # fmt: skip
    assert row.spec.permissions is PermissionMode.ASK
    assert replace(row, extra={}).spec.permissions is PermissionMode.EDITS

"""The sandbox in the config file and in chat: `sandbox`, `egress` and `egress_allow` per
agent and in `defaults`, the check-config warning, and the `egress block|unblock` commands."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from bot.acl import Role
from bot.cli.check.summary import summary as _summary
from bot.commands.errors import CommandError
from bot.commands.handlers.places.egress import EgressCommands
from bot.commands.parsing.grammar import Grammar
from bot.commands.routing.request import Request
from bot.commands.specs import COMMANDS
from fleet.destinations import DEFAULT_ALLOW
from fleet.model import AgentSpec
from fleet.names import AgentName
from fleet.sandbox.schema import resolution_problems
from fleet.sandbox.service import Sandboxes, SandboxSettings
from tests.fakes.doubles.fleet import FakeFleet
from tests.fakes.doubles.job_context import RecordingBoard
from tests.unit.bot.config.test_config import only_problem, parse
from tests.unit.chat_fakes import OPERATOR, message


def test_agents_are_sandboxed_with_locked_egress_unless_told_otherwise() -> None:
    """Defaults: bwrap, locked, the default allow-list; `defaults` changes every entry that
    says nothing."""
    config = parse(
        "defaults:\n  egress: locked\n  egress_allow: [GitHub.com.]\n"
        "agents:\n  - name: a\n  - name: b\n    egress: open\n    egress_allow: []\n"
        "  - name: c\n    sandbox: none\n    egress: open\n    egress_allow: []\n"
    )
    a, b, c = (entry.to_spec(config.defaults) for entry in config.agents)
    assert (a.sandbox, a.egress, a.egress_allow) == ("bwrap", "locked", ("github.com",))
    assert (b.sandbox, b.egress, b.egress_allow) == ("bwrap", "open", ())
    assert c.sandbox == "none"
    plain = parse("agents:\n  - name: a\n")
    spec = plain.agents[0].to_spec(plain.defaults)
    assert (spec.sandbox, spec.egress, spec.egress_allow) == ("bwrap", "locked", DEFAULT_ALLOW)


@pytest.mark.parametrize(
    ("text", "message_part"),
    [
        ("agents:\n  - name: a\n    sandbox: docker\n", "allowed: bwrap, none"),
        ("agents:\n  - name: a\n    egress: closed\n", "allowed: open, locked"),
        (
            "agents:\n  - name: a\n    egress: locked\n    egress_allow: ['https://x.org']\n",
            "is not a host name",
        ),
        ("agents:\n  - name: a\n    sandbox: none\n    egress: locked\n", "needs sandbox: bwrap"),
        ("agents:\n  - name: a\n    egress: open\n    egress_allow: [x.org]\n", "needs egress"),
        ("agents:\n  - name: a\n    egress_allow: [localhost]\n", "loopback"),
        ("agents:\n  - name: a\n    egress_allow: [127.0.0.1]\n", "IP address"),
        ("agents:\n  - name: a\n    egress_allow: ['0x7f000001']\n", "IP address"),
        ("defaults:\n  egress_allow: [intranet]\n", "no domain"),
    ],
)
def test_sandbox_settings_that_cannot_work_are_refused(text: str, message_part: str) -> None:
    """A bad mode, host or combination is one problem that says what is allowed."""
    assert message_part in only_problem(text).message


def test_check_config_warns_about_each_agent_without_a_sandbox() -> None:
    """The summary names every agent with sandbox: none, and only those."""
    config = parse(
        "agents:\n  - name: safe\n  - name: risky\n    sandbox: none\n    egress: open\n"
        "  - name: wide\n    egress: open\n    egress_allow: []\n"
    )
    lines = [line for line in _summary(config, []).splitlines() if line.startswith("warning:")]
    assert len(lines) == 2 and "'risky'" in lines[0] and "sandbox: none" in lines[0]
    assert "'wide'" in lines[1] and "egress: open" in lines[1]


def test_check_config_refuses_allowed_names_that_resolve_into_this_machine() -> None:
    """A name that resolves to loopback or a private address is an error; one that does
    not resolve, or only to a non-public address, a warning."""
    table = {"pkg.example": ["203.0.113.5"], "evil.example": ["93.184.216.34", "127.0.0.1"]}

    def resolve(host: str) -> list[str]:
        if host not in table:
            raise OSError(-2, "Name or service not known")
        return table[host]

    errors, warnings = resolution_problems(
        [("a", ["pkg.example", "evil.example"]), ("b", ["gone.example"])], resolve
    )
    assert len(errors) == 1 and "evil.example" in errors[0] and "127.0.0.1" in errors[0]
    assert [w.split(" ")[0] for w in warnings] == ["gone.example", "pkg.example"]
    assert "gone.example (in egress_allow): " in warnings[0]


def test_a_default_host_that_does_not_resolve_is_said_to_be_a_default() -> None:
    """A host of the default allow-list (which the config never names) is said to be one
    of its defaults, so the warning is not read as about the operator's own list."""
    default = DEFAULT_ALLOW[0]

    def resolve(host: str) -> list[str]:
        raise OSError(-2, "Name or service not known")

    _, [warning] = resolution_problems([("a", [default])], resolve)
    assert warning.startswith(f"{default} (in egress_allow, one of its defaults): ")


def test_check_config_says_what_keeps_agents_apart_on_this_host() -> None:
    """The summary says whether Fleetwarden runs as root (as the root unit runs it) or
    not, whether agents get uids of their own, their rlimits, and whether per-agent cgroup
    caps are enforced here."""
    lines = [
        line for line in _summary(parse("agents: []\n"), []).splitlines() if "isolation:" in line
    ]
    root = os.geteuid() == 0
    mode = "runs as root, like the root unit" if root else "not root, like the unprivileged"
    users = "a host uid of its own" if root else "share Fleetwarden's uid"
    assert len(lines) == 4 and mode in lines[0] and users in lines[1], lines
    assert "NPROC=4096" in lines[2] and "cgroup memory and process caps" in lines[3]


def request(text: str) -> Request:
    command = Grammar(COMMANDS).parse(text)
    assert command is not None
    return Request(message(text, sender=OPERATOR), Role.OPERATOR, command)


def commands(tmp_path: Path, board: RecordingBoard, **egress: Any) -> EgressCommands:
    spec = AgentSpec(name=AgentName("coder"), runtime="command", **egress)
    fleet: Any = FakeFleet(specs={"coder": spec})
    return EgressCommands(fleet, Sandboxes(SandboxSettings(tmp_path, hidden=())), board)


async def test_egress_block_is_kept_told_and_undone_by_unblock(tmp_path: Path) -> None:
    """Block: a file in the state dir and a notice to the agent's threads; unblock undoes."""
    board = RecordingBoard()
    table = commands(tmp_path, board, egress="locked", egress_allow=("x.org",)).table()
    answer = await table["egress block"](request("!egress block coder"))
    assert isinstance(answer, str) and "Egress of coder blocked" in answer
    assert (tmp_path / "sandbox" / "coder" / "egress-blocked").exists()
    assert board.posted[-1].agents == ("coder",) and "blocked" in board.posted[-1].markdown
    answer = await table["egress unblock"](request("!egress unblock coder"))
    assert isinstance(answer, str) and "unblocked" in answer
    assert not (tmp_path / "sandbox" / "coder" / "egress-blocked").exists()


async def test_egress_block_of_an_open_agent_says_there_is_nothing_to_cut(tmp_path: Path) -> None:
    """An agent with open egress has no allow-list: the command refuses, saying how."""
    table = commands(tmp_path, RecordingBoard(), egress="open").table()
    with pytest.raises(CommandError, match="egress: locked"):
        await table["egress block"](request("!egress block coder"))

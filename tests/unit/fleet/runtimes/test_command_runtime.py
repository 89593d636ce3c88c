"""The ``command`` runtime: the operator's argv run as it is, with or without a prompt, and
nothing of the real environment read."""

from __future__ import annotations

import os

import pytest

from fleet.errors import LaunchFailed
from fleet.runtimes import RuntimeContext
from fleet.runtimes.command import CommandRuntime
from tests.unit.fleet.runtimes.test_runtimes import (
    ANTHROPIC_KEY,
    CLAUDE_OUT,
    CLI_RUNTIMES,
    HB_TOKEN,
    HB_URL,
    full,
    spec,
    with_,
)
from tests.unit.fleet.runtimes.test_runtimes import ctx as ctx  # a fixture of this module too

# -- command -------------------------------------------------------------------------------


def test_command_runs_argv_as_is(ctx: RuntimeContext) -> None:
    """The roster's argv runs unchanged; the prompt and heartbeat arrive in the env."""
    agent = spec("command", argv=("python3", "-m", "mybot", "--flag"))
    plan = CommandRuntime().plan(agent, full(ctx))
    assert plan.argv == ("python3", "-m", "mybot", "--flag")
    assert plan.env["FLEETWARDEN_PROMPT"] == "fix the bug"
    assert plan.env["FLEETWARDEN_HEARTBEAT_URL"] == HB_URL
    assert plan.env["FLEETWARDEN_HEARTBEAT_TOKEN"] == HB_TOKEN
    assert plan.env["ANTHROPIC_API_KEY"] == ANTHROPIC_KEY
    assert plan.files == {}
    assert plan.cwd == ctx.workdir
    runtime = CommandRuntime()
    assert runtime.follow_up(agent, ctx, "abc", "more") is None
    assert runtime.session_id(CLAUDE_OUT) is None


def test_command_without_prompt(ctx: RuntimeContext) -> None:
    """No prompt: no FLEETWARDEN_PROMPT; the same argv on a terminal."""
    agent = spec("command", argv=("./agent",), prompt=None)
    plan = CommandRuntime().plan(agent, with_(ctx, tty=True))
    assert plan.argv == ("./agent",)
    assert "FLEETWARDEN_PROMPT" not in plan.env


@pytest.mark.parametrize("argv", [(), ("",)])
def test_command_needs_argv(ctx: RuntimeContext, argv: tuple[str, ...]) -> None:
    """A command agent without a program is refused, saying how to fix the roster."""
    with pytest.raises(LaunchFailed, match="has no command: set its `argv` in the roster"):
        CommandRuntime().plan(spec("command", argv=argv), ctx)


def test_no_real_environment_is_read(ctx: RuntimeContext, monkeypatch: pytest.MonkeyPatch) -> None:
    """Plans use ctx.environ only, never os.environ."""
    monkeypatch.setitem(os.environ, "ANTHROPIC_API_KEY", "from-os-environ")
    for runtime in CLI_RUNTIMES:
        plan = runtime.plan(spec(runtime.name), ctx)
        assert plan.env["ANTHROPIC_API_KEY"] == ANTHROPIC_KEY

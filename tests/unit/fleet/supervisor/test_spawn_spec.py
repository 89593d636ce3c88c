"""Tests for fleet.supervisor.spawn_spec with repositories: a repository given sets the
agent's workdir aside, a workdir given its repository, and a base belongs to its
repository; and a runtime that cannot be given MCP servers refused for an agent granted
some."""

from __future__ import annotations

from pathlib import Path

import pytest

from fleet.errors import LaunchFailed
from fleet.model import AgentSpec, McpGrant
from fleet.names import AgentName
from fleet.supervisor.admission.request import LaunchRequest
from fleet.supervisor.spawn_spec import spawn_spec

OWN = AgentSpec(name=AgentName("coder"), runtime="stub", workdir=Path("/srv/work"))


def test_a_repository_given_replaces_the_workdir() -> None:
    """`--repo app --base develop`: on the repository, from that base, no workdir."""
    made = spawn_spec(OWN, LaunchRequest("coder", repo="app", repo_base="develop"))
    assert (made.repo, made.repo_base, made.workdir) == ("app", "develop", None)


def test_the_agents_repository_and_base_carry_over_unless_changed() -> None:
    """Nothing given keeps both; another repository starts from its own default branch."""
    on_app = AgentSpec(name=AgentName("coder"), runtime="stub", repo="app", repo_base="dev")
    kept = spawn_spec(on_app, LaunchRequest("coder"))
    assert (kept.repo, kept.repo_base) == ("app", "dev")
    moved = spawn_spec(on_app, LaunchRequest("coder", repo="docs"))
    assert (moved.repo, moved.repo_base) == ("docs", None)
    rebased = spawn_spec(on_app, LaunchRequest("coder", repo_base="main"))
    assert (rebased.repo, rebased.repo_base) == ("app", "main")


def test_a_workdir_given_takes_the_agent_off_its_repository() -> None:
    """`--workdir DIR` for an agent on a repository: that directory, no repository."""
    on_app = AgentSpec(name=AgentName("coder"), runtime="stub", repo="app", repo_base="dev")
    made = spawn_spec(on_app, LaunchRequest("coder", workdir=Path("/tmp/x")))
    assert (made.repo, made.repo_base, made.workdir) == (None, None, Path("/tmp/x"))


def test_spawning_an_agent_granted_mcp_servers_on_pi_is_refused() -> None:
    """`spawn coder --runtime pi` for an agent granted a server: refused, naming the
    server and the runtimes that can reach it; another runtime, or none granted, passes."""
    granted = AgentSpec(name=AgentName("coder"), runtime="claude", mcp=(McpGrant("tracker"),))
    with pytest.raises(LaunchFailed) as caught:
        spawn_spec(granted, LaunchRequest("coder", runtime="pi"))
    assert "coder may use MCP servers (tracker), and runtime pi" in str(caught.value)
    assert "claude, codex, opencode or command" in str(caught.value)
    assert spawn_spec(granted, LaunchRequest("coder", runtime="codex")).runtime == "codex"
    assert spawn_spec(OWN, LaunchRequest("coder", runtime="pi")).runtime == "pi"

"""Tests for fleet.agents.spawn_spec with repositories: a repository given sets the
agent's workdir aside, a workdir given its repository, and a base belongs to its
repository."""

from __future__ import annotations

from pathlib import Path

from fleet.agents.spawn_spec import SpawnOverrides, spawn_spec
from fleet.model import AgentSpec
from fleet.names import AgentName

OWN = AgentSpec(name=AgentName("coder"), runtime="stub", workdir=Path("/srv/work"))


def test_a_repository_given_replaces_the_workdir() -> None:
    """`--repo app --base develop`: on the repository, from that base, no workdir."""
    made = spawn_spec(OWN, SpawnOverrides(repo="app", repo_base="develop"))
    assert (made.repo, made.repo_base, made.workdir) == ("app", "develop", None)


def test_the_agents_repository_and_base_carry_over_unless_changed() -> None:
    """Nothing given keeps both; another repository starts from its own default branch."""
    on_app = AgentSpec(name=AgentName("coder"), runtime="stub", repo="app", repo_base="dev")
    kept = spawn_spec(on_app, SpawnOverrides())
    assert (kept.repo, kept.repo_base) == ("app", "dev")
    moved = spawn_spec(on_app, SpawnOverrides(repo="docs"))
    assert (moved.repo, moved.repo_base) == ("docs", None)
    rebased = spawn_spec(on_app, SpawnOverrides(repo_base="main"))
    assert (rebased.repo, rebased.repo_base) == ("app", "main")


def test_a_workdir_given_takes_the_agent_off_its_repository() -> None:
    """`--workdir DIR` for an agent on a repository: that directory, no repository."""
    on_app = AgentSpec(name=AgentName("coder"), runtime="stub", repo="app", repo_base="dev")
    made = spawn_spec(on_app, SpawnOverrides(workdir=Path("/tmp/x")))
    assert (made.repo, made.repo_base, made.workdir) == (None, None, Path("/tmp/x"))

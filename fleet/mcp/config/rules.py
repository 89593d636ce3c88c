"""What the config as it is now allows a launch, on MCP servers and skills
(:class:`McpRules`): every launch is checked against it, whatever spec it starts from — the
roster's, or the one stored in the ledger for an agent the roster no longer names — so a
grant to a server the config dropped, a skill that is no longer one, or a server's
credential in an agent's own environment never starts. A reload replaces it whole with the
roster (:class:`~fleet.agents.current.CurrentRoster`).

:func:`holding` is the one rule, shared with the config's load
(:mod:`bot.config.checks.doors`), of which of an agent's variables hands it a credential
Fleetwarden holds.
"""

from __future__ import annotations

from collections.abc import Container, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from fleet.errors import FleetError
from fleet.mcp.config.places import Place, workdir_clash
from fleet.mcp.config.skills import SkillError, read_skill
from fleet.mcp.model import McpServer
from fleet.model import AgentSpec, McpGrant

Where = tuple[str | int, ...]


def holding(
    secret_env: Sequence[str], env: Mapping[str, str], held: Container[str]
) -> Iterator[tuple[Where, str]]:
    """Each of an agent's variables (its ``secret_env`` items, its ``env`` keys) that is one
    of ``held``, with where it is (``("secret_env", 0)``, ``("env", "KEY")``)."""
    for index, variable in enumerate(secret_env):
        if variable in held:
            yield ("secret_env", index), variable
    for key in env:
        if key in held:
            yield ("env", key), key


class McpRefused(FleetError):
    """A launch the config as it is now does not allow (:meth:`McpRules.check`); the message
    says why and the fix."""


@dataclass(frozen=True, slots=True)
class McpRules:
    """The config's MCP servers, by name, and the ``defaults``' grants and skills (what an
    agent the roster does not name is given), as of the last load or reload."""

    servers: Mapping[str, McpServer] = field(default_factory=dict)
    grants: tuple[McpGrant, ...] = ()
    skills: tuple[Path, ...] = ()
    places: tuple[Place, ...] = ()
    """What no agent's workdir may be, hold or be in (:func:`fleet.mcp.config.places.protected`)."""

    @property
    def held(self) -> frozenset[str]:
        """The variables the servers' credentials are read from: never an agent's."""
        return frozenset().union(*(s.credential_envs for s in self.servers.values()))

    def ad_hoc(self, spec: AgentSpec) -> AgentSpec:
        """``spec`` of an agent the roster does not name, given the ``defaults``' grants and
        skills as they are now (not those it was last launched with)."""
        return replace(spec, mcp=self.grants, skills=self.skills)

    def check(self, spec: AgentSpec) -> AgentSpec:
        """``spec``, if it may launch as the config is now; else :class:`McpRefused`."""
        why = self.refusal(spec)
        if why is not None:
            raise McpRefused(why)
        return spec

    def refusal(self, spec: AgentSpec) -> str | None:
        """Why ``spec`` may not launch as the config is now, with the fix, or ``None``."""
        for grant in spec.mcp:
            server = self.servers.get(grant.server)
            if server is None:
                known = ", ".join(sorted(self.servers)) or "none"
                return (
                    f"agent {spec.name} is granted MCP server {grant.server!r}, which the "
                    f"config no longer defines (defined: {known}): add it back under `mcp:` "
                    "and restart Fleetwarden, or take it out of the agent's `mcp:` (or "
                    "`defaults.mcp`) and `roster reload`"
                )
            off = sorted((grant.tools or frozenset()) - (server.tools or grant.tools or set()))
            if off:
                return (
                    f"agent {spec.name}'s grant to MCP server {grant.server} names "
                    f"{', '.join(off)}, not on the server's allow-list (mcp.{grant.server}."
                    "tools): narrow the grant to tools on it, and `roster reload`"
                )
        for where, variable in holding(spec.secret_env, spec.env, self.held):
            return (
                f"agent {spec.name} would hold {variable} (its {where[0]}), the variable an "
                "MCP server's credential is read from: an agent reaches the server only "
                "through its MCP door. Give the agent's variable another name, or spawn it "
                "without it"
            )
        clash = None if spec.workdir is None else workdir_clash(spec.workdir, self.places)
        if clash is not None:
            return (
                f"agent {spec.name}'s workdir {str(spec.workdir)!r} overlaps {clash}, which "
                "Fleetwarden reads or runs for itself: the agent could change it. "
                "Give it a workdir apart from every skill directory and MCP server"
            )
        for directory in spec.skills:
            try:
                read_skill(directory)
            except SkillError as exc:
                return f"agent {spec.name}'s skill cannot be given to it: {exc}"
        return None

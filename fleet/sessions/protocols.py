"""The session protocols Fleetwarden speaks, by the name a :class:`~fleet.model.LaunchPlan`
gives (``LaunchPlan.session``): a new protocol object for each run."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path

from fleet.errors import FleetError
from fleet.model import AgentSpec
from fleet.sessions import claude, codex, pi_rpc
from fleet.sessions.base import SessionProtocol

Factory = Callable[[AgentSpec, Path], SessionProtocol]
"""Makes the protocol of one run of ``spec``, working in directory ``cwd``."""

PROTOCOLS: Mapping[str, Factory] = {
    claude.NAME: lambda spec, _cwd: claude.ClaudeStream(
        spec.permissions, servers=frozenset(grant.server for grant in spec.mcp)
    ),
    pi_rpc.NAME: lambda _spec, _cwd: pi_rpc.PiRpc(),
    codex.NAME: codex.protocol,
}


class UnknownProtocol(FleetError):
    """A run names a session protocol this Fleetwarden does not speak."""


def protocol_for(name: str, spec: AgentSpec, cwd: Path) -> SessionProtocol:
    """A fresh protocol ``name`` for a run of ``spec`` in ``cwd``."""
    factory = PROTOCOLS.get(name)
    if factory is None:
        known = ", ".join(sorted(PROTOCOLS))
        raise UnknownProtocol(f"unknown session protocol {name!r}; known: {known}")
    return factory(spec, cwd)

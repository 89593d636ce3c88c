"""A plain listing of an agent's peers — the agents in its ``talks_to``, each with its
runtime and host — what ``fw-msg peers`` prints until the roster's fuller text
(:class:`fleet.peers.roster.PeerRoster`) is given to the door instead."""

from __future__ import annotations

from fleet.errors import FleetError
from fleet.peers.door import PeersText
from fleet.peers.rules import Specs


def plain_peers(specs: Specs) -> PeersText:
    """``fw-msg peers``'s text for an agent, from the agents' specs in ``specs``."""

    async def peers_text(agent: str) -> str:
        try:
            spec = await specs.spec(agent)
        except FleetError:
            return f"no agent named {agent}"
        if not spec.talks_to:
            return (
                f"You are agent {agent}. You have no peers: no agent is in your talks_to, "
                "so you cannot message anyone."
            )
        lines = [f"You are agent {agent}. Your peers:"]
        for name in spec.talks_to:
            try:
                peer = await specs.spec(name)
            except FleetError:
                lines.append(f"- {name}: not in the roster now")
                continue
            role = f" — {peer.purpose}" if peer.purpose else ""
            lines.append(f"- {name} ({peer.runtime} on {peer.host}){role}")
        lines.append('Write to one: fw-msg send PEER "TEXT" [--verify]')
        return "\n".join(lines)

    return peers_text

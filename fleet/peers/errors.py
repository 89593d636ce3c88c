"""What the peers' side refuses an agent: :class:`PeerRefusal`, whose message is said to
the agent that asked (``fw-msg`` prints it)."""

from __future__ import annotations

from fleet.errors import FleetError


class PeerRefusal(FleetError):
    """A call of an agent's refused: its message says why, and how to go on."""

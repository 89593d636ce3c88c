"""What goes wrong between agents: a message or a task refused, in words for the agent."""

from __future__ import annotations

from fleet.errors import FleetError


class PeerRefusal(FleetError):
    """A message, a task handed on or a verdict refused; the message says why, in words
    the sending agent is shown (``refused: …`` on its side)."""

"""How an agent names itself to Fleetwarden's loopback doors: the header its secret travels
in. The agent's side (:mod:`fleet.connections.door_client`, which runs alone in a sandbox and
imports nothing of Fleetwarden) writes the same words."""

from __future__ import annotations

from typing import Final

TOKEN_HEADER: Final = "X-Fleetwarden-Token"  # where an agent sends its secret to our doors

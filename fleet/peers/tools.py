"""Where Fleetwarden's message tool for agents is: ``fw-msg``, put first on the PATH of
every agent (its calls go to the peer door, which refuses what the agent's peers do not
allow) — here, and on an SSH host from the copy made there."""

from __future__ import annotations

from pathlib import Path
from typing import Final

PEER_TOOLS: Final = Path(__file__).resolve().parent / "bin"
"""The directory holding ``fw-msg``."""
FW_MSG: Final = PEER_TOOLS / "fw-msg"
"""The command itself (a shell script running :data:`FW_MSG_PROGRAM`, one folder up)."""
FW_MSG_PROGRAM: Final = Path(__file__).resolve().parent / "fw_msg.py"
"""What ``fw-msg`` runs, with the system's python3 alone."""

"""Where Fleetwarden's own forge tool for agents is: ``fw-forge``, put first on the PATH of
every agent of a config with forges (its calls go to the forge door, which refuses an
agent without a forge run) — here, and on an SSH host from the copy made there."""

from __future__ import annotations

from pathlib import Path
from typing import Final

FORGE_TOOLS: Final = Path(__file__).resolve().parent / "bin"
"""The directory holding ``fw-forge``."""
FW_FORGE: Final = FORGE_TOOLS / "fw-forge"
"""The command itself (a shell script running :data:`FW_FORGE_PROGRAM`, one folder up)."""
FW_FORGE_PROGRAM: Final = Path(__file__).resolve().parent / "fw_forge.py"
"""What ``fw-forge`` runs, with the system's python3 alone."""

"""Where Fleetwarden's own forge tool for agents is: ``fw-forge``, put first on the PATH of
every agent of a config with forges (its calls go to the forge door, which refuses an
agent without a forge run)."""

from __future__ import annotations

from pathlib import Path
from typing import Final

FORGE_TOOLS: Final = Path(__file__).resolve().parent / "bin"
"""The directory holding ``fw-forge``."""

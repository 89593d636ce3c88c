"""One schema step of the ledger."""

from __future__ import annotations

from typing import NamedTuple


class Migration(NamedTuple):
    """One schema step: applied when the ledger's version is below ``version``."""

    version: int
    description: str
    statements: tuple[str, ...]

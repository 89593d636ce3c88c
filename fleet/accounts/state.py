"""What the account book keeps across a restart, as values: each account's :class:`Health`
(a :class:`Mark` while it cannot be used), which account each agent is on (an
:class:`Assignment`), and the :class:`AccountLedger` that stores them with the latest quota
windows.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from fleet.accounts.quota import QuotaWindow


class Health(enum.StrEnum):
    OK = "ok"
    REJECTED = "rejected"  # the provider says a window is spent, until it resets
    UNAUTHORIZED = "unauthorized"  # the credential was refused: an operator must fix it
    MISSING = "missing"  # no credential: variable unset, login absent


@dataclass(frozen=True, slots=True)
class Mark:
    """Why an account cannot be used now, and until when (``None``: until fixed)."""

    account: str
    health: Health
    reason: str
    until: datetime | None
    at: datetime


@dataclass(frozen=True, slots=True)
class Assignment:
    """Which account pays for ``agent``'s requests to ``provider`` (``""``: none any more),
    and what its run asked for — its runtime and the account or pool it named — so a pool
    move after a restart stays within the pool."""

    agent: str
    provider: str
    account: str
    at: datetime
    runtime: str = ""
    wanted: str | None = None


class AccountLedger(Protocol):
    """Where the book keeps what must outlive a restart."""

    async def account_assignments(self) -> list[Assignment]: ...

    async def account_marks(self) -> list[Mark]: ...

    async def quota_windows(self) -> list[QuotaWindow]: ...

    async def save_account_state(
        self,
        assignments: Sequence[Assignment],
        marks: Sequence[Mark],
        windows: Sequence[QuotaWindow],
    ) -> None: ...

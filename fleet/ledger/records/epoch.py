"""The ledger's bridge between times and the unix epoch seconds its columns hold: aware
datetimes only, read back in UTC."""

from __future__ import annotations

from datetime import UTC, datetime


def to_epoch(at: datetime) -> float:
    """``at`` as unix epoch seconds; naive datetimes are refused rather than guessed at."""
    if at.tzinfo is None:
        raise ValueError(f"the ledger stores timezone-aware times only, got naive {at!r}")
    return at.timestamp()


def from_epoch(seconds: float) -> datetime:
    """Unix epoch seconds as an aware UTC datetime."""
    return datetime.fromtimestamp(seconds, UTC)


def optional_epoch(seconds: float | None) -> datetime | None:
    return None if seconds is None else from_epoch(seconds)

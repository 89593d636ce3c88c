"""Where the ledger is: a SQLite file (the embedded default) or a PostgreSQL database."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Final
from urllib.parse import urlsplit

__all__ = ["URL_SCHEMES", "LedgerLocation", "check_url", "is_url"]


@dataclass(frozen=True, slots=True)
class LedgerLocation:
    """A SQLite file at ``path``, or — with ``url`` — a PostgreSQL database. ``path`` is
    then still a place in the state dir, for the lock that keeps one orchestrator per state
    dir. The ``password`` is never shown (its value came from the environment)."""

    path: Path
    url: str | None = None
    password: str | None = field(default=None, repr=False, compare=False)

    @property
    def engine(self) -> str:
        return "sqlite" if self.url is None else "postgresql"

    def __str__(self) -> str:
        if self.url is None:
            return str(self.path)
        from fleet.ledger.database.postgres import redact_url

        return redact_url(self.url)


URL_SCHEMES: Final = ("postgresql://", "postgres://")


def is_url(value: str) -> bool:
    """Whether the config's ``ledger`` names a PostgreSQL database rather than a file."""
    return value.startswith(URL_SCHEMES)


def check_url(url: str) -> str:
    """``url`` if it is a usable PostgreSQL URL for the ledger; :class:`ValueError` saying
    what to fix otherwise. A password in it is refused: the config file holds no secret."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise ValueError(f"is not a valid PostgreSQL URL ({exc})") from None
    if parts.password is not None:
        raise ValueError(
            "holds a password: remove it from the URL and name the environment variable "
            "that holds it in `ledger_password_env` (or use libpq's PGPASSWORD or PGPASSFILE)"
        )
    database = parts.path.lstrip("/")
    if not database or "/" in database:
        raise ValueError("names no database: write it as postgresql://USER@HOST:PORT/DATABASE")
    if not parts.hostname and "host=" not in parts.query:
        raise ValueError(
            "names no host: write it as postgresql://USER@HOST:PORT/DATABASE "
            "(or ?host=/path/to/socket/dir for a Unix socket)"
        )
    if port == 0:
        raise ValueError("has port 0: name the port PostgreSQL listens on (default 5432)")
    return url

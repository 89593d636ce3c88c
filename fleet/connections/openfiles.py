"""The open-file limit: raised at start, and shared out between the servers with a reserve
kept back for everything else.

Every connection to the metering proxy, the heartbeat endpoint or the dashboard costs
Fleetwarden a file descriptor (a proxied model request one more, to the provider). At the
common soft limit of 1,024 a client holding enough idle connections would leave none for
the ledger, the chat connections or other agents' heartbeats. So at start the soft limit
is raised to the hard one (at most :data:`CEILING`: children inherit it, and some programs
still loop over every possible descriptor), and each server's connection cap is its share
of what is left once :func:`reserve` is kept back. Past its cap a server refuses; it never
runs out.
"""

from __future__ import annotations

import logging
import resource
from dataclasses import dataclass
from typing import Final

log = logging.getLogger(__name__)

CEILING: Final = 65536  # the soft limit is raised this far at most
RESERVE_MIN: Final = 128  # descriptors never handed to the servers' clients
ACCEPT_BURST: Final = 64
"""Connections a server accepts in one wake-up of its accept loop. asyncio accepts that
many before any of them reaches the server's admission (which closes one to make room at
its cap), so each burst needs its descriptors before a cap can act: the reserve holds a
burst for each of the servers."""
SERVERS: Final = 3  # the metering proxy, the heartbeat endpoint and the dashboard


@dataclass(frozen=True, slots=True)
class OpenFiles:
    """The process's ``RLIMIT_NOFILE``: ``hard`` is ``None`` when unlimited."""

    soft: int
    hard: int | None


def current() -> OpenFiles:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    return OpenFiles(_finite(soft) or CEILING, _finite(hard))


def _finite(value: int) -> int | None:
    return None if value == resource.RLIM_INFINITY else value


def wanted(limits: OpenFiles, ceiling: int = CEILING) -> int:
    """The soft limit to ask for: the hard limit, at most ``ceiling``, never lower than now."""
    top = ceiling if limits.hard is None else min(limits.hard, ceiling)
    return max(limits.soft, top)


def raise_limit(ceiling: int = CEILING) -> OpenFiles:
    """Raise the soft limit as far as :func:`wanted` says; the limits in force afterwards.
    A refusal (a hard limit lowered meanwhile, a sandbox) keeps the old one, with a
    warning: the servers' caps then follow the lower limit."""
    before = current()
    target = wanted(before, ceiling)
    if target > before.soft:
        hard = resource.RLIM_INFINITY if before.hard is None else before.hard
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        except (OSError, ValueError) as exc:
            log.warning(
                "cannot raise the open-file limit to %d (%s); it stays %d", target, exc, before.soft
            )
    after = current()
    log.info(
        "open files: up to %d (was %d, hard limit %s), %d kept back from the servers' clients",
        after.soft,
        before.soft,
        "none" if after.hard is None else after.hard,
        reserve(after.soft),
    )
    return after


def reserve(limit: int) -> int:
    """Descriptors kept for the ledger, chat connections, agents' pipes and logs and the
    doors of locked agents (an eighth of the limit, at least :data:`RESERVE_MIN`), and for
    one accept burst of each server (:data:`ACCEPT_BURST`)."""
    return max(RESERVE_MIN, limit // 8) + SERVERS * ACCEPT_BURST


def connection_cap(limit: int, share: float, fds_each: int) -> int:
    """How many connections a server may hold when it gets ``share`` of the descriptors
    left after the reserve and each connection may cost ``fds_each`` of them (at least 1)."""
    spare = max(limit - reserve(limit), 0)
    return max(int(spare * share) // max(fds_each, 1), 1)

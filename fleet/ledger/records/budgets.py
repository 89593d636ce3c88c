"""What the ledger's budget store (:mod:`fleet.ledger.stores.spend.budgets`) keeps: a budget (its
scope,
window, limits and cutoff), an admin's burst, a budget's step on the enforcement ladder,
and an agent frozen by a budget's cutoff or by hand.

A **scope** is ``global``, ``group:NAME``, ``agent:NAME``, ``host:NAME``, ``account:NAME``
or ``provider:NAME``; a **window** is rolling (any duration), calendar (``daily``,
``weekly``, ``monthly``), or fixed by an explicit ``reset_at`` (with how sure we are of it).
Which budget governs an agent, and what its numbers mean, is :mod:`fleet.budgets`'s.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Final

GLOBAL: Final = "global"
_SCOPE = re.compile(r"(?:global|(agent|group|account|provider|host):([a-z0-9][a-z0-9._-]{0,62}))")
SCOPE_FORMS: Final = "global, group:NAME, agent:NAME, host:NAME, account:NAME or provider:NAME"


class Confidence(enum.StrEnum):
    """How sure we are of a window's reset time."""

    PROVIDER = "provider"  # the provider said so (a quota header)
    USER = "user"  # an operator said so
    ESTIMATED = "estimated"  # derived from our own metering
    UNKNOWN = "unknown"


class WindowKind(enum.StrEnum):
    ROLLING = "rolling"
    DAILY = "daily"
    WEEKLY = "weekly"
    MONTHLY = "monthly"
    FIXED = "fixed"  # ends at an explicit reset_at


@dataclass(frozen=True, slots=True)
class WindowSpec:
    """When a budget's allowance resets. ``length`` for rolling and fixed windows;
    ``reset_at`` for fixed ones (the end of the current window)."""

    kind: WindowKind
    length: timedelta | None = None
    reset_at: datetime | None = None
    confidence: Confidence = Confidence.USER

    @property
    def label(self) -> str:
        if self.kind is WindowKind.ROLLING and self.length is not None:
            return format_duration(self.length)
        if self.kind is WindowKind.FIXED and self.reset_at is not None:
            return f"until {self.reset_at:%Y-%m-%d %H:%M} UTC"
        return self.kind.value


@dataclass(frozen=True, slots=True)
class Scope:
    """``global``, ``group:NAME``, ``agent:NAME``, ``host:NAME`` (the agents on that host:
    ``local`` is this machine), ``account:NAME`` or ``provider:NAME``."""

    kind: str  # "global" | "group" | "agent" | "host" | "account" | "provider"
    name: str | None = None

    @classmethod
    def parse(cls, text: str) -> Scope:
        match = _SCOPE.fullmatch(text.strip())
        if match is None:
            raise ValueError(f"{text!r} is not a scope: write {SCOPE_FORMS}")
        return cls(match[1] or GLOBAL, match[2])

    def __str__(self) -> str:
        return GLOBAL if self.kind == GLOBAL else f"{self.kind}:{self.name}"

    @property
    def specificity(self) -> int:
        return {"agent": 5, "group": 4, "host": 3, "account": 2, "provider": 1}.get(self.kind, 0)

    @property
    def by_usage_column(self) -> bool:
        """Whether the scope counts usage by a column of its rows — the account or provider
        that served it, the host its agent ran on — rather than by the agents it covers."""
        return self.kind in ("account", "provider", "host")


class Cutoff(enum.StrEnum):
    """What happens to the agents a budget governs when it runs out (its hard limit is
    reached), carried out by Fleetwarden with no agent in the loop. Their model requests
    are refused in every case, until the window resets."""

    REFUSE = "refuse"  # the agents keep running; their model requests are refused
    FREEZE = "freeze"  # their processes are frozen (cgroup, else SIGSTOP) until reset/resume
    STOP = "stop"  # they are stopped gracefully, and that is recorded
    ASK = "ask"  # frozen, and the operators asked once per window to raise the limit or stop


@dataclass(frozen=True, slots=True)
class Budget:
    """A limit on a scope's spend in a window.

    ``limit_tokens`` counts input + output + cache reads + cache writes; ``limit_usd``
    (optional) the priced cost. ``account`` names a subscription whose provider quota
    signals (``anthropic`` → ``anthropic-ratelimit-unified-*``, ``openai`` → ``x-codex-*``)
    are preferred over our own metering for utilization and reset. ``ladder`` maps a
    runtime to its models from most to least capable, for downgrades. ``tolerance`` is how
    far over pace (as a fraction: 0.1 = 10 %) is still "on pace".
    """

    scope: Scope
    window: WindowSpec
    limit_tokens: int | None = None
    limit_usd: float | None = None
    account: str | None = None
    ladder: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    tolerance: float = 0.1
    source: str = "config"  # "config" | "command"
    cutoff: Cutoff = Cutoff.REFUSE

    @property
    def key(self) -> str:
        """What identifies the budget: its scope (one budget per scope)."""
        return str(self.scope)


@dataclass(frozen=True, slots=True)
class Burst:
    """An admin's grant letting a scope spend past its pace until ``until``."""

    scope: Scope
    until: datetime
    granted_by: str
    reason: str = ""
    granted_at: datetime | None = None


class Step(enum.StrEnum):
    """Where a budget stands on the enforcement ladder."""

    NONE = "none"  # requests go through as asked
    DOWNGRADE = "downgrade"  # models rewritten ``level`` rungs down the ladder
    QUEUE = "queue"  # new requests held (bounded), new spawns deferred
    REFUSE = "refuse"  # the hard limit is reached: 429 until the reset


def format_duration(length: timedelta) -> str:
    seconds = int(length.total_seconds())
    for unit, size in (("w", 604800), ("d", 86400), ("h", 3600), ("m", 60)):
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


@dataclass(frozen=True, slots=True)
class Freeze:
    """An agent paused by a budget's cutoff (``budget``), or by a person (``by``)."""

    agent: str
    budget: str  # the budget's key; empty for a person's freeze
    reason: str
    frozen_at: datetime
    host: str
    by: str | None = None  # who froze it by hand; None for a budget's cutoff

    @property
    def by_hand(self) -> bool:
        """Whether a person froze it (only ``resume`` lifts it, never a budget)."""
        return self.by is not None

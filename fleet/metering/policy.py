"""The policy hook: before a model request is forwarded, the proxy asks for a verdict.

* :class:`Allow` — forward as is;
* :class:`Rewrite` — forward with another model (e.g. one rung down a downgrade ladder);
  the ledger keeps both the asked-for and the served model;
* :class:`Hold` — wait until a time, then ask again (a queue); a wait beyond the proxy's
  ``max_hold`` is refused instead;
* :class:`Refuse` — answer 429 in the provider's error shape, with ``retry-after``.

``decide`` is called on the proxy's event loop for every model request: it must answer from
memory (a pacing job refreshes what it knows), never block or await.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from fleet.names import AgentName


@dataclass(frozen=True, slots=True)
class RequestInfo:
    """What the policy knows about a request."""

    agent: AgentName
    provider: str
    api: str
    model: str | None
    stream: bool
    at: datetime


@dataclass(frozen=True, slots=True)
class Allow:
    pass


@dataclass(frozen=True, slots=True)
class Rewrite:
    model: str
    reason: str = ""


@dataclass(frozen=True, slots=True)
class Hold:
    until: datetime
    reason: str = ""


@dataclass(frozen=True, slots=True)
class Refuse:
    retry_after: float  # seconds
    reason: str


Verdict = Allow | Rewrite | Hold | Refuse
ALLOW = Allow()


class Policy(Protocol):
    def decide(self, request: RequestInfo) -> Verdict: ...


class AllowAll:
    """Every request goes through unchanged: metering without enforcement."""

    def decide(self, request: RequestInfo) -> Verdict:
        return ALLOW

"""What the metering proxy records: one :class:`UsageEvent` per proxied model request, and
the provider's rate-limit headers as :class:`QuotaSignal` rows.

Token counts are *disjoint*, in Anthropic's terms, whatever the wire format said:
``input`` excludes cache reads and cache writes, ``output`` includes ``reasoning``. OpenAI
reports cached tokens as a subset of ``input_tokens``; the proxy subtracts them.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime


class Outcome(enum.StrEnum):
    """How a metered request ended."""

    OK = "ok"  # the provider answered and its usage was read
    PARTIAL = "partial"  # the stream was cut (upstream or a bounded drain): usage seen so far
    UPSTREAM_ERROR = "upstream_error"  # the provider answered with an error status or event
    UNREACHABLE = "unreachable"  # no answer: connection refused, timeout
    UNMETERED = "unmetered"  # answered, but no usage could be read (``reason`` says why)
    REFUSED = "refused"  # refused by the proxy: bad agent path or key, or the policy
    CLIENT_GONE = "client_gone"  # the client left before an answer began


@dataclass(frozen=True, slots=True)
class Tokens:
    """Disjoint token counts of one request."""

    input: int = 0
    output: int = 0
    cache_read: int = 0
    cache_write: int = 0
    reasoning: int = 0  # part of ``output``

    @property
    def total(self) -> int:
        return self.input + self.output + self.cache_read + self.cache_write


@dataclass(frozen=True, slots=True)
class UsageEvent:
    """One proxied request, as the ``usage`` table keeps it.

    ``agent`` is the name in the request's path even when the request was refused for it
    (an unknown agent or a wrong key); ``cost_usd`` is ``None`` when the served model has no
    price in the config — never a guess — and ``priced`` says so.
    """

    at: datetime  # when the request arrived
    agent: str
    provider: str
    api: str  # "anthropic" | "responses" | "chat" | "" (not a model request)
    requested_model: str | None
    served_model: str | None
    tokens: Tokens
    stream: bool
    status: int  # the HTTP status the agent got
    outcome: Outcome
    latency_ms: float  # arrival to the end of the answer (or of the drain)
    ttfb_ms: float | None  # arrival to the first byte of the answer, when there was one
    request_id: str | None  # the provider's request id
    partial: bool = False
    reason: str = ""  # why unmetered, refused, partial or failed; never holds a secret
    cost_usd: float | None = None
    priced: bool = False
    rewritten_from: str | None = None  # the model the agent asked for, if the policy changed it
    account: str | None = None  # the account whose credential the proxy injected


@dataclass(frozen=True, slots=True)
class QuotaSignal:
    """One rate-limit header a provider sent, as the ``quota_signals`` table keeps it.

    ``family`` groups headers (``anthropic-ratelimit``, ``anthropic-ratelimit-unified``,
    ``x-ratelimit``, ``x-codex``); ``name`` is the full header name, lower case; ``value``
    is the raw text. ``window``/``metric`` are parsed out where the family has them (e.g.
    window ``5h``, metric ``utilization``) so pacing can query without re-parsing.
    """

    at: datetime
    agent: str
    provider: str
    family: str
    name: str
    value: str
    window: str | None = None
    metric: str | None = None

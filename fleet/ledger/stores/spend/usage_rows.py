"""How the ledger's metering store (:mod:`fleet.ledger.stores.spend.metering`) writes a request's
usage and a provider's quota signal as rows and reads them back, and the SQL its sums share (what a
row's model is, whether its request was served) with the dashboard's."""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, replace

from fleet.ledger.database.engine import Row
from fleet.ledger.records.epoch import from_epoch, to_epoch
from fleet.metering.counting.events import Outcome, QuotaSignal, Tokens, UsageEvent

log = logging.getLogger(__name__)

SQLITE_INT = 2**62  # a single count this large would overflow the sums of a column
USAGE_COLUMNS = (
    "at, agent, provider, api, requested_model, served_model, input_tokens, output_tokens,"
    " cache_read_tokens, cache_write_tokens, reasoning_tokens, stream, status, outcome,"
    " latency_ms, ttfb_ms, request_id, partial, reason, cost_usd, priced, rewritten_from,"
    " account, host"
)
SIGNAL_COLUMNS = "at, agent, provider, family, name, value, window, metric"
# Where the keys of batches written once are claimed, beside the chat events handled once.
ONCE_SOURCE = "metering-once"
GROUPINGS = frozenset({"agent", "account", "provider", "host"})  # columns usage may be summed by


def placeholders(columns: str) -> str:
    return ", ".join("?" for _ in columns.split(","))


INSERT_USAGE = f"INSERT INTO usage ({USAGE_COLUMNS}) VALUES ({placeholders(USAGE_COLUMNS)})"
INSERT_SIGNAL = (
    f"INSERT INTO quota_signals ({SIGNAL_COLUMNS}) VALUES ({placeholders(SIGNAL_COLUMNS)})"
)

# A request was metered when the provider's usage was read, in full or as far as it went.
METERED = "(outcome IN ('ok', 'partial') OR partial = 1)"
TOTAL_TOKENS = "input_tokens + output_tokens + cache_read_tokens + cache_write_tokens"
NOT_SERVED = "(not served)"
"""The model of a request nobody served (the proxy or the provider refused it, or the
provider could not be reached): the name it asked for is the agent's own text, not a model."""
SERVED = "(status < 400 AND outcome <> 'refused')"
"""Whether a usage row's request was served: answered, neither refused nor failed."""
MODEL = (
    "CASE WHEN COALESCE(served_model, '') <> '' THEN served_model"
    f" WHEN NOT {SERVED} THEN '{NOT_SERVED}'"
    " ELSE COALESCE(NULLIF(requested_model, ''), '?') END"
)
"""A usage row's model in every sum: the one the provider said served it, else the one asked
for when the request was answered; a request not served counts under :data:`NOT_SERVED`,
so no name an agent makes up becomes a model of ``usage``, a run's summary, the dashboard
or ``/metrics``."""


TOTALS = f"""SELECT agent, provider, {MODEL} AS model,
        COUNT(*) AS requests,
        SUM(input_tokens) AS input,
        SUM(output_tokens) AS output,
        SUM(cache_read_tokens) AS cache_read,
        SUM(cache_write_tokens) AS cache_write,
        SUM(reasoning_tokens) AS reasoning,
        SUM(CASE WHEN priced = 1 THEN cost_usd END) AS cost_usd,
        SUM(CASE WHEN priced = 0 AND {METERED} THEN 1 ELSE 0 END) AS unpriced,
        SUM(CASE WHEN partial = 1 OR outcome = 'partial' THEN 1 ELSE 0 END) AS partial,
        SUM(CASE WHEN outcome = 'unmetered' THEN 1 ELSE 0 END) AS unmetered,
        SUM(CASE WHEN outcome IN ('upstream_error', 'unreachable') THEN 1 ELSE 0 END) AS errors,
        SUM(CASE WHEN outcome = 'refused' THEN 1 ELSE 0 END) AS refused
    FROM usage"""


@dataclass(frozen=True, slots=True)
class UsageTotal:
    """The requests of one agent to one model of one provider in a window, summed.

    ``model`` is the served model, else the requested one when it was answered, else
    ``"?"``; :data:`NOT_SERVED` for requests nobody served. ``cost_usd`` sums
    the priced rows and is ``None`` when none was priced; ``unpriced`` counts metered rows
    without a price. ``errors`` are upstream errors and unreachable upstreams.
    """

    agent: str
    provider: str
    model: str
    requests: int
    tokens: Tokens
    cost_usd: float | None
    unpriced: int
    partial: int
    unmetered: int
    errors: int
    refused: int

    @property
    def total_tokens(self) -> int:
        """Input, output, cache reads and cache writes (reasoning is part of output)."""
        return self.tokens.total


def storable(event: UsageEvent) -> UsageEvent:
    """``event`` as SQLite can hold it: a count past its integers (or a cost or time that
    is no number) would fail the whole batch, so such a row keeps what it says of the
    request, with no tokens, flagged."""
    tokens = event.tokens
    counts = (tokens.input, tokens.output, tokens.cache_read, tokens.cache_write, tokens.reasoning)
    numbers = (event.latency_ms, event.ttfb_ms or 0.0, event.cost_usd or 0.0)
    if all(0 <= count < SQLITE_INT for count in counts) and all(map(math.isfinite, numbers)):
        return event
    log.error("a usage row of %s had counts out of range; kept without tokens", event.agent)
    return replace(
        event,
        tokens=Tokens(),
        outcome=Outcome.UNMETERED,
        latency_ms=event.latency_ms if math.isfinite(event.latency_ms) else 0.0,
        ttfb_ms=event.ttfb_ms if math.isfinite(event.ttfb_ms or 0.0) else None,
        cost_usd=None,
        priced=False,
        reason="token counts out of range",
    )


def usage_params(event: UsageEvent) -> tuple[object, ...]:
    tokens = event.tokens
    return (
        to_epoch(event.at),
        event.agent,
        event.provider,
        event.api,
        event.requested_model,
        event.served_model,
        tokens.input,
        tokens.output,
        tokens.cache_read,
        tokens.cache_write,
        tokens.reasoning,
        int(event.stream),
        event.status,
        event.outcome.value,
        event.latency_ms,
        event.ttfb_ms,
        event.request_id,
        int(event.partial),
        event.reason,
        event.cost_usd,
        int(event.priced),
        event.rewritten_from,
        event.account,
    )


def signal_params(signal: QuotaSignal) -> tuple[object, ...]:
    return (
        to_epoch(signal.at),
        signal.agent,
        signal.provider,
        signal.family,
        signal.name,
        signal.value,
        signal.window,
        signal.metric,
    )


def row_tokens(row: Row, suffix: str) -> Tokens:
    """The five token counts of a row whose columns are named ``input{suffix}`` and so on
    (``usage`` rows: ``input_tokens``; sums: ``input``)."""
    return Tokens(
        **{field: row[f"{field}{suffix}"] for field in TOKEN_FIELDS},
    )


TOKEN_FIELDS = ("input", "output", "cache_read", "cache_write", "reasoning")


def usage_event(row: Row) -> UsageEvent:
    return UsageEvent(
        at=from_epoch(row["at"]),
        agent=row["agent"],
        provider=row["provider"],
        api=row["api"],
        requested_model=row["requested_model"],
        served_model=row["served_model"],
        tokens=row_tokens(row, "_tokens"),
        stream=bool(row["stream"]),
        status=row["status"],
        outcome=Outcome(row["outcome"]),
        latency_ms=row["latency_ms"],
        ttfb_ms=row["ttfb_ms"],
        request_id=row["request_id"],
        partial=bool(row["partial"]),
        reason=row["reason"],
        cost_usd=row["cost_usd"],
        priced=bool(row["priced"]),
        rewritten_from=row["rewritten_from"],
        account=row["account"],
    )


def quota_signal(row: Row) -> QuotaSignal:
    return QuotaSignal(
        at=from_epoch(row["at"]),
        agent=row["agent"],
        provider=row["provider"],
        family=row["family"],
        name=row["name"],
        value=row["value"],
        window=row["window"],
        metric=row["metric"],
    )


def usage_total(row: Row) -> UsageTotal:
    return UsageTotal(
        agent=row["agent"],
        provider=row["provider"],
        model=row["model"],
        requests=row["requests"],
        tokens=row_tokens(row, ""),
        cost_usd=row["cost_usd"],
        unpriced=row["unpriced"],
        partial=row["partial"],
        unmetered=row["unmetered"],
        errors=row["errors"],
        refused=row["refused"],
    )

"""The ledger's metering tables: ``usage`` (one row per proxied model request) and
``quota_signals`` (the rate-limit headers providers sent), their batch writes (and the
batches written once under a key, which the metering journal replays), and the sums the
``usage`` command and ``ps`` show.

:class:`MeteringLedger` is mixed into :class:`~fleet.ledger.store.Ledger` and uses its read
helpers; each batch is one ``BEGIN IMMEDIATE`` transaction under the ledger's lock like
every other write, in one trip to the ledger's :class:`~fleet.ledger.appender.Appender`.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime

from fleet.ledger.access import Store
from fleet.ledger.engine import NO_LIMIT, Row
from fleet.ledger.rows import from_epoch, to_epoch
from fleet.metering.events import Outcome, QuotaSignal, Tokens, UsageEvent

log = logging.getLogger(__name__)

_SQLITE_INT = 2**62  # a single count this large would overflow the sums of a column
_USAGE_COLUMNS = (
    "at, agent, provider, api, requested_model, served_model, input_tokens, output_tokens,"
    " cache_read_tokens, cache_write_tokens, reasoning_tokens, stream, status, outcome,"
    " latency_ms, ttfb_ms, request_id, partial, reason, cost_usd, priced, rewritten_from,"
    " account, host"
)
_SIGNAL_COLUMNS = "at, agent, provider, family, name, value, window, metric"
# Where the keys of batches written once are claimed, beside the chat events handled once.
ONCE_SOURCE = "metering-once"
_GROUPINGS = frozenset({"agent", "account", "provider", "host"})  # columns usage may be summed by


def _placeholders(columns: str) -> str:
    return ", ".join("?" for _ in columns.split(","))


_INSERT_USAGE = f"INSERT INTO usage ({_USAGE_COLUMNS}) VALUES ({_placeholders(_USAGE_COLUMNS)})"
_INSERT_SIGNAL = (
    f"INSERT INTO quota_signals ({_SIGNAL_COLUMNS}) VALUES ({_placeholders(_SIGNAL_COLUMNS)})"
)

# A request was metered when the provider's usage was read, in full or as far as it went.
_METERED = "(outcome IN ('ok', 'partial') OR partial = 1)"
_TOTAL_TOKENS = "input_tokens + output_tokens + cache_read_tokens + cache_write_tokens"
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


_TOTALS = f"""SELECT agent, provider, {MODEL} AS model,
        COUNT(*) AS requests,
        SUM(input_tokens) AS input,
        SUM(output_tokens) AS output,
        SUM(cache_read_tokens) AS cache_read,
        SUM(cache_write_tokens) AS cache_write,
        SUM(reasoning_tokens) AS reasoning,
        SUM(CASE WHEN priced = 1 THEN cost_usd END) AS cost_usd,
        SUM(CASE WHEN priced = 0 AND {_METERED} THEN 1 ELSE 0 END) AS unpriced,
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


class MeteringLedger:
    """The metering queries of :class:`~fleet.ledger.store.Ledger`."""

    async def record_metering(
        self: Store, usage: Sequence[UsageEvent], signals: Sequence[QuotaSignal]
    ) -> None:
        """Append a batch of usage rows and quota signals in one transaction."""
        if not usage and not signals:
            return
        # Built first: a naive time is refused before the transaction takes the lock.
        hosts = self._hosts
        usage_rows = [
            (*_usage_params(_storable(event)), hosts.get(event.agent, "local")) for event in usage
        ]
        signal_rows = [_signal_params(signal) for signal in signals]
        what = f"record {len(usage_rows)} usage rows and {len(signal_rows)} quota signals"
        async with self._lock:
            await self._appender.append(
                what, [(_INSERT_USAGE, usage_rows), (_INSERT_SIGNAL, signal_rows)]
            )

    async def record_metering_once(
        self: Store, key: str, usage: Sequence[UsageEvent], signals: Sequence[QuotaSignal]
    ) -> bool:
        """Append a batch as :meth:`record_metering` does, unless a batch under ``key`` was
        appended before; whether this one was. The key is claimed in the batch's own
        transaction, so the batch is in the ledger once however often it is offered."""
        hosts = self._hosts
        usage_rows = [
            (*_usage_params(_storable(event)), hosts.get(event.agent, "local")) for event in usage
        ]
        signal_rows = [_signal_params(signal) for signal in signals]
        async with self._transaction(f"record the metered batch {key}") as conn:
            cursor = await conn.execute(
                "INSERT INTO processed_events (connector, event_id, at) VALUES (?, ?, ?)"
                " ON CONFLICT DO NOTHING",
                (ONCE_SOURCE, key, self._epoch(None)),
            )
            if cursor.rowcount != 1:
                return False
            await conn.executemany(_INSERT_USAGE, usage_rows)
            await conn.executemany(_INSERT_SIGNAL, signal_rows)
        return True

    async def usage_events(
        self: Store,
        *,
        agent: str | None = None,
        since: datetime | None = None,
        limit: int | None = None,
    ) -> list[UsageEvent]:
        """Usage rows, oldest first; with ``limit``, the newest ``limit`` of them."""
        where, params = _filters(since=since, agent=agent)
        rows = await self._all(
            f"SELECT * FROM (SELECT * FROM usage {where} ORDER BY at DESC, id DESC LIMIT ?)"
            " AS newest ORDER BY at, id",
            (*params, NO_LIMIT if limit is None else limit),
        )
        return [_usage_event(row) for row in rows]

    async def usage_totals(
        self: Store, since: datetime, *, agent: str | None = None, host: str | None = None
    ) -> list[UsageTotal]:
        """Usage since ``since`` per agent, provider and model, by agent then model (with
        ``host``: of the requests its agents made there)."""
        where, params = _filters(since=since, agent=agent, host=host)
        rows = await self._all(
            f"{_TOTALS} {where} GROUP BY agent, provider, model ORDER BY agent, model, provider",
            params,
        )
        return [_usage_total(row) for row in rows]

    async def usage_between(
        self: Store, agent: str, since: datetime, until: datetime
    ) -> list[UsageTotal]:
        """``agent``'s usage from ``since`` to ``until`` (both included: one run's span) per
        provider and served model."""
        rows = await self._all(
            f"{_TOTALS} WHERE agent = ? AND at >= ? AND at <= ?"
            " GROUP BY agent, provider, model ORDER BY model, provider",
            (agent, to_epoch(since), to_epoch(until)),
        )
        return [_usage_total(row) for row in rows]

    async def downgrades_between(
        self: Store, agent: str, since: datetime, until: datetime
    ) -> list[tuple[str, str, int]]:
        """The requests the pacing policy moved to a cheaper model in that span: (model asked
        for, model served, how many)."""
        rows = await self._all(
            f"SELECT rewritten_from, {MODEL}, COUNT(*) FROM usage WHERE agent = ? AND at >= ?"
            " AND at <= ? AND rewritten_from IS NOT NULL GROUP BY 1, 2 ORDER BY 3 DESC, 1, 2",
            (agent, to_epoch(since), to_epoch(until)),
        )
        return [(str(row[0]), str(row[1]), int(row[2])) for row in rows]

    async def tokens_by_agent(self: Store, since: datetime) -> dict[str, int]:
        """Total tokens per agent since ``since``; agents without usage are absent."""
        rows = await self._all(
            f"SELECT agent, SUM({_TOTAL_TOKENS}) FROM usage WHERE at >= ? GROUP BY agent",
            (to_epoch(since),),
        )
        return {str(row[0]): int(row[1]) for row in rows}

    async def spend_by_agent(
        self: Store, since: datetime, until: datetime | None = None, *, by: str = "agent"
    ) -> dict[str, tuple[int, float | None]]:
        """Per agent (or per ``account`` or ``provider`` that served it: ``by``), the total
        tokens and priced cost from ``since`` up to (not including) ``until``; the cost is
        ``None`` when none of its rows was priced. Those without usage are absent."""
        if by not in _GROUPINGS:
            raise ValueError(f"cannot sum usage by {by!r}")
        where, params = _span(since, until)
        rows = await self._all(
            f"SELECT {by}, SUM({_TOTAL_TOKENS}), SUM(CASE WHEN priced = 1 THEN cost_usd END)"
            f" FROM usage {where} AND {by} IS NOT NULL GROUP BY {by}",
            params,
        )
        return {str(row[0]): (int(row[1]), row[2]) for row in rows}

    async def run_spend(self: Store, limit: int = 500) -> list[tuple[str, str | None, str, int]]:
        """The latest ``limit`` ended runs' spend, for learning what a launch costs: each
        run's agent runtime, model and prompt, and the tokens its agent used while it ran."""
        rows = await self._all(
            f"""SELECT a.runtime, a.model, COALESCE(a.prompt, ''),
                    (SELECT COALESCE(SUM({_TOTAL_TOKENS}), 0) FROM usage u
                      WHERE u.agent = r.agent AND u.at >= r.started_at AND u.at <= r.ended_at)
                FROM runs r JOIN agents a ON a.name = r.agent
                WHERE r.ended_at IS NOT NULL ORDER BY r.ended_at DESC, r.id DESC LIMIT ?""",
            (limit,),
        )
        return [(str(row[0]), row[1], str(row[2]), int(row[3])) for row in rows]

    async def usage_series(
        self: Store,
        since: datetime,
        *,
        agents: Sequence[str] | None,
        bucket_seconds: int,
        served_by: tuple[str, str] | None = None,
    ) -> list[tuple[datetime, int, float]]:
        """Use since ``since`` in buckets of ``bucket_seconds`` counted from ``since``: each
        bucket's start, total tokens and priced cost (0.0 when nothing was priced), oldest
        first. Buckets without usage are left out. ``agents``: only theirs (``None``: all)."""
        if bucket_seconds <= 0:
            raise ValueError(f"bucket_seconds must be more than 0, got {bucket_seconds}")
        if agents is not None and not agents:
            return []
        start = to_epoch(since)
        where, params = _span(since, None)
        if agents is not None:
            where += f" AND agent IN ({', '.join('?' for _ in agents)})"
            params.extend(agents)
        if served_by is not None:  # ("account" | "provider", its name)
            if served_by[0] not in _GROUPINGS:
                raise ValueError(f"cannot filter usage by {served_by[0]!r}")
            where += f" AND {served_by[0]} = ?"
            params.append(served_by[1])
        rows = await self._all(
            f"SELECT CAST((at - ?) / ? AS INTEGER) AS bucket, SUM({_TOTAL_TOKENS}),"
            " COALESCE(SUM(CASE WHEN priced = 1 THEN cost_usd END), 0.0)"
            f" FROM usage {where} GROUP BY bucket ORDER BY bucket",
            (start, bucket_seconds, *params),
        )
        return [
            (from_epoch(start + int(row[0]) * bucket_seconds), int(row[1]), float(row[2]))
            for row in rows
        ]

    async def quota_signals(
        self: Store,
        *,
        since: datetime | None = None,
        provider: str | None = None,
        agent: str | None = None,
    ) -> list[QuotaSignal]:
        """Quota signals, oldest first."""
        where, params = _filters(since=since, agent=agent, provider=provider)
        rows = await self._all(f"SELECT * FROM quota_signals {where} ORDER BY at, id", params)
        return [_quota_signal(row) for row in rows]

    async def latest_quota_signals(self: Store, provider: str | None = None) -> list[QuotaSignal]:
        """The newest signal of every (provider, header name), by provider then name."""
        where, params = _filters(provider=provider)
        rows = await self._all(
            "SELECT * FROM (SELECT *, row_number() OVER"
            " (PARTITION BY provider, name ORDER BY at DESC, id DESC) AS newness"
            f" FROM quota_signals {where}) AS ranked WHERE newness = 1 ORDER BY provider, name",
            params,
        )
        return [_quota_signal(row) for row in rows]


def _filters(
    *,
    since: datetime | None = None,
    agent: str | None = None,
    provider: str | None = None,
    host: str | None = None,
) -> tuple[str, list[object]]:
    """A ``WHERE`` clause for the filters given, and its parameters."""
    clauses: list[str] = []
    params: list[object] = []
    if since is not None:
        clauses.append("at >= ?")
        params.append(to_epoch(since))
    if agent is not None:
        clauses.append("agent = ?")
        params.append(agent)
    if provider is not None:
        clauses.append("provider = ?")
        params.append(provider)
    if host is not None:
        clauses.append("host = ?")
        params.append(host)
    return ("WHERE " + " AND ".join(clauses) if clauses else ""), params


def _span(since: datetime, until: datetime | None) -> tuple[str, list[object]]:
    """A ``WHERE`` clause for ``since <= at < until`` (no end without ``until``)."""
    if until is None:
        return "WHERE at >= ?", [to_epoch(since)]
    return "WHERE at >= ? AND at < ?", [to_epoch(since), to_epoch(until)]


def _storable(event: UsageEvent) -> UsageEvent:
    """``event`` as SQLite can hold it: a count past its integers (or a cost or time that
    is no number) would fail the whole batch, so such a row keeps what it says of the
    request, with no tokens, flagged."""
    tokens = event.tokens
    counts = (tokens.input, tokens.output, tokens.cache_read, tokens.cache_write, tokens.reasoning)
    numbers = (event.latency_ms, event.ttfb_ms or 0.0, event.cost_usd or 0.0)
    if all(0 <= count < _SQLITE_INT for count in counts) and all(map(math.isfinite, numbers)):
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


def _usage_params(event: UsageEvent) -> tuple[object, ...]:
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


def _signal_params(signal: QuotaSignal) -> tuple[object, ...]:
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


def _tokens(row: Row, suffix: str) -> Tokens:
    """The five token counts of a row whose columns are named ``input{suffix}`` and so on
    (``usage`` rows: ``input_tokens``; sums: ``input``)."""
    return Tokens(
        **{field: row[f"{field}{suffix}"] for field in _TOKEN_FIELDS},
    )


_TOKEN_FIELDS = ("input", "output", "cache_read", "cache_write", "reasoning")


def _usage_event(row: Row) -> UsageEvent:
    return UsageEvent(
        at=from_epoch(row["at"]),
        agent=row["agent"],
        provider=row["provider"],
        api=row["api"],
        requested_model=row["requested_model"],
        served_model=row["served_model"],
        tokens=_tokens(row, "_tokens"),
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


def _quota_signal(row: Row) -> QuotaSignal:
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


def _usage_total(row: Row) -> UsageTotal:
    return UsageTotal(
        agent=row["agent"],
        provider=row["provider"],
        model=row["model"],
        requests=row["requests"],
        tokens=_tokens(row, ""),
        cost_usd=row["cost_usd"],
        unpriced=row["unpriced"],
        partial=row["partial"],
        unmetered=row["unmetered"],
        errors=row["errors"],
        refused=row["refused"],
    )

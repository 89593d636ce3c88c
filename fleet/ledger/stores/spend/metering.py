"""The ledger's metering tables: ``usage`` (one row per proxied model request) and
``quota_signals`` (the rate-limit headers providers sent), their batch writes (and the
batches written once under a key, which the metering journal replays), and the sums the
``usage`` command and ``ps`` show, the pacing reads and the report's typical day is
reckoned from.

Each batch is one ``BEGIN IMMEDIATE`` transaction under the ledger's lock like
every other write, in one trip to the ledger's :class:`~fleet.ledger.database.appender.Appender`.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import UTC, date, datetime

from fleet.ledger.database.access import Store
from fleet.ledger.database.engine import NO_LIMIT
from fleet.ledger.records.epoch import from_epoch, to_epoch
from fleet.ledger.stores.spend.usage_rows import (
    GROUPINGS,
    INSERT_SIGNAL,
    INSERT_USAGE,
    MODEL,
    ONCE_SOURCE,
    TOTAL_TOKENS,
    TOTALS,
    UsageTotal,
    quota_signal,
    signal_params,
    storable,
    usage_event,
    usage_params,
    usage_total,
)
from fleet.metering.counting.events import QuotaSignal, UsageEvent

log = logging.getLogger(__name__)
DAY_SECONDS = 86_400
"""A UTC day, in the seconds ``usage.at`` counts in."""


class MeteringStore(Store):
    """Usage rows and quota signals: their batch writes and their sums."""

    async def record_metering(
        self, usage: Sequence[UsageEvent], signals: Sequence[QuotaSignal]
    ) -> None:
        """Append a batch of usage rows and quota signals in one transaction."""
        if not usage and not signals:
            return
        # Built first: a naive time is refused before the transaction takes the lock.
        hosts = self._hosts
        usage_rows = [
            (*usage_params(storable(event)), hosts.get(event.agent, "local")) for event in usage
        ]
        signal_rows = [signal_params(signal) for signal in signals]
        what = f"record {len(usage_rows)} usage rows and {len(signal_rows)} quota signals"
        async with self._lock:
            await self._appender.append(
                what, [(INSERT_USAGE, usage_rows), (INSERT_SIGNAL, signal_rows)]
            )

    async def record_metering_once(
        self, key: str, usage: Sequence[UsageEvent], signals: Sequence[QuotaSignal]
    ) -> bool:
        """Append a batch as :meth:`record_metering` does, unless a batch under ``key`` was
        appended before; whether this one was. The key is claimed in the batch's own
        transaction, so the batch is in the ledger once however often it is offered."""
        hosts = self._hosts
        usage_rows = [
            (*usage_params(storable(event)), hosts.get(event.agent, "local")) for event in usage
        ]
        signal_rows = [signal_params(signal) for signal in signals]
        async with self._transaction(f"record the metered batch {key}") as conn:
            cursor = await conn.execute(
                "INSERT INTO processed_events (connector, event_id, at) VALUES (?, ?, ?)"
                " ON CONFLICT DO NOTHING",
                (ONCE_SOURCE, key, self._epoch(None)),
            )
            if cursor.rowcount != 1:
                return False
            await conn.executemany(INSERT_USAGE, usage_rows)
            await conn.executemany(INSERT_SIGNAL, signal_rows)
        return True

    async def usage_events(
        self,
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
        return [usage_event(row) for row in rows]

    async def usage_totals(
        self, since: datetime, *, agent: str | None = None, host: str | None = None
    ) -> list[UsageTotal]:
        """Usage since ``since`` per agent, provider and model, by agent then model (with
        ``host``: of the requests its agents made there)."""
        where, params = _filters(since=since, agent=agent, host=host)
        rows = await self._all(
            f"{TOTALS} {where} GROUP BY agent, provider, model ORDER BY agent, model, provider",
            params,
        )
        return [usage_total(row) for row in rows]

    async def usage_between(self, agent: str, since: datetime, until: datetime) -> list[UsageTotal]:
        """``agent``'s usage from ``since`` to ``until`` (both included: one run's span) per
        provider and served model."""
        rows = await self._all(
            f"{TOTALS} WHERE agent = ? AND at >= ? AND at <= ?"
            " GROUP BY agent, provider, model ORDER BY model, provider",
            (agent, to_epoch(since), to_epoch(until)),
        )
        return [usage_total(row) for row in rows]

    async def downgrades_between(
        self, agent: str, since: datetime, until: datetime
    ) -> list[tuple[str, str, int]]:
        """The requests the pacing policy moved to a cheaper model in that span: (model asked
        for, model served, how many)."""
        rows = await self._all(
            f"SELECT rewritten_from, {MODEL}, COUNT(*) FROM usage WHERE agent = ? AND at >= ?"
            " AND at <= ? AND rewritten_from IS NOT NULL GROUP BY 1, 2 ORDER BY 3 DESC, 1, 2",
            (agent, to_epoch(since), to_epoch(until)),
        )
        return [(str(row[0]), str(row[1]), int(row[2])) for row in rows]

    async def tokens_by_agent(self, since: datetime) -> dict[str, int]:
        """Total tokens per agent since ``since``; agents without usage are absent."""
        rows = await self._all(
            f"SELECT agent, SUM({TOTAL_TOKENS}) FROM usage WHERE at >= ? GROUP BY agent",
            (to_epoch(since),),
        )
        return {str(row[0]): int(row[1]) for row in rows}

    async def spend_by_agent(
        self, since: datetime, until: datetime | None = None, *, by: str = "agent"
    ) -> dict[str, tuple[int, float | None]]:
        """Per agent (or per ``account`` or ``provider`` that served it: ``by``), the total
        tokens and priced cost from ``since`` up to (not including) ``until``; the cost is
        ``None`` when none of its rows was priced. Those without usage are absent."""
        if by not in GROUPINGS:
            raise ValueError(f"cannot sum usage by {by!r}")
        where, params = _span(since, until)
        rows = await self._all(
            f"SELECT {by}, SUM({TOTAL_TOKENS}), SUM(CASE WHEN priced = 1 THEN cost_usd END)"
            f" FROM usage {where} AND {by} IS NOT NULL GROUP BY {by}",
            params,
        )
        return {str(row[0]): (int(row[1]), row[2]) for row in rows}

    async def daily_spend(
        self, since: datetime, until: datetime | None = None, *, by: str = "agent"
    ) -> dict[str, dict[date, tuple[int, float | None]]]:
        """Per agent (or per ``account``, ``provider`` or ``host``: ``by``) and per UTC day,
        the total tokens and priced cost from ``since`` up to (not including) ``until``; the
        cost is ``None`` on a day none of its rows was priced. Days without usage are
        absent."""
        if by not in GROUPINGS:
            raise ValueError(f"cannot sum usage by {by!r}")
        where, params = _span(since, until)
        rows = await self._all(
            f"SELECT {by}, CAST(at / {DAY_SECONDS} AS INTEGER) AS day, SUM({TOTAL_TOKENS}),"
            " SUM(CASE WHEN priced = 1 THEN cost_usd END)"
            f" FROM usage {where} AND {by} IS NOT NULL GROUP BY {by}, day ORDER BY {by}, day",
            params,
        )
        found: dict[str, dict[date, tuple[int, float | None]]] = {}
        for row in rows:
            day = datetime.fromtimestamp(int(row[1]) * DAY_SECONDS, UTC).date()
            cost = None if row[3] is None else float(row[3])
            found.setdefault(str(row[0]), {})[day] = (int(row[2]), cost)
        return found

    async def run_spend(self, limit: int = 500) -> list[tuple[str, str | None, str, int]]:
        """The latest ``limit`` ended runs' spend, for learning what a launch costs: each
        run's agent runtime, model and prompt, and the tokens its agent used while it ran."""
        rows = await self._all(
            f"""SELECT a.runtime, a.model, COALESCE(a.prompt, ''),
                    (SELECT COALESCE(SUM({TOTAL_TOKENS}), 0) FROM usage u
                      WHERE u.agent = r.agent AND u.at >= r.started_at AND u.at <= r.ended_at)
                FROM runs r JOIN agents a ON a.name = r.agent
                WHERE r.ended_at IS NOT NULL ORDER BY r.ended_at DESC, r.id DESC LIMIT ?""",
            (limit,),
        )
        return [(str(row[0]), row[1], str(row[2]), int(row[3])) for row in rows]

    async def usage_series(
        self,
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
            if served_by[0] not in GROUPINGS:
                raise ValueError(f"cannot filter usage by {served_by[0]!r}")
            where += f" AND {served_by[0]} = ?"
            params.append(served_by[1])
        rows = await self._all(
            f"SELECT CAST((at - ?) / ? AS INTEGER) AS bucket, SUM({TOTAL_TOKENS}),"
            " COALESCE(SUM(CASE WHEN priced = 1 THEN cost_usd END), 0.0)"
            f" FROM usage {where} GROUP BY bucket ORDER BY bucket",
            (start, bucket_seconds, *params),
        )
        return [
            (from_epoch(start + int(row[0]) * bucket_seconds), int(row[1]), float(row[2]))
            for row in rows
        ]

    async def quota_signals(
        self,
        *,
        since: datetime | None = None,
        provider: str | None = None,
        agent: str | None = None,
    ) -> list[QuotaSignal]:
        """Quota signals, oldest first."""
        where, params = _filters(since=since, agent=agent, provider=provider)
        rows = await self._all(f"SELECT * FROM quota_signals {where} ORDER BY at, id", params)
        return [quota_signal(row) for row in rows]

    async def latest_quota_signals(self, provider: str | None = None) -> list[QuotaSignal]:
        """The newest signal of every (provider, header name), by provider then name."""
        where, params = _filters(provider=provider)
        rows = await self._all(
            "SELECT * FROM (SELECT *, row_number() OVER"
            " (PARTITION BY provider, name ORDER BY at DESC, id DESC) AS newness"
            f" FROM quota_signals {where}) AS ranked WHERE newness = 1 ORDER BY provider, name",
            params,
        )
        return [quota_signal(row) for row in rows]


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

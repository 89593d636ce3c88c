"""Usage rows written per second by concurrent writers, on SQLite and on PostgreSQL.

    .venv/bin/python -m bench.ledger_writers [--writers 8] [--rows 4000] [--batches 1,16]
        [--rounds 3] [--json out.json]

Each writer is a :class:`~fleet.ledger.store.Ledger` of its own (its own connections, as
orchestrators or proxies sharing a ledger have), appending usage rows with
``record_metering`` — the metering proxy's write — in batches of each size given. SQLite is
a file in a temporary directory; PostgreSQL is a real server started for the run
(``tests/postgres_server.py``; durability settings as the tests', ``fsync=off``). The
engines run interleaved, round after round, and every run's row count is checked against
what was written. Goal: at least 5,000 rows/s with 8 writers on both.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from fleet.ledger import Ledger
from fleet.ledger.database.location import LedgerLocation
from fleet.metering.counting.events import Outcome, Tokens, UsageEvent
from fleet.timing.clock import SystemClock
from tests.postgres_server import PostgresServer, find_bin_dir

T0 = datetime(2026, 11, 1, tzinfo=UTC)


def _event(writer: int, n: int) -> UsageEvent:
    return UsageEvent(
        at=T0 + timedelta(milliseconds=n),
        agent=f"agent-{writer}",
        provider="anthropic",
        api="anthropic",
        requested_model="claude-sonnet-4",
        served_model="claude-sonnet-4-20250514",
        tokens=Tokens(input=100, output=40, cache_read=2000, cache_write=300, reasoning=10),
        stream=True,
        status=200,
        outcome=Outcome.OK,
        latency_ms=812.5,
        ttfb_ms=120.25,
        request_id=f"req_{writer}_{n}",
        cost_usd=0.0125,
        priced=True,
    )


async def _run(location: LedgerLocation, writers: int, rows: int, batch: int) -> float:
    """Rows per second of ``writers`` writers appending ``rows`` rows each."""
    ledgers = [await Ledger.connect(location, SystemClock()) for _ in range(writers)]
    try:
        before = len(await ledgers[0].metering.usage_events())
        batches = [
            [
                [_event(w, n) for n in range(start, min(rows, start + batch))]
                for start in range(0, rows, batch)
            ]
            for w in range(writers)
        ]

        async def write(ledger: Ledger, mine: list[list[UsageEvent]]) -> None:
            for events in mine:
                await ledger.metering.record_metering(events, [])

        started = time.perf_counter()
        await asyncio.gather(*(write(ledgers[w], batches[w]) for w in range(writers)))
        took = time.perf_counter() - started
        written = len(await ledgers[0].metering.usage_events()) - before
        if written != writers * rows:
            raise RuntimeError(f"{written} rows in the ledger, {writers * rows} written")
        return writers * rows / took
    finally:
        for ledger in ledgers:
            await ledger.close()


async def main(args: argparse.Namespace) -> dict[str, dict[str, list[float]]]:
    bin_dir = find_bin_dir()
    if bin_dir is None:
        raise SystemExit("no PostgreSQL binaries (apt-get install postgresql)")
    server = PostgresServer(None, bin_dir=bin_dir)
    server.start()
    results: dict[str, dict[str, list[float]]] = {}
    try:
        with tempfile.TemporaryDirectory(prefix="fw-bench-ledger-") as tmp:
            for round_ in range(args.rounds):
                for batch in args.batches:
                    for engine in ("sqlite", "postgresql"):
                        name = f"r{round_}b{batch}"
                        if engine == "sqlite":
                            location = LedgerLocation(Path(tmp) / f"{name}.db")
                        else:
                            server.create_database(name)
                            location = LedgerLocation(Path(tmp) / "x.db", server.dsn(name))
                        rate = await _run(location, args.writers, args.rows, batch)
                        key = f"batch {batch}"
                        results.setdefault(key, {}).setdefault(engine, []).append(rate)
    finally:
        server.close()
    return results


def _report(results: dict[str, dict[str, list[float]]], writers: int) -> None:
    print(f"usage rows/s, {writers} writers (median of rounds; goal >= 5,000 on both)")
    print(f"{'':10} {'SQLite':>10} {'PostgreSQL':>11} {'PG/SQLite':>10}")
    for key, engines in results.items():
        sqlite = statistics.median(engines["sqlite"])
        postgres = statistics.median(engines["postgresql"])
        print(f"{key:10} {sqlite:10,.0f} {postgres:11,.0f} {postgres / sqlite:9.2f}x")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="bench.ledger_writers", description=__doc__)
    parser.add_argument("--writers", type=int, default=8)
    parser.add_argument("--rows", type=int, default=4000, help="rows per writer")
    parser.add_argument("--batches", type=lambda s: [int(x) for x in s.split(",")], default=[1, 16])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--json", type=Path)
    arguments = parser.parse_args()
    found = asyncio.run(main(arguments))
    _report(found, arguments.writers)
    if arguments.json is not None:
        arguments.json.write_text(json.dumps(found, indent=2))

"""Webhook deliveries taken once, on SQLite and PostgreSQL: a delivery's id and its body's
digest claimed together (group-committed), exactly one of many takes of one id or one body
at once — within one orchestrator and between two — kept across a restart, nothing taken
(nor audited) when the commit is refused, and SQLite's WAL kept small under a stream of
takes."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from fleet.errors import LeaseLost
from fleet.ledger import Ledger
from fleet.ledger.database.location import LedgerLocation
from fleet.timing.clock import ManualClock
from tests.unit.chat_fakes import T0

ROUNDS = 24


@contextmanager
def file_held(ledger: Ledger, location: LedgerLocation) -> Iterator[sqlite3.Connection | None]:
    """On SQLite, another process's write transaction holding the file until the block
    ends (the ledger's claims then wait on its thread, and group up meanwhile)."""
    if ledger.engine != "sqlite":
        yield None
        return
    holder = sqlite3.connect(location.path, isolation_level=None, check_same_thread=False)
    try:
        holder.execute("BEGIN IMMEDIATE")
        yield holder
    finally:
        if holder.in_transaction:
            holder.execute("COMMIT")
        holder.close()


async def test_takes_of_one_id_or_one_body_at_once_hold_once(
    ledger: Ledger, ledger_location: LedgerLocation
) -> None:
    """Many takes at once, grouped into few transactions: each delivery id is taken once
    (the other takes of it, under other bodies, are refused), each body once (under other
    ids, refused); a body refused leaves its id free."""
    with file_held(ledger, ledger_location) as holder:
        takes = asyncio.gather(
            *(
                ledger.forge.take_delivery("gh", f"d-{i % 4}", "issues", f"kept {i}", f"body:{i}")
                for i in range(ROUNDS)
            ),
            *(
                ledger.forge.take_delivery("gh", f"e-{i}", "issues", f"kept {i}", "body:same")
                for i in range(ROUNDS)
            ),
        )
        if holder is not None:
            await asyncio.sleep(0.2)  # the takes wait on the file, and pile up
            holder.execute("COMMIT")
        taken = await takes
    by_id, by_body = taken[:ROUNDS], taken[ROUNDS:]
    assert [sum(by_id[i::4]) for i in range(4)] == [1, 1, 1, 1]
    assert by_id[:4] == [True] * 4  # the first of each, in the order they came
    assert sum(by_body) == 1 and by_body[0]
    kept = await ledger.forge.unsettled_deliveries(T0)
    assert sorted(text for _, _, text in kept) == ["kept 0", "kept 0", "kept 1", "kept 2", "kept 3"]
    # A body refused left its delivery id free: the same id with a new body is taken.
    assert await ledger.forge.take_delivery("gh", "e-5", "issues", "", "body:new")


async def test_two_orchestrators_take_each_delivery_once(pair: tuple[Ledger, Ledger]) -> None:
    """Both writers take the same deliveries at once, by id and by body: one wins each."""
    first, second = pair
    won = await asyncio.gather(
        *(
            ledger.forge.take_delivery("gh", f"d-{i}", "issues", "", f"body:{i}-{n}")
            for i in range(ROUNDS)
            for n, ledger in enumerate((first, second))
        )
    )
    assert [won[2 * i] + won[2 * i + 1] for i in range(ROUNDS)] == [1] * ROUNDS
    replayed = await asyncio.gather(
        *(
            ledger.forge.take_delivery("gh", f"r-{i}-{n}", "issues", "", f"body:{i}-0")
            for i in range(ROUNDS)
            for n, ledger in enumerate((first, second))
        )
    )
    assert not any(replayed[0::2])  # the first's bodies, taken above under d-i or not at all
    assert sum(replayed) <= ROUNDS


async def test_a_taken_delivery_is_had_after_a_restart(
    ledger_location: LedgerLocation, clock: ManualClock
) -> None:
    """Taken, the ledger closed and opened again: its id and its body are had, and its
    event is kept until acted on."""
    ledger = await Ledger.connect(ledger_location, clock)
    try:
        assert await ledger.forge.take_delivery("gh", "d-1", "issues", '{"e": 1}', "body:1")
    finally:
        await ledger.close()
    again = await Ledger.connect(ledger_location, clock)
    try:
        assert not await again.forge.take_delivery("gh", "d-1", "issues", "", "body:2")
        assert not await again.forge.take_delivery("gh", "d-2", "issues", "", "body:1")
        assert await again.forge.unsettled_deliveries(T0) == [("gh", "d-1", '{"e": 1}')]
    finally:
        await again.close()


async def test_a_refused_commit_takes_nothing(
    pair: tuple[Ledger, Ledger], clock: ManualClock
) -> None:
    """An orchestrator whose lease was taken over: its takes and audit lines are refused
    (LeaseLost), none answered as taken, and nothing of them is in the ledger — the new
    holder takes the same deliveries."""
    first, second = pair
    held = await first.leases.acquire_lease("orchestrator", "a", ttl=10)
    first.fence("orchestrator", "a", held.epoch)
    assert await first.forge.take_delivery("gh", "d-0", "issues", "", "body:0")
    clock.advance(11)
    assert (await second.leases.acquire_lease("orchestrator", "b", ttl=10)).holder == "b"
    refused = await asyncio.gather(
        *(first.forge.take_delivery("gh", f"d-{i}", "issues", "", f"body:{i}") for i in (1, 2)),
        first.forge.audit_forge(None, "-", "webhook", False, "refused"),
        return_exceptions=True,
    )
    assert [type(r) for r in refused] == [LeaseLost] * 3
    assert await second.forge.take_delivery("gh", "d-1", "issues", "", "body:1")
    assert await second.forge.take_delivery("gh", "d-2", "issues", "", "body:2")
    assert not await second.forge.take_delivery("gh", "d-0", "issues", "", "body:other")
    assert await second.forge.forge_audit() == []


async def test_the_wal_stays_small_under_a_stream_of_takes(
    tmp_path: Path, clock: ManualClock
) -> None:
    """SQLite: takes made one after another, nothing else written: the WAL is checkpointed
    as they go and starts over, so it stays a few MB (a thousand takes with their events
    kept would make it ~20 MB)."""
    ledger = await Ledger.open(tmp_path / "ledger.db", clock)
    try:
        for n in range(1000):
            assert await ledger.forge.take_delivery("gh", f"d-{n}", "issues", "e" * 1500, f"b-{n}")
        assert (tmp_path / "ledger.db-wal").stat().st_size < 8 * 1024 * 1024
    finally:
        await ledger.close()

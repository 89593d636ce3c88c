"""Tests for fleet.ledger.stores.running.spawn_queue: the spawn queue table (migration 9)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from fleet.ledger import Ledger, QueuedSpawn, SpawnAsk
from fleet.timing.clock import ManualClock
from tests.unit.chat_fakes import T0

HOST = "host-a"


def ask(agent: str = "coder-1", **more: object) -> SpawnAsk:
    fields: dict[str, object] = {
        "agent": agent,
        "command": f'spawn {agent} --prompt "go"',
        "sender": "@ann:example.org",
        "connector": "matrix",
        "room": "!r:example.org",
        "reason": "global max_running 1 reached (1 running)",
        "request": {"prompt": "go", "urgent": False},
    }
    fields.update(more)
    return SpawnAsk(**fields)  # type: ignore[arg-type]


async def test_an_entry_is_saved_whole_and_listed_in_order(ledger: Ledger) -> None:
    """enqueue_spawn returns the row as saved: request, who, where, why, when, host."""
    first = await ledger.spawn_queue.enqueue_spawn(ask(thread="$t"), host=HOST)
    assert first == QueuedSpawn(
        id=1,
        agent="coder-1",
        request={"prompt": "go", "urgent": False},
        command='spawn coder-1 --prompt "go"',
        sender="@ann:example.org",
        connector="matrix",
        room="!r:example.org",
        thread="$t",
        reason="global max_running 1 reached (1 running)",
        queued_at=T0,
        not_before=None,
        host=HOST,
        status="waiting",
    )
    later = T0 + timedelta(hours=1)
    second = await ledger.spawn_queue.enqueue_spawn(ask("coder-2", not_before=later), host="host-b")
    assert second.not_before == later and not second.due(T0) and second.due(later)
    assert [e.id for e in await ledger.spawn_queue.queued_spawns()] == [1, 2]
    assert await ledger.spawn_queue.queued_spawns(HOST) == [first]
    assert await ledger.spawn_queue.queued_spawn(2) == second


async def test_an_entry_is_started_once(ledger: Ledger) -> None:
    """Only a waiting entry can be marked starting; finishing removes only a starting one."""
    entry = await ledger.spawn_queue.enqueue_spawn(ask(), host=HOST)
    assert not await ledger.spawn_queue.finish_spawn(entry.id)
    assert await ledger.spawn_queue.mark_spawn_starting(entry.id)
    assert not await ledger.spawn_queue.mark_spawn_starting(entry.id)
    starting = await ledger.spawn_queue.queued_spawn(entry.id)
    assert starting is not None and starting.status == "starting"
    assert await ledger.spawn_queue.finish_spawn(entry.id)
    assert await ledger.spawn_queue.queued_spawn(entry.id) is None
    assert not await ledger.spawn_queue.finish_spawn(entry.id)


async def test_a_start_turned_away_again_goes_back_to_wait_in_its_place(ledger: Ledger) -> None:
    """requeue_spawn keeps the id (the place) with the new reason and time."""
    entry = await ledger.spawn_queue.enqueue_spawn(ask(), host=HOST)
    await ledger.spawn_queue.enqueue_spawn(ask("coder-2"), host=HOST)
    await ledger.spawn_queue.mark_spawn_starting(entry.id)
    until = T0 + timedelta(hours=2)
    await ledger.spawn_queue.requeue_spawn(entry.id, "agent:coder-1 is queued until 14:00", until)
    assert not await ledger.spawn_queue.finish_spawn(entry.id)
    [again, _] = await ledger.spawn_queue.queued_spawns(HOST)
    assert (again.id, again.status, again.reason, again.not_before) == (
        entry.id,
        "waiting",
        "agent:coder-1 is queued until 14:00",
        until,
    )


async def test_cancel_drops_a_waiting_entry_only(ledger: Ledger) -> None:
    """cancel_spawn returns what it removed; a starting or unknown entry gives None."""
    entry = await ledger.spawn_queue.enqueue_spawn(ask(), host=HOST)
    other = await ledger.spawn_queue.enqueue_spawn(ask("coder-2"), host=HOST)
    assert await ledger.spawn_queue.cancel_spawn(entry.id) == entry
    assert await ledger.spawn_queue.cancel_spawn(entry.id) is None
    await ledger.spawn_queue.mark_spawn_starting(other.id)
    assert await ledger.spawn_queue.cancel_spawn(other.id) is None
    assert await ledger.spawn_queue.cancel_spawn(99) is None


async def test_the_queue_survives_reopening_and_ids_are_never_reused(tmp_path: Path) -> None:
    """Entries are in the file: a new Ledger on it sees them; a removed newest id is not
    given again."""
    path = tmp_path / "q.db"
    first = await Ledger.open(path, ManualClock(T0))
    try:
        kept = await first.spawn_queue.enqueue_spawn(ask(), host=HOST)
        gone = await first.spawn_queue.enqueue_spawn(ask("coder-2"), host=HOST)
        await first.spawn_queue.cancel_spawn(gone.id)
    finally:
        await first.close()
    second = await Ledger.open(path, ManualClock(T0))
    try:
        assert await second.spawn_queue.queued_spawns(HOST) == [kept]
        assert (await second.spawn_queue.enqueue_spawn(ask("coder-3"), host=HOST)).id == gone.id + 1
    finally:
        await second.close()

"""Two writers racing on one ledger — two connections, as two orchestrators sharing a
PostgreSQL ledger (or two processes on one SQLite file) would be: every claim is won once,
an agent is created once, a queued launch is taken once, and the lease has one holder,
whose fence refuses the other's writes."""

from __future__ import annotations

import asyncio

import pytest

from fleet.errors import LeaseLost
from fleet.ledger import Ledger, SpawnAsk
from fleet.model import AgentSpec, AgentState, DesiredState
from fleet.timing.clock import ManualClock
from tests.unit.chat_fakes import T0

ROUNDS = 40


async def test_each_chat_event_is_claimed_by_exactly_one_writer(
    pair: tuple[Ledger, Ledger],
) -> None:
    """Both writers claim the same events at once: every event has exactly one winner."""
    first, second = pair
    events = [f"$event-{i}" for i in range(ROUNDS)]
    won = await asyncio.gather(
        *(
            ledger.chat.claim_event("matrix", event)
            for event in events
            for ledger in (first, second)
        )
    )
    per_event = [won[2 * i] + won[2 * i + 1] for i in range(ROUNDS)]
    assert per_event == [1] * ROUNDS


async def test_each_chat_message_is_claimed_by_exactly_one_writer(
    pair: tuple[Ledger, Ledger],
) -> None:
    """A message both writers see is answered by one of them only."""
    first, second = pair
    won = await asyncio.gather(
        *(
            ledger.chat.claim_message("discord", f"m{i}", sender="ann", room="r", thread=None)
            for i in range(ROUNDS)
            for ledger in (first, second)
        )
    )
    assert [won[2 * i] + won[2 * i + 1] for i in range(ROUNDS)] == [1] * ROUNDS


async def test_an_agent_spawned_by_both_writers_at_once_is_created_once(
    pair: tuple[Ledger, Ledger],
) -> None:
    """Two upserts of one new agent race: one row, one `created` event."""
    first, second = pair
    names = [f"agent-{i}" for i in range(ROUNDS)]
    await asyncio.gather(
        *(
            ledger.agents.upsert_agent(AgentSpec(name=name, runtime="stub"), DesiredState.RUNNING)
            for name in names
            for ledger in (first, second)
        )
    )
    assert [a.name for a in await first.agents.list_agents()] == sorted(names)
    for name in names:
        events = await second.agents.agent_events(name)
        assert [e.reason for e in events] == ["created"]


async def test_a_queued_launch_is_taken_by_exactly_one_writer(
    pair: tuple[Ledger, Ledger],
) -> None:
    """Two pickers race for the same queued launches: each is marked starting once."""
    first, second = pair
    entries = [
        await first.spawn_queue.enqueue_spawn(
            SpawnAsk(
                agent=f"a{i}", command="spawn", sender="ann", connector="c", room="r", reason="cap"
            ),
            host="h",
        )
        for i in range(ROUNDS)
    ]
    won = await asyncio.gather(
        *(
            ledger.spawn_queue.mark_spawn_starting(e.id)
            for e in entries
            for ledger in (first, second)
        )
    )
    assert [won[2 * i] + won[2 * i + 1] for i in range(ROUNDS)] == [1] * ROUNDS


async def test_the_lease_has_one_holder_and_fences_the_other(
    pair: tuple[Ledger, Ledger], clock: ManualClock
) -> None:
    """Both take the lease at once: one holds it; the holder's fence passes its writes;
    after it expires the other takes it with the next epoch, and the old holder's fenced
    writes are refused from then on, renewal included."""
    first, second = pair
    leases = await asyncio.gather(
        first.leases.acquire_lease("orchestrator", "a", ttl=10),
        second.leases.acquire_lease("orchestrator", "b", ttl=10),
    )
    assert {lease.holder for lease in leases} == {leases[0].holder}
    holder, other = (first, second) if leases[0].holder == "a" else (second, first)
    me, them = ("a", "b") if holder is first else ("b", "a")
    held = leases[0]
    holder.fence("orchestrator", me, held.epoch)
    await holder.agents.upsert_agent(AgentSpec(name="coder", runtime="stub"), DesiredState.RUNNING)
    # Not expired: the other cannot take it, and renewing keeps the epoch.
    assert (await other.leases.acquire_lease("orchestrator", them, ttl=10)).holder == me
    assert (await holder.leases.acquire_lease("orchestrator", me, ttl=10)).epoch == held.epoch
    clock.advance(11)  # the holder was paused past its expiry
    taken = await other.leases.acquire_lease("orchestrator", them, ttl=10)
    assert (taken.holder, taken.epoch) == (them, held.epoch + 1)
    with pytest.raises(LeaseLost, match="no longer holds"):
        await holder.agents.set_state("coder", AgentState.RUNNING, "woke up")
    with pytest.raises(LeaseLost):
        await holder.leases.acquire_lease("orchestrator", me, ttl=10)
    assert (await other.agents.get_agent("coder")).state is AgentState.PENDING  # type: ignore[union-attr]


async def test_a_released_lease_is_taken_at_once(
    pair: tuple[Ledger, Ledger], clock: ManualClock
) -> None:
    """A holder stopping cleanly releases the lease: the standby need not wait the expiry."""
    first, second = pair
    assert (await first.leases.acquire_lease("orchestrator", "a", ttl=60)).holder == "a"
    assert await first.leases.release_lease("orchestrator", "a")
    assert (await second.leases.acquire_lease("orchestrator", "b", ttl=60)).holder == "b"
    assert clock.now() == T0

"""The messages between agents counted by kind and state (``/metrics``' gauge), on SQLite
and PostgreSQL: every message counted once, in the state it is in now."""

from __future__ import annotations

from fleet.ledger import Ledger
from fleet.ledger.records.peers import NewMessage


async def test_messages_are_counted_by_kind_and_state(ledger: Ledger) -> None:
    assert await ledger.messages.counts() == {}
    first = await ledger.messages.add_message(NewMessage("coder", "reviewer", "a"))
    await ledger.messages.add_message(NewMessage("coder", "reviewer", "b"))
    await ledger.messages.add_message(
        NewMessage("coder", "ops", "c", state="refused", why="no agent named ops")
    )
    await ledger.messages.add_message(NewMessage("coder", "migrator", "d", kind="task"))
    assert await ledger.messages.delivered(first.id, 3)
    assert await ledger.messages.counts() == {
        ("message", "delivered"): 1,
        ("message", "queued"): 1,
        ("message", "refused"): 1,
        ("task", "queued"): 1,
    }

"""Tests for fleet.ledger.stores.operators.chat: claims of chat messages and what came of each."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from fleet.ledger import AnswerState, Ledger
from fleet.timing.clock import ManualClock
from tests.unit.chat_fakes import T0


async def claim(ledger: Ledger, event_id: str = "$m1", thread: str | None = "$t") -> bool:
    return await ledger.chat.claim_message(
        "matrix", event_id, sender="@ann:hs", room="!r:hs", thread=thread
    )


async def test_a_claimed_message_is_pending_until_settled(ledger: Ledger) -> None:
    """Claiming notes the message pending, with where it was and who wrote it."""
    assert await claim(ledger)
    answer = await ledger.chat.chat_answer("matrix", "$m1")
    assert answer is not None
    assert (answer.state, answer.sender, answer.room, answer.thread) == (
        "pending",
        "@ann:hs",
        "!r:hs",
        "$t",
    )
    await ledger.chat.settle_answer("matrix", "$m1", "ran", command="stop", outcome="ok")
    answer = await ledger.chat.chat_answer("matrix", "$m1")
    assert answer is not None
    assert (answer.state, answer.command, answer.outcome) == ("ran", "stop", "ok")


async def test_a_message_is_claimed_once_and_shares_the_event_claims(ledger: Ledger) -> None:
    """A replayed message is not claimed again; its id is a processed event like any other."""
    assert await claim(ledger)
    await ledger.chat.settle_answer("matrix", "$m1", "ignored")
    assert not await claim(ledger)
    assert not await ledger.chat.claim_event("matrix", "$m1")
    answer = await ledger.chat.chat_answer("matrix", "$m1")
    assert answer is not None and answer.state == "ignored"  # the replay changed nothing


async def test_an_edit_takes_over_only_what_nothing_was_done_about(ledger: Ledger) -> None:
    """Ignored and refused messages can be taken over; pending, ran or unknown ones cannot."""
    settled: tuple[tuple[str, AnswerState], ...] = (
        ("$i", "ignored"),
        ("$f", "refused"),
        ("$r", "ran"),
    )
    for event_id, state in settled:
        await claim(ledger, event_id)
        await ledger.chat.settle_answer("matrix", event_id, state)
    await claim(ledger, "$p")
    assert await ledger.chat.take_over("matrix", "$i")
    assert await ledger.chat.take_over("matrix", "$f")
    assert not await ledger.chat.take_over("matrix", "$r")
    assert not await ledger.chat.take_over("matrix", "$p")
    assert not await ledger.chat.take_over("matrix", "$unknown")
    assert not await ledger.chat.take_over("matrix", "$i")  # it is pending now
    assert await ledger.chat.chat_answer("matrix", "$unknown") is None


async def test_of_two_racing_edits_one_takes_the_message_over(ledger: Ledger) -> None:
    """Taking over is atomic: two edits at once, one wins."""
    await claim(ledger)
    await ledger.chat.settle_answer("matrix", "$m1", "ignored")
    won = await asyncio.gather(*(ledger.chat.take_over("matrix", "$m1") for _ in range(5)))
    assert sorted(won) == [False, False, False, False, True]


async def test_answers_are_pruned_with_the_processed_events(
    ledger: Ledger, clock: ManualClock
) -> None:
    """Pruning forgets the answers to messages last handled before the cutoff."""
    await claim(ledger, "$old")
    clock.advance(3600)
    await claim(ledger, "$new")
    assert await ledger.chat.prune_events(T0 + timedelta(seconds=1)) == 1
    assert await ledger.chat.chat_answer("matrix", "$old") is None
    assert await ledger.chat.chat_answer("matrix", "$new") is not None

"""What waits on one request's answer stream for an agent slow to read: the server's
messages about it within a cap of messages and of bytes, the answer always last."""

from __future__ import annotations

from fleet.mcp.door.wire.exchange import RELAYED, RELAYED_BYTES, Answer, Exchange
from fleet.mcp.hooks import Outcome
from fleet.mcp.wire import MAX_MESSAGE, JSONRPCRequest


def streamed() -> Exchange:
    request = JSONRPCRequest(jsonrpc="2.0", id=1, method="tools/call", params={"name": "t"})
    return Exchange(request, 0.0, 10, True)


async def test_messages_waiting_are_capped_in_bytes_not_only_in_count() -> None:
    """Messages of nearly a megabyte each stop being kept once the bytes waiting reach the
    cap, far below the count cap; once the agent reads, room is made again."""
    exchange = streamed()
    big = b"x" * (MAX_MESSAGE - 100)
    for _ in range(RELAYED):
        exchange.relay(big)
    kept = RELAYED_BYTES // len(big)
    assert 0 < kept < RELAYED
    messages = exchange.messages()
    assert [await anext(messages) for _ in range(kept)] == [big] * kept
    exchange.relay(b"after")
    exchange.end(Answer(b"answer", Outcome.OK))
    assert [m async for m in messages] == [b"after", b"answer"]


async def test_small_messages_are_capped_in_count() -> None:
    """Small messages stop being kept at the count cap; the answer still comes."""
    exchange = streamed()
    for n in range(RELAYED + 10):
        exchange.relay(b"%d" % n)
    exchange.end(Answer(b"answer", Outcome.OK))
    sent = [m async for m in exchange.messages()]
    assert len(sent) == RELAYED + 1 and sent[-1] == b"answer"


async def test_an_answer_that_comes_first_is_taken_whole() -> None:
    """The answer, come before anything else, is what ``first`` gives: sent whole."""
    exchange = streamed()
    exchange.end(Answer(b"answer", Outcome.OK))
    answer = await exchange.first(1.0)
    assert answer is not None and answer.message == b"answer"


async def test_a_message_before_the_answer_or_none_in_time_leaves_all_to_the_stream() -> None:
    """A message of the server's before the answer, or nothing within the wait: ``first``
    gives nothing and takes nothing; the stream then sends every message, the answer last."""
    exchange = streamed()
    assert await exchange.first(0.01) is None  # nothing yet
    exchange.relay(b"progress")
    assert await exchange.first(1.0) is None
    exchange.end(Answer(b"answer", Outcome.OK))
    assert [m async for m in exchange.messages()] == [b"progress", b"answer"]

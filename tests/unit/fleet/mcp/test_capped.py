"""How the door counts a server's message as it reads it: a stdio line, an HTTP body, one
event of an event stream (counted as httpx's own parser counts it), each cut where it
crosses the cap holding no more than the cap; the request a cut answer was for."""

from __future__ import annotations

import time

import anyio
import pytest
from httpx2._sse import _SSEParser
from mcp.shared.message import SessionMessage
from mcp_types import JSONRPCError, JSONRPCRequest, JSONRPCResponse

from fleet.mcp.hooks import Outcome
from fleet.mcp.upstream.capped import Cut, Cuts, Marked, cut, error_outcome, id_at_start
from fleet.mcp.upstream.capped_http import BodyCount, EventCount
from fleet.mcp.upstream.capped_stdio import LineReader, Waiting
from fleet.mcp.wire import error


def test_lines_are_read_across_chunks_and_a_long_one_is_cut_at_the_cap() -> None:
    """Lines split over chunks come whole; a line past the cap stops the reading with its
    first bytes kept, nothing of it held."""
    reader = LineReader(cap=10)
    assert reader.feed(b'{"a"') == []
    assert reader.feed(b":1}\nxy\n\nz") == [b'{"a":1}', b"xy", b""]
    assert reader.feed(b"123456789") == [] and not reader.over  # "z123456789": at the cap
    assert reader.feed(b"0\nnext\n") == [] and reader.over
    assert reader.head == b"z1234567890"


def test_a_line_that_never_ends_is_read_in_linear_time() -> None:
    """Chunk after chunk of one line costs the same each (no re-split of what came before),
    and the reading stops at the cap."""
    reader = LineReader(cap=64 * 1024 * 1024)
    chunk = b"x" * 65536
    started = time.process_time()
    for _ in range(512):  # 32 MiB
        assert reader.feed(chunk) == []
    assert time.process_time() - started < 2.0
    small = LineReader(cap=1000)
    small.feed(b'{"jsonrpc":"2.0","id":3,"result":' + b"x" * 2000)
    assert small.over and id_at_start(small.head) == 3


@pytest.mark.parametrize(
    ("head", "found"),
    [
        (b'{"jsonrpc":"2.0","id":7,"result":{"x"', 7),
        (b'{"jsonrpc": "2.0", "id": "a-1", "result"', "a-1"),
        (b' {"id":-2,', -2),
        (b'{"result":{"id":5,"content"', None),  # a nested id is never taken for it
        (b'{"jsonrpc":"2.0","method":"notifications/message","params"', None),
    ],
)
def test_a_cut_messages_id_is_read_only_where_it_leads(head: bytes, found: object) -> None:
    """The id is taken only when it leads the message; any other is not guessed."""
    assert id_at_start(head) == found


def test_the_requests_a_cut_line_may_answer() -> None:
    """A cut line naming a request waiting answers that one; one naming none (or one not
    waiting) answers every one waiting; answered ones are forgotten."""
    waiting = Waiting()
    for rid in (1, 2, 3):
        request = JSONRPCRequest(jsonrpc="2.0", id=rid, method="tools/call", params={})
        waiting.sent(SessionMessage(request))
    waiting.read(SessionMessage(JSONRPCResponse(jsonrpc="2.0", id=2, result={})))
    assert waiting.cut(b'{"jsonrpc":"2.0","id":3,') == [3]
    assert waiting.cut(b'{"result":{"content":') == [1, 3]
    assert waiting.cut(b'{"jsonrpc":"2.0","id":9,') == [1, 3]


def test_a_body_is_counted_to_the_cap() -> None:
    """A body is over once its bytes pass the cap, not at it."""
    count = BodyCount(10)
    assert not count.over(b"12345") and not count.over(b"67890")
    assert count.over(b"1")


def events_over(chunks: list[bytes], cap: int) -> bool:
    count = EventCount(cap)
    return any(count.over(chunk) for chunk in chunks)


def httpx_over(chunks: list[bytes], cap: int) -> bool:
    parser = _SSEParser(cap)
    try:
        for chunk in chunks:
            list(parser.decode(chunk.decode()))
    except Exception:
        return True
    return False


STREAMS = [
    [b"data: " + b"x" * 40 + b"\n\n"] * 5,  # events within the cap, one after another
    [b"data: " + b"x" * 60],  # one line over, not yet ended
    [b"data: " + b"x" * 20 + b"\ndata: " + b"y" * 20 + b"\n" + b"data: zz\n\n"],  # many lines
    [b"data: " + b"x" * 30 + b"\r\n\r\n"] * 4,  # CRLF
    [b"data: " + b"x" * 30 + b"\r", b"\n\r", b"\n"] * 4,  # CRLF split over chunks
    [b"data: " + b"x" * 30 + b"\r\r"] * 4,  # CR alone
    [b": " + b"c" * 80 + b"\n", b"data: ok\n\n"],  # a comment is not counted
    [b"data: " + b"x" * 30 + b"\n", b"data: " + b"y" * 30 + b"\n\n"],  # two lines over
    [b"data: " + b"x" * 49, b"\n\n"],  # exactly the cap
    [b"data: " + b"x" * 50, b"\n\n"],  # one over
]


@pytest.mark.parametrize("chunks", STREAMS)
def test_an_event_is_counted_as_httpx_counts_it(chunks: list[bytes]) -> None:
    """Each event stream is over the cap for the door exactly when it is for httpx's own
    parser (lines but comments, CR, LF and CRLF, lines split over chunks)."""
    assert events_over(chunks, 55) == httpx_over(chunks, 55)


async def test_an_error_made_up_for_a_cut_answer_is_told_as_the_cut() -> None:
    """The SDK's error for a request whose answer was cut reaches the session as a Cut
    (too_large); a server's own error, even of the same words, stays an error."""
    send, receive = anyio.create_memory_object_stream[SessionMessage | Exception](4)
    cuts = Cuts()
    cuts.add(7)
    made_up = error(7, -32000, "SSE stream failed")
    await send.send(SessionMessage(made_up))
    await send.send(SessionMessage(error(7, -32000, "SSE stream failed")))
    await send.aclose()
    async with Marked(receive, cuts) as marked:
        seen = [item async for item in marked]
    messages = [item.message for item in seen if isinstance(item, SessionMessage)]
    assert isinstance(messages[0], Cut) and not isinstance(messages[1], Cut)
    assert isinstance(messages[1], JSONRPCError)
    assert error_outcome(messages[0]) is Outcome.TOO_LARGE
    assert error_outcome(messages[1]) is Outcome.ERROR
    assert error_outcome(cut("a")) is Outcome.TOO_LARGE

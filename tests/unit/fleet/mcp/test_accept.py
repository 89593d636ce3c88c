"""The door reads an agent's ``Accept`` by its media ranges and their weights: JSON is
answered only to a client that takes it (``application/json``, ``application/*`` or ``*/*``
with a weight over 0, the most specific range deciding), never to one that refused it or
named only a type that looks like it."""

from __future__ import annotations

import pytest

from fleet.mcp.door.wire.accept import ranges, takes

JSON = "application/json"
STREAM = "text/event-stream"


@pytest.mark.parametrize(
    "accept",
    [
        "application/json, text/event-stream",  # as MCP's clients say it
        "text/event-stream, application/*",
        "text/event-stream, */*",
        "text/event-stream,application/json;q=0.5",
        "Application/JSON ; Q=0.001, text/event-stream",
        'text/event-stream, application/json;v="a,b;q=0"',  # in quotes: not its weight
        "application/json, */*;q=0",  # the most specific range decides
        "garbage, application/json;q=2, ,application/json",  # the ill-formed passed over
    ],
)
def test_json_is_taken(accept: str) -> None:
    assert takes(accept, JSON)


@pytest.mark.parametrize(
    "accept",
    [
        "text/event-stream, application/json;q=0",  # refused
        "text/event-stream, application/json;q=0.000",
        "text/event-stream, application/json-seq",  # another type
        "text/event-stream, application/jsonx, xapplication/json",
        "text/event-stream, application/*;q=0, */*",
        "application/json;q=0, */*",
        "application/json, application/json;q=0",  # named twice: its lowest weight
        "text/event-stream, application/json;q=2",  # not a weight: the range passed over
        "text/event-stream, application/json;q=-1",
        'text/event-stream, a/b;v="unterminated, application/json',
        "text/event-stream",
        "",
    ],
)
def test_json_is_not_taken(accept: str) -> None:
    assert not takes(accept, JSON)


def test_an_event_stream_is_taken_only_where_named() -> None:
    """The door streams to a client that names event streams, weight over 0, as before."""
    assert takes("application/json, text/event-stream", STREAM, wildcards=False)
    assert not takes("application/json, text/event-stream;q=0", STREAM, wildcards=False)
    assert not takes("*/*", STREAM, wildcards=False)
    assert not takes("text/*", STREAM, wildcards=False)


def test_ranges_and_their_weights() -> None:
    assert ranges('a/b;x="1,2" ;q=0.25;ext=1 ,C/*, ,*/*;q=1.000') == {
        "a/b": 0.25,
        "c/*": 1.0,
        "*/*": 1.0,
    }

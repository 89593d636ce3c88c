"""The door's reading of one JSON-RPC message: the SDK's types decide, a batch or a body
that is not one message is refused in words that say what is wrong."""

from __future__ import annotations

import pytest

from fleet.mcp.wire import (
    INVALID_REQUEST,
    PARSE_ERROR,
    BadMessage,
    JSONRPCNotification,
    JSONRPCRequest,
    dump,
    error,
    param,
    parse,
)


def test_a_request_and_a_notification_are_read() -> None:
    """A request keeps its id and params; a notification has no id."""
    request = parse(b'{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"x"}}')
    notice = parse(b'{"jsonrpc":"2.0","method":"notifications/initialized"}')
    assert isinstance(request, JSONRPCRequest) and request.id == 7
    assert param(request, "name") == "x" and param(request, "_meta", "progressToken") is None
    assert isinstance(notice, JSONRPCNotification)


@pytest.mark.parametrize(
    ("body", "code", "said"),
    [
        (b"{not json", PARSE_ERROR, "not JSON"),
        (b'[{"jsonrpc":"2.0","id":1,"method":"ping"}]', INVALID_REQUEST, "batch"),
        (b'"ping"', INVALID_REQUEST, "an object"),
        (b'{"jsonrpc":"1.0","id":1,"method":"ping"}', INVALID_REQUEST, "JSON-RPC 2.0"),
        (b'{"jsonrpc":"2.0","id":1,"method":"x","params":[1]}', INVALID_REQUEST, "params"),
        (b'{"jsonrpc":"2.0","method":"tools/call","params":{"name":"x"}}', INVALID_REQUEST, "id"),
        (b'{"jsonrpc":"2.0","id":true,"method":"tools/call"}', INVALID_REQUEST, "an integer"),
        (b'{"jsonrpc":"2.0","id":1.0,"method":"tools/call"}', INVALID_REQUEST, "an integer"),
        (b'{"jsonrpc":"2.0","id":null,"method":"tools/call"}', INVALID_REQUEST, "an integer"),
    ],
)
def test_what_is_not_one_message_is_refused_saying_why(body: bytes, code: int, said: str) -> None:
    """Bad JSON, a batch, a bare value, another JSON-RPC version, params not an object; a
    call sent without an id (JSON-RPC runs it, its answer dropped: it would pass the door
    unasked and unaudited), or with an id that reads as none (true, 1.0, null)."""
    with pytest.raises(BadMessage) as refused:
        parse(body)
    assert refused.value.code == code and said in f"{refused.value}"


def test_an_error_is_written_with_its_id_even_null() -> None:
    """The door's own errors carry the request's id, or null where none was read."""
    assert b'"id":null' in dump(error(None, INVALID_REQUEST, "no"))
    assert b'"id":"a"' in dump(error("a", INVALID_REQUEST, "no"))

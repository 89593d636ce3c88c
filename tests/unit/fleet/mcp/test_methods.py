"""What the door does with each method an agent sends (fleet.mcp.door.rules.methods): the known ones
relayed, everything else — MCP's tasks among them — refused with words saying why, and a
call relayed as its ask shows it (``_meta`` cut to its progress token, numbers as the wire
carries them)."""

from __future__ import annotations

import json

import pytest

from fleet.mcp.door.rules.methods import CALLS, LISTINGS, NOTIFICATIONS, refusal, relayed
from fleet.mcp.wire import JSONRPCNotification, JSONRPCRequest, dump, parse


def request(method: str, params: dict[str, object] | None = None) -> JSONRPCRequest:
    body = {"jsonrpc": "2.0", "id": 1, "method": method}
    message = parse(json.dumps(body | ({"params": params} if params is not None else {})).encode())
    assert isinstance(message, JSONRPCRequest)
    return message


@pytest.mark.parametrize("method", sorted({*CALLS, *LISTINGS, "initialize"}))
def test_each_known_method_is_relayed(method: str) -> None:
    """Initialize, the calls and the listings are relayed."""
    assert refusal(request(method, {})) is None


@pytest.mark.parametrize(
    ("method", "words"),
    [
        ("tasks/get", "relays no MCP tasks"),
        ("tasks/result", "relays no MCP tasks"),
        ("tasks/list", "relays no MCP tasks"),
        ("tasks/cancel", "relays no MCP tasks"),
        ("tools/delete", 'relays no method "tools/delete"'),
        ("sampling/createMessage", "relays no method"),
        ("server/discover", "relays no method"),
    ],
)
def test_a_method_not_known_is_refused_saying_so(method: str, words: str) -> None:
    """MCP's tasks and any method the door does not know are refused, never relayed."""
    said = refusal(request(method, {}))
    assert said is not None and words in said


def test_a_task_augmented_call_is_refused_saying_why() -> None:
    """``params.task`` on a call would have its result fetched later, past the door's
    timeout, audit and billing: refused, saying to call without it."""
    said = refusal(request("tools/call", {"name": "echo", "task": {"ttl": 60000}}))
    assert said is not None and "tasks/result" in said and "without params.task" in said


@pytest.mark.parametrize("method", sorted(NOTIFICATIONS))
def test_the_agents_notifications_are_relayed(method: str) -> None:
    """Cancellation, progress and initialized are relayed."""
    message = JSONRPCNotification(jsonrpc="2.0", method=method, params={})
    assert refusal(message) is None


def test_a_notification_not_known_is_refused() -> None:
    """A notification the door does not know (a task's status among them) is not relayed."""
    for method in ("notifications/tasks/status", "notifications/anything"):
        message = JSONRPCNotification(jsonrpc="2.0", method=method, params={})
        assert refusal(message) is not None


def test_a_call_is_relayed_with_its_meta_cut_to_its_progress_token() -> None:
    """A call's ``_meta`` keeps only ``progressToken`` (the door relays progress by it);
    a number JSON cannot carry is ``null`` in what is relayed, and in its arguments as the
    ask reads them; a listing is relayed untouched."""
    params = {
        "name": "echo",
        "arguments": {"n": 1e400, "text": "hi"},
        "_meta": {"progressToken": 4, "hidden": "instruction"},
    }
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": params})
    message = parse(body.replace("Infinity", "1e400").encode())
    out = relayed(message)  # type: ignore[arg-type]
    assert out.params == {
        "name": "echo",
        "arguments": {"n": None, "text": "hi"},
        "_meta": {"progressToken": 4},
    }
    assert json.loads(dump(out))["params"] == out.params
    no_meta = relayed(request("prompts/get", {"name": "greet", "_meta": {"x": 1}}))
    assert no_meta.params == {"name": "greet"}
    listing = request("tools/list", {"_meta": {"x": 1}})
    assert relayed(listing) is listing


def test_a_completion_is_a_call() -> None:
    """``completion/complete`` runs the server's code on the agent's words: it is one of the
    calls (asked, audited), not a listing relayed as it comes."""
    assert "completion/complete" in CALLS and "completion/complete" not in LISTINGS

"""What the door does with each method an agent sends: every one is known here, or refused.

* :data:`CALLS` — a request that runs something at the server: a tool's call, a
  resource's read (and subscription), a prompt's get, an argument's completion (a
  server's completion handler is its code, run on the agent's words). Each is decided by
  the agent's asks
  before it is relayed (:class:`~fleet.mcp.hooks.McpHooks`), held against its run's cap
  and budgets when its server is priced, timed, audited, and billed once relayed;
* :data:`LISTINGS` — what the server offers, and the session's own upkeep (``ping``, the
  lists, a log level, an unsubscribe): relayed as they come, in every mode, never audited
  (``tools/list`` filtered to the agent's tools);
* :data:`NOTIFICATIONS` — the agent's notifications the protocol has (cancellation,
  progress, initialized): relayed; its roots changed is taken and dropped (the door, not
  the agent, speaks for the client: :mod:`fleet.mcp.door.rules.handshake`);
* everything else is refused with a JSON-RPC error saying so, never relayed — a method the
  door does not know could be anything at the server, past every ask and audit. MCP's
  tasks among them: a task-augmented request (``params.task``) is answered at once and its
  result fetched later (``tasks/result``), past the door's timeout, audit and billing, so
  ``tasks/*`` and ``params.task`` are refused, and the ``tasks`` capability is taken out of
  the handshake both ways (:mod:`fleet.mcp.door.rules.handshake`) so neither side offers them.

What an ask shows is what is relayed (:func:`relayed`): a call's ``_meta`` is cut to its
``progressToken`` (the door needs it to relay the server's progress), and its arguments
are those of the message as it goes on the wire (a number JSON cannot carry is the
``null`` the server gets, not ``Infinity``).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, Final

from mcp_types import METHOD_NOT_FOUND

from fleet.mcp.door.rules.handshake import DROPPED, server_handshake
from fleet.mcp.door.wire.exchange import AUDITED
from fleet.mcp.wire import (
    JSONRPCNotification,
    JSONRPCRequest,
    dump,
)

__all__ = ["CALLS", "LISTINGS", "METHOD_NOT_FOUND", "NOTIFICATIONS", "refusal", "relayed"]

CALLS: Final = AUDITED
"""The methods that do something at the server, each with the parameter naming what."""
LISTINGS: Final = frozenset(
    {
        "ping",
        "tools/list",
        "prompts/list",
        "resources/list",
        "resources/templates/list",
        "resources/unsubscribe",
        "logging/setLevel",
    }
)
INITIALIZE: Final = "initialize"
NOTIFICATIONS: Final = frozenset(
    {
        "notifications/cancelled",
        "notifications/progress",
        "notifications/initialized",
    }
)
TASKS: Final = "tasks/"
NO_TASKS: Final = (
    "Fleetwarden's MCP door relays no MCP tasks: a task's result comes later through "
    "tasks/result, past the door's timeout, audit and billing"
)


def refusal(message: JSONRPCRequest | JSONRPCNotification) -> str | None:
    """Why the door does not relay the agent's ``message``, in words for it, or ``None``."""
    method = message.method
    if method.startswith(TASKS) or method == "notifications/tasks/status":
        return f"{NO_TASKS}: call the tool without params.task"
    if isinstance(message, JSONRPCNotification):
        if method in NOTIFICATIONS or method in DROPPED:
            return None
        return f"the MCP door relays no notification {_shown(method)}"
    if isinstance(message.params, dict) and "task" in message.params:
        return f"{NO_TASKS}: send {method} without params.task"
    if method in CALLS or method in LISTINGS or method == INITIALIZE:
        return None
    return (
        f"the MCP door relays no method {_shown(method)}: it relays initialize, "
        f"{', '.join(sorted(CALLS))}, the lists and {', '.join(sorted(NOTIFICATIONS))}"
    )


def relayed(message: JSONRPCRequest) -> JSONRPCRequest:
    """``message`` as the door relays it: a call's ``_meta`` cut to its ``progressToken``,
    and its values as the wire carries them (an ``initialize`` is the handshake's:
    :func:`fleet.mcp.door.rules.handshake.client_handshake`)."""
    params = message.params
    if not isinstance(params, dict):
        return message
    if message.method not in CALLS:
        return message
    kept = {key: value for key, value in params.items() if key != "_meta"}
    meta = params.get("_meta")
    if isinstance(meta, dict) and "progressToken" in meta:
        kept["_meta"] = {"progressToken": meta["progressToken"]}
    wired = json.loads(dump(message.model_copy(update={"params": kept})))
    return message.model_copy(update={"params": wired.get("params", kept)})


def as_answered(
    method: str, result: dict[str, Any], allows: Callable[[str], bool]
) -> dict[str, Any]:
    """A server's ``result`` of ``method`` as the agent gets it: ``tools/list`` cut to the
    tools ``allows``, an ``initialize``'s as the handshake has it
    (:func:`fleet.mcp.door.rules.handshake.server_handshake`), any other as it is."""
    if method == INITIALIZE:
        return server_handshake(result)
    tools = result.get("tools")
    if method != "tools/list" or not isinstance(tools, list):
        return result
    listed = [tool for tool in tools if isinstance(tool, dict) and _named(tool, allows)]
    return {**result, "tools": listed}


def _named(tool: dict[str, Any], allows: Callable[[str], bool]) -> bool:
    name = tool.get("name")
    return isinstance(name, str) and allows(name)


def _shown(method: str) -> str:
    return json.dumps(method[:64])

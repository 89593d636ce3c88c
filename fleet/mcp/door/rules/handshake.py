"""What the door says in the handshake on the agent's behalf, and how it answers the
server's requests of the client itself: an agent never speaks for the client to a server.

**The client's capabilities are the door's.** An agent's ``initialize`` reaches the server
with the agent's protocol version and client info, but with the capabilities the door
offers in place of the agent's (:func:`client_handshake`): ``roots`` only when the config
names folders for the server (:func:`roots_of`), never ``sampling``, ``elicitation``,
``tasks`` nor anything ``experimental``. A capability the agent declared would let the
server ask it things that widen the server (roots a filesystem server then serves) or turn
the server into an asker of the agent's model or person.

**The server's requests of the client are answered here** (:func:`answer_of`), none relayed
to the agent:

* ``ping``: answered empty;
* ``roots/list``: the folders the config names for the server (``file://`` URIs of the
  directories a stdio server's arguments name); with none, refused as a method the client
  does not offer;
* ``sampling/createMessage``, ``elicitation/create`` and every other request: refused with
  JSON-RPC's ``-32601``, as a client that declared no such capability answers.

The agent's ``notifications/roots/list_changed`` is taken and dropped: the agent has no
roots to change. The server's result of the ``initialize`` is relayed without its ``tasks``
capability (:mod:`fleet.mcp.door.rules.methods` says why)."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Final

from mcp_types import METHOD_NOT_FOUND

from fleet.mcp.model import McpServer, StdioServer
from fleet.mcp.wire import JSONRPCError, JSONRPCRequest, JSONRPCResponse, error

DROPPED: Final = frozenset({"notifications/roots/list_changed"})
"""The agent's notifications the door takes and does not relay."""
ROOTS: Final = "roots/list"
REFUSED: Final = {
    "sampling/createMessage": (
        "Fleetwarden's MCP door offers no sampling: a server may not ask an agent's model"
    ),
    "elicitation/create": (
        "Fleetwarden's MCP door offers no elicitation: a server may not ask an agent's "
        "person or open a URL for them"
    ),
}


def roots_of(server: McpServer) -> tuple[Path, ...]:
    """The folders the config names for ``server``: each argument of a
    stdio server that names a directory (relative ones against its ``cwd``), resolved;
    none for a server reached over HTTP (the config gives it no folders)."""
    transport = server.transport
    if not isinstance(transport, StdioServer):
        return ()
    base = Path(transport.cwd) if transport.cwd is not None else None
    found: list[Path] = []
    for arg in transport.args:
        if not arg or arg.startswith(("-", "@")):
            continue
        path = Path(arg).expanduser()
        if not path.is_absolute():
            if base is None:
                continue
            path = base / path
        real = Path(os.path.realpath(path))
        if real.is_dir():
            found.append(real)
    return tuple(dict.fromkeys(found))


def as_sent(message: JSONRPCRequest, roots: Sequence[Path]) -> JSONRPCRequest:
    """The agent's ``message`` as the door sends it: an ``initialize`` with the door's
    capabilities (:func:`client_handshake`), any other as it is."""
    if message.method != "initialize" or not isinstance(message.params, dict):
        return message
    return message.model_copy(update={"params": client_handshake(message.params, roots)})


def client_handshake(params: Mapping[str, object], roots: Sequence[Path]) -> dict[str, object]:
    """An agent's ``initialize`` params as the door sends them: the capabilities its own —
    ``roots`` (no ``listChanged``: they change only with the config) when ``roots`` names
    any, nothing else."""
    offered: dict[str, object] = {"roots": {}} if roots else {}
    return {**params, "capabilities": offered}


def server_handshake(result: Mapping[str, Any]) -> dict[str, Any]:
    """A server's ``initialize`` result as the agent gets it: no ``tasks`` capability."""
    capabilities = result.get("capabilities")
    if not isinstance(capabilities, dict) or "tasks" not in capabilities:
        return dict(result)
    kept = {key: value for key, value in capabilities.items() if key != "tasks"}
    return {**result, "capabilities": kept}


def answer_of(request: JSONRPCRequest, roots: Sequence[Path]) -> JSONRPCResponse | JSONRPCError:
    """The door's own answer to the server's ``request`` of the client."""
    method = request.method
    if method == "ping":
        return JSONRPCResponse(jsonrpc="2.0", id=request.id, result={})
    if method == ROOTS and roots:
        listed = [{"uri": root.as_uri(), "name": root.name} for root in roots]
        return JSONRPCResponse(jsonrpc="2.0", id=request.id, result={"roots": listed})
    why = REFUSED.get(method)
    if why is None:
        why = (
            "Fleetwarden's MCP door names no roots for this server"
            if method == ROOTS
            else "Fleetwarden's MCP door answers no such request of a server's"
        )
    return error(request.id, METHOD_NOT_FOUND, why)

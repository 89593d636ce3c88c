"""The door's side toward a server: the MCP SDK's client transports, used as message pipes.

A stdio server is run by the SDK's ``stdio_client`` on Fleetwarden's side: in a session of
its own (its whole process group is ended with it), in the sandbox ``confine`` puts it in
(:mod:`fleet.mcp.upstream.confined`; the app always gives one), its environment only the
SDK's safe few (``PATH``, ``HOME``, ``USER``…) and the server's ``env`` and ``env_env`` —
never Fleetwarden's other variables, never an agent's. Its standard error goes to
``errlog`` (nothing by default: it may say what it holds).

An HTTP server is reached by the SDK's ``streamable_http_client`` over an HTTP client that
sends the held headers; the agent's own headers never reach it. The SDK follows a redirect
only within the server's origin, so a held header never leaves for another host.

Neither holds more of one message of a server's than the cap (:mod:`fleet.mcp.upstream.capped`): a
stdio server's output is read by the SDK's ``stdio_client`` with its reader replaced
(:mod:`fleet.mcp.upstream.capped_stdio`), an HTTP server's answers are counted under the SDK as they
stream (:mod:`fleet.mcp.upstream.capped_http`).

Each pipe carries whole JSON-RPC messages (:class:`mcp.shared.message.SessionMessage`) both
ways; the session above decides what to do with each (:mod:`fleet.mcp.door.session`).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterator, Mapping
from typing import TextIO

import httpx2
from mcp.client._transport import TransportStreams
from mcp.client.stdio import StdioServerParameters
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client

from fleet.mcp.model import HttpServer, McpServer
from fleet.mcp.upstream.capped import Cuts, Marked
from fleet.mcp.upstream.capped_http import cap_answers
from fleet.mcp.upstream.capped_stdio import capped_stdio_client
from fleet.mcp.upstream.confined import Confine
from fleet.mcp.upstream.credentials import held_headers, stdio_env
from fleet.mcp.upstream.oauth import held_auth

CONNECT_SECONDS = 30.0
"""Seconds to connect to an HTTP server or send it a request (the SDK's default)."""
READ_SECONDS = 300.0
"""Seconds an HTTP server's stream may go silent before the SDK reconnects it (the SDK's
default). A call's own deadline is the server's ``timeout``, kept by the session."""


@contextlib.asynccontextmanager
async def open_upstream(
    server: McpServer,
    environ: Mapping[str, str],
    errlog: TextIO | None = None,
    confine: Confine | None = None,
) -> AsyncIterator[TransportStreams]:
    """The read and write streams of a connection to ``server``, its credentials read from
    ``environ`` now (:class:`fleet.mcp.upstream.credentials.MissingCredential` when one is unset);
    a stdio server's process runs (in ``confine``'s sandbox) while this is open and is ended
    when it closes, however it closes."""
    transport = server.transport
    if isinstance(transport, HttpServer):
        headers = held_headers(transport, environ)
        auth = await held_auth(server.name, transport.url, transport.oauth, environ)
        timeout = httpx2.Timeout(CONNECT_SECONDS, read=READ_SECONDS)
        cuts = Cuts()
        async with (
            create_mcp_http_client(headers=headers, timeout=timeout, auth=auth) as client,
            # the events are counted under the SDK, within the cap (capped_http)
            streamable_http_client(
                transport.url, http_client=cap_answers(client, cuts), max_sse_event_size=None
            ) as (read, write),
        ):
            yield Marked(read, cuts), write
        return
    parameters = StdioServerParameters(
        command=transport.command,
        args=list(transport.args),
        env=stdio_env(transport, environ),
        cwd=transport.cwd,
    )
    async with contextlib.AsyncExitStack() as held:
        sink = errlog if errlog is not None else held.enter_context(_nowhere())
        if confine is not None:
            parameters = await held.enter_async_context(confine(parameters))
        yield await held.enter_async_context(capped_stdio_client(parameters, errlog=sink))


def _nowhere() -> TextIO:
    """``/dev/null`` for writing (opening it never blocks)."""
    return open(os.devnull, "w")  # closed by the caller's exit stack

"""What ``check-config --online`` asks each MCP server it may run here: its tools
(``initialize``, then ``tools/list`` page by page), so a tool the config's ``tools:`` names
that the server does not list is said at its line, with the listed name closest to it.

An HTTP server is asked with its held credentials; a stdio server with ``sandbox: none``
is run as ``run`` runs it, for the time of the question. A confined stdio server runs only
in the sandbox the running fleet gives it, so it is not started here: under ``run``, a call
the door refuses as off ``tools:`` names the allowed tool it is close to
(:mod:`fleet.mcp.door.rules.gate`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping

from fleet.budgets.schema import Loc
from fleet.mcp.config.tool_names import unlisted
from fleet.mcp.model import McpServer, StdioServer
from fleet.mcp.upstream.credentials import MissingCredential

log = logging.getLogger(__name__)

ASK_SECONDS = 60.0
"""How long one server may take to start and list its tools."""
MAX_PAGES = 50
"""Pages of ``tools/list`` read at most (a server whose cursor never ends)."""


def asked_here(server: McpServer) -> bool:
    """Whether ``--online`` asks ``server`` its tools: it names some, and runs outside a
    sandbox of the fleet's (an HTTP server, a stdio server with ``sandbox: none``)."""
    transport = server.transport
    return server.tools is not None and not (
        isinstance(transport, StdioServer) and transport.confined
    )


async def mcp_tool_problems(
    servers: Mapping[str, McpServer],
    configured: Mapping[str, list[str]],
    environ: Mapping[str, str],
) -> list[tuple[Loc, str]]:
    """Each tool of ``configured`` (a server's ``tools:`` as written, by server) that its
    server does not list, at its item; a server that could not be asked, at its name."""
    found: list[tuple[Loc, str]] = []
    for name, server in servers.items():
        if not asked_here(server) or name not in configured:
            continue
        try:
            listed = await asyncio.wait_for(_tools(server, environ), ASK_SECONDS)
        except MissingCredential:
            continue  # said offline, at its variable
        except Exception as exc:  # any failure of a server is said, never a traceback
            log.debug("MCP server %s could not be asked", name, exc_info=exc)
            found.append(
                (
                    ("mcp", name),
                    f"MCP server {name} could not be asked for its tools "
                    f"({type(exc).__name__}): start it by hand to see why, or check its "
                    "url, command and credentials",
                )
            )
            continue
        for index, why in unlisted(name, configured[name], listed):
            found.append((("mcp", name, "tools", index), why))
    return found


async def _tools(server: McpServer, environ: Mapping[str, str]) -> set[str]:
    # The MCP SDK loads where a server is asked, not at every start of the command line.
    from mcp import ClientSession
    from mcp.types import PaginatedRequestParams

    from fleet.mcp.upstream.connect import open_upstream

    async with open_upstream(server, environ) as (read, write), ClientSession(read, write) as s:
        await s.initialize()
        names: set[str] = set()
        cursor: str | None = None
        for _ in range(MAX_PAGES):
            params = None if cursor is None else PaginatedRequestParams(cursor=cursor)
            page = await s.list_tools(params=params)
            names.update(tool.name for tool in page.tools)
            cursor = page.next_cursor
            if not cursor:
                break
        return names


def online_summary(servers: Mapping[str, McpServer], *, asked: bool) -> str:
    """``check-config``'s line about the MCP servers' tool names: that ``--online`` checks
    them (or did), and which servers only ``run`` can check (confined stdio ones)."""
    named = [name for name, server in servers.items() if server.tools is not None]
    if not named:
        return ""
    here = [name for name in named if asked_here(servers[name])]
    confined = [name for name in named if name not in here]
    later = ""
    if confined:
        one = len(confined) == 1
        later = (
            f"; {', '.join(confined)} run{'s' if one else ''} only confined under `run`, "
            "not here: there a call refused as off tools: names the tool it is close to"
        )
    if not asked:
        return (
            "\n  mcp tools:  not checked against the servers (`check-config --online` asks "
            f"{', '.join(here) or 'none of them'} for the tools it lists){later}"
        )
    return (
        f"\n  mcp tools:  {', '.join(here) or 'no server'} listed every tool named in tools:{later}"
    )

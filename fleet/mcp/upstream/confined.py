"""A stdio server in a sandbox of its own (:mod:`fleet.sandbox.programs`), one per agent and
server: its own host uid when Fleetwarden is root (the lane ``mcp:SERVER:AGENT``, taken
from the lanes' one allocator), its own HOME kept under the state dir
(``mcp/SERVER/AGENT/home``, hidden from every agent), the directories its arguments and
variables give whole bound writable; the state dir, the config's folder and every agent's
workdir out of its sight. So a place :mod:`fleet.mcp.config.places` misses — a path its
code computes while it runs — still reaches none of them.

A server whose entry says ``sandbox: none`` runs as before, as Fleetwarden's user (refused
under ``enforce: strict``).
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import TYPE_CHECKING, TypeAlias

from fleet.backends.process import shim_argv
from fleet.mcp.config.places import stdio_places
from fleet.mcp.model import McpServer, StdioServer
from fleet.sandbox.programs import Program, confine
from fleet.sandbox.service import Sandboxes

if TYPE_CHECKING:  # the MCP SDK loads where a stdio server first runs, not at every start
    from mcp.client.stdio import StdioServerParameters

Confine: TypeAlias = (
    "Callable[[StdioServerParameters], AbstractAsyncContextManager[StdioServerParameters]]"
)
"""A stdio server's parameters as they run confined, for as long as the context lasts."""
Workdirs = Callable[[], Awaitable[Iterable[Path]]]
"""Every agent's workdir on this machine, as the fleet knows them now."""


class StdioSandbox:
    """Where each agent's stdio servers run: in ``sandboxes``' bubblewrap, hiding each of
    ``workdirs()``."""

    def __init__(self, sandboxes: Sandboxes, workdirs: Workdirs) -> None:
        self._sandboxes = sandboxes
        self._workdirs = workdirs

    @contextlib.asynccontextmanager
    async def confined(
        self, agent: str, server: McpServer, parameters: StdioServerParameters
    ) -> AsyncIterator[StdioServerParameters]:
        """``parameters`` run in ``agent``'s sandbox of ``server`` while the block lasts (its
        run's records removed after); as they are for a server with ``sandbox: none``."""
        transport = server.transport
        if not isinstance(transport, StdioServer) or not transport.confined:
            yield parameters
            return
        from mcp.client.stdio import StdioServerParameters, get_default_environment

        env = get_default_environment() | (parameters.env or {})
        cwd = None if transport.cwd is None else Path(transport.cwd)
        # The values its env_env variables were given, read as its env values are.
        held = {key: env[key] for key in transport.env_env if key in env}
        places = stdio_places(transport.command, transport.args, transport.env, cwd, held)
        given = tuple(
            named.path
            for named in places
            if named.both and named.key[0] in ("args", "env", "env_env")
        )
        program = Program(
            argv=(transport.command, *transport.args),
            env=env,
            cwd=cwd,
            given=given,
            locked=transport.locked,
        )
        settings = self._sandboxes.settings
        place = settings.state_dir / "mcp" / server.name / agent
        lane = f"mcp:{server.name}:{agent}"
        made = await confine(self._sandboxes, lane, place, program, await self._workdirs())
        argv = shim_argv(settings.python, made.run_dir, made.plan)
        try:
            yield StdioServerParameters(
                command=argv[0], args=argv[1:], env=dict(made.plan.env), cwd=None
            )
        finally:
            await asyncio.to_thread(shutil.rmtree, made.run_dir, True)

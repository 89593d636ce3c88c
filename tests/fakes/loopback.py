"""What the fake servers share: an aiohttp app on 127.0.0.1 (a free port), started once
and stopped once, usable as ``async with``."""

from __future__ import annotations

import asyncio
import enum
from types import TracebackType
from typing import Self

from aiohttp import web


class State(enum.Enum):
    NEW = "new"
    RUNNING = "running"
    STOPPED = "stopped"


class LoopbackServer:
    """A subclass adds its routes in :meth:`routes` and, if it holds live connections,
    closes them in :meth:`before_stop`."""

    def __init__(self) -> None:
        self._state = State.NEW
        self._runner: web.AppRunner | None = None
        self._port: int | None = None

    def routes(self, app: web.Application) -> None:
        raise NotImplementedError

    async def before_stop(self) -> None:
        """Close what the server holds open (websockets, tasks) before it shuts down."""

    @property
    def state(self) -> State:
        return self._state

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT``."""
        if self._port is None:
            raise RuntimeError(f"{type(self).__name__} is not started")
        return f"http://127.0.0.1:{self._port}"

    async def start(self) -> None:
        if self._state is not State.NEW:
            raise RuntimeError(f"{type(self).__name__} cannot start from state {self._state.value}")
        app = web.Application(client_max_size=64 * 1024 * 1024)
        self.routes(app)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", 0).start()
        self._port = self._runner.addresses[0][1]
        self._state = State.RUNNING

    async def stop(self) -> None:
        """Close connections and stop serving. Safe to repeat."""
        if self._state is State.RUNNING and self._runner is not None:
            await self.before_stop()
            server = self._runner.server
            await self._runner.cleanup()
            if server is not None:
                await _close_late(server)
        self._state = State.STOPPED

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()


async def _close_late(server: web.Server) -> None:
    """Close the connections accepted while the server was shutting down (after it closed
    the ones it held), and let the loop finish closing them, so no socket outlives the
    server to be found unclosed when the test's loop ends."""
    for _ in range(10):
        await asyncio.sleep(0)
        for late in server.connections:
            late.force_close()
    await asyncio.sleep(0)

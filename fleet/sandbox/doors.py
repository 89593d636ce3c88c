"""The doors of a locked sandbox, on the host side: Unix sockets that pipe to loopback.

A locked agent's network namespace has only ``lo``. What it may reach — the metering
proxy, the heartbeat endpoint, the forward proxy of its allow-list — it reaches through a
Unix socket in its door directory (``<state_dir>/sandbox/<agent>/doors``, mode 0700),
which the sandbox sees at :data:`fleet.sandbox.policy.DOORS`. Each door here accepts on
its socket and pipes every connection to one TCP port on 127.0.0.1. The servers on the
far side still authenticate every request: a door is only a way in, not a credential.

Closing a door (``egress block``) removes its socket and cuts the connections that were
open through it; the forwarder inside then finds nothing to connect to.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import stat
from collections.abc import Awaitable, Callable
from pathlib import Path

from fleet.lane_files import chmod_itself

log = logging.getLogger(__name__)

_CHUNK = 64 * 1024
Target = Callable[[], Awaitable[int | None]]
"""Where a door leads now: the TCP port on 127.0.0.1 (``None``: nowhere, refuse)."""


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(_CHUNK):
            writer.write(data)
            await writer.drain()
        if writer.can_write_eof():
            writer.write_eof()
    except (ConnectionError, OSError):
        pass


class Door:
    """One Unix socket that pipes each connection to a port on 127.0.0.1; ``owner``: the
    uid (and gid) it belongs to, the agent's own when it has one (Fleetwarden is root)."""

    def __init__(self, path: Path, target: Target, owner: int | None = None) -> None:
        self.path = path
        self._target = target
        self._owner = owner
        self._server: asyncio.AbstractServer | None = None
        self._connections: set[asyncio.Task[None]] = set()

    async def open(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()  # left by an earlier Fleetwarden: the sandbox sees this path
        self._server = await asyncio.start_unix_server(self._serve, path=str(self.path))
        try:  # the door directory is the agent's too: never chmod where a symlink points
            chmod_itself(self.path, 0o600, stat.S_IFSOCK)
            if self._owner is not None:
                os.chown(self.path, self._owner, self._owner, follow_symlinks=False)
        except OSError:
            self._server.close()
            self._server = None
            raise

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._connections.add(task)
            task.add_done_callback(self._connections.discard)
        try:
            port = await self._target()
            if port is None:
                return
            try:
                up_reader, up_writer = await asyncio.open_connection("127.0.0.1", port)
            except OSError:
                return
            try:
                await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))
            finally:
                up_writer.close()
        finally:
            writer.close()

    async def close(self) -> None:
        """Stop accepting, remove the socket, and cut what is open through the door."""
        if self._server is not None:
            self._server.close()
            self._server = None
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()
        tasks = list(self._connections)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


class DoorSet:
    """The doors of one agent, by socket name, in a directory only it (``owner``, else
    Fleetwarden's user) may enter."""

    def __init__(self, directory: Path, owner: int | None = None) -> None:
        self.directory = directory
        self._owner = owner
        self._doors: dict[str, Door] = {}

    def names(self) -> set[str]:
        return set(self._doors)

    async def open(self, name: str, target: Target) -> None:
        if name in self._doors:
            return
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.chmod(self.directory, 0o700)
        if self._owner is not None:
            os.chown(self.directory, self._owner, self._owner)
        door = Door(self.directory / name, target, self._owner)
        await door.open()
        self._doors[name] = door

    async def close(self, name: str) -> bool:
        """Close door ``name``; whether it was open."""
        door = self._doors.pop(name, None)
        if door is None:
            with contextlib.suppress(FileNotFoundError):
                (self.directory / name).unlink()
            return False
        await door.close()
        return True

    async def close_all(self) -> None:
        for name in list(self._doors):
            await self.close(name)


def fixed(port: int) -> Target:
    """A door that always leads to ``port``."""

    async def target() -> int | None:
        return port

    return target

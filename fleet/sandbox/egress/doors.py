"""The doors of a locked sandbox, on the host side: Unix sockets that lead to loopback.

A locked agent's network namespace has only ``lo``. What it may reach — the metering
proxy, the heartbeat endpoint, the forward proxy of its allow-list — it reaches through a
Unix socket in its door directory (``<state_dir>/sandbox/<agent>/doors``, mode 0700),
which the sandbox sees at :data:`fleet.sandbox.policy.DOORS`. Each door here accepts on
its socket and pipes every connection to one TCP port on 127.0.0.1 — but the egress door,
where Fleetwarden itself answers as the allow-list's forward proxy
(:mod:`fleet.sandbox.egress.egress_proxy`), and the doors to Fleetwarden's own servers (the
heartbeat endpoint, the metering proxy), which serve each connection in place, as that
port's server would (the same server, the same caps:
:attr:`fleet.connections.loopback.Served.factory`),
without a second connection and two tasks piping between them — a fleet's heartbeats are
hundreds of connections a second. The servers still authenticate every request: a door
is only a way in, not a credential.

Closing a door (``egress block``) removes its socket and cuts the connections that were
open through it; the forwarder inside then finds nothing to connect to.

Each connection through a door costs Fleetwarden two file descriptors, so a door holds at
most ``max_open`` connections at once (:data:`MAX_OPEN` by default): past it a new one is
closed at once, with a log line a minute at most per door. The servers behind the doors
cap their connections too (:mod:`fleet.connections.admission`); this cap is what keeps one locked
agent's own connections from taking the descriptors the others need.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import stat
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Final, cast

from fleet.lane_files import chmod_itself

log = logging.getLogger(__name__)

MAX_OPEN: Final = 64  # connections at once through one door
LOG_EVERY: Final = 60.0  # seconds between two log lines about one door's refusals
_CHUNK = 64 * 1024
SUN_PATH_MAX = 100  # sockaddr_un.sun_path is 108 bytes with its NUL; keep a margin
Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]
"""What answers one connection through a door (the door closes it afterwards)."""
Served = Callable[[], asyncio.Protocol]
"""A server's protocol factory: a door to it serves its connections in place."""


async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(_CHUNK):
            writer.write(data)
            await writer.drain()
        if writer.can_write_eof():
            writer.write_eof()
    except (ConnectionError, OSError):
        pass


class Door:
    """One Unix socket whose connections ``handler`` answers (most pipe them to a port on
    127.0.0.1, see :func:`fixed`; the egress door's is the allow-list's forward proxy);
    ``owner``: the uid (and gid) it belongs to, the agent's own when it has one
    (Fleetwarden is root)."""

    def __init__(
        self,
        path: Path,
        handler: Handler | Served,
        owner: int | None = None,
        max_open: int = MAX_OPEN,
        *,
        served: bool = False,
    ) -> None:
        """``served``: ``handler`` is a server's protocol factory, its connections served
        in place (see the module), not a handler of streams."""
        self.path = path
        self.max_open = max_open
        self.refused = 0  # connections closed at once, past ``max_open``
        self._handler = handler
        self._served = served
        self._owner = owner
        self._server: asyncio.AbstractServer | None = None
        self._connections: set[asyncio.Task[None]] = set()
        self._in_place: set[_InPlace] = set()
        self._logged_at: float | None = None

    async def open(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()  # left by an earlier Fleetwarden: the sandbox sees this path
        if len(os.fsencode(self.path)) < SUN_PATH_MAX:
            self._server = await self._listen(str(self.path))
        else:
            # A socket's path is capped at 108 bytes, and a state dir may be deep: bind
            # through the directory's descriptor instead (/proc/self/fd/N/NAME is short).
            fd = os.open(self.path.parent, os.O_PATH | os.O_DIRECTORY)
            try:
                self._server = await self._listen(f"/proc/self/fd/{fd}/{self.path.name}")
            finally:
                os.close(fd)
        try:  # the door directory is the agent's too: never chmod where a symlink points
            chmod_itself(self.path, 0o600, stat.S_IFSOCK)
            if self._owner is not None:
                os.chown(self.path, self._owner, self._owner, follow_symlinks=False)
        except OSError:
            self._server.close()
            self._server = None
            raise

    async def _listen(self, path: str) -> asyncio.AbstractServer:
        if self._served:
            loop = asyncio.get_running_loop()
            return await loop.create_unix_server(self._in_place_protocol, path=path)
        return await asyncio.start_unix_server(self._serve, path=path)

    def _in_place_protocol(self) -> asyncio.Protocol:
        if len(self._in_place) >= self.max_open:
            self._refuse()
            return _Closed()
        inner = cast(Served, self._handler)()
        return _InPlace(inner, self._in_place)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if len(self._connections) >= self.max_open:
            self._refuse()
            writer.close()
            return
        task = asyncio.current_task()
        if task is not None:
            self._connections.add(task)
            task.add_done_callback(self._connections.discard)
        try:
            await cast(Handler, self._handler)(reader, writer)
        except (ConnectionError, OSError):
            pass
        except asyncio.CancelledError:
            # The door closing. Ended here: asyncio's stream callback would call a task
            # that ends cancelled an error, with a traceback in the log for each connection.
            pass
        finally:
            writer.close()

    def _refuse(self) -> None:
        self.refused += 1
        now = time.monotonic()
        if self._logged_at is not None and now - self._logged_at < LOG_EVERY:
            return
        self._logged_at = now
        log.warning(
            "door %s: %d connections open, the most one door takes; refused %d so far",
            self.path,
            len(self._connections) + len(self._in_place),
            self.refused,
        )

    async def close(self) -> None:
        """Stop accepting, remove the socket, and cut what is open through the door."""
        if self._server is not None:
            self._server.close()
            self._server = None
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()
        for conn in list(self._in_place):
            conn.close()
        tasks = list(self._connections)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


class _InPlace(asyncio.Protocol):
    """A connection a door serves in place: the server's own protocol, counted in the
    door's ``held`` while it is open, so the door can cap and cut them."""

    __slots__ = ("_held", "_inner", "_transport")

    def __init__(self, inner: asyncio.Protocol, held: set[_InPlace]) -> None:
        self._inner = inner
        self._held = held
        self._transport: asyncio.BaseTransport | None = None
        held.add(self)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport
        self._inner.connection_made(transport)

    def data_received(self, data: bytes) -> None:
        self._inner.data_received(data)

    def eof_received(self) -> bool | None:
        return self._inner.eof_received()

    def pause_writing(self) -> None:
        self._inner.pause_writing()

    def resume_writing(self) -> None:
        self._inner.resume_writing()

    def connection_lost(self, exc: Exception | None) -> None:
        self._held.discard(self)
        self._inner.connection_lost(exc)

    def close(self) -> None:
        """Cut the connection (its door closing)."""
        self._held.discard(self)
        if isinstance(self._transport, asyncio.WriteTransport):
            self._transport.abort()
        elif self._transport is not None:
            self._transport.close()


class _Closed(asyncio.Protocol):
    """A connection past a door's cap: closed at once."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        transport.close()


class DoorSet:
    """The doors of one agent, by socket name, in a directory only it (``owner``, else
    Fleetwarden's user) may enter; each door takes ``max_open`` connections."""

    def __init__(self, directory: Path, owner: int | None = None, max_open: int = MAX_OPEN) -> None:
        self.directory = directory
        self._owner = owner
        self.max_open = max_open
        self._doors: dict[str, Door] = {}

    def names(self) -> set[str]:
        return set(self._doors)

    async def open(self, name: str, handler: Handler) -> None:
        await self._open(name, handler, served=False)

    async def open_served(self, name: str, factory: Served) -> None:
        """Open door ``name`` onto a server of Fleetwarden's own, which serves each of its
        connections in place (``factory``: :attr:`fleet.connections.loopback.Served.factory`)."""
        await self._open(name, factory, served=True)

    async def _open(self, name: str, handler: Handler | Served, *, served: bool) -> None:
        if name in self._doors:
            return
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.chmod(self.directory, 0o700)
        if self._owner is not None:
            os.chown(self.directory, self._owner, self._owner)
        door = Door(self.directory / name, handler, self._owner, self.max_open, served=served)
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


def fixed(port: int) -> Handler:
    """A door that pipes each connection to ``port`` on 127.0.0.1."""

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))
        finally:
            up_writer.close()

    return handler

"""The control socket's server: ``control.sock`` in the state dir (0600, in a directory
only Fleetwarden's user may enter; bound and found as the dashboard's status socket is,
:mod:`bot.dashboard.access.status_door`).

Each connection carries one request and gets one answer (:mod:`bot.control.wire`). The
kernel says who connected (``SO_PEERCRED``): only Fleetwarden's own uid is answered; any
other uid — the state dir's owner too, were it another — is told so and nothing runs. A
line longer than :data:`~bot.control.wire.MAX_LINE`, one that is not a request, or none
within :data:`~bot.control.wire.IDLE_SECONDS` gets an answer saying what was wrong; at
most :data:`MAX_CLIENTS` connections are served at once, the next told to try again.
Nothing a client sends stops the server.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Final

from bot.control.wire import (
    CONTROL_SOCKET_FILE,
    EXIT_REFUSED,
    EXIT_USAGE,
    IDLE_SECONDS,
    MAX_LINE,
    Answer,
    WireError,
    read_request,
)
from bot.dashboard.access import status_door

log = logging.getLogger(__name__)

MAX_CLIENTS: Final = 16
"""How many shell connections are served at once."""

DRAIN_SECONDS: Final = 10.0
"""How long a stop waits for the shell commands in flight to finish."""

Answerer = Callable[[str], Awaitable[Answer]]
"""What runs one command's text and says what came of it."""


class ControlDoor:
    """The control socket, serving :meth:`start` to :meth:`stop`."""

    def __init__(
        self,
        state_dir: Path,
        answer: Answerer,
        *,
        max_clients: int = MAX_CLIENTS,
        max_line: int = MAX_LINE,
        idle: float = IDLE_SECONDS,
    ) -> None:
        self._state_dir = state_dir
        self._answer = answer
        self._max_clients = max_clients
        self._max_line = max_line
        self._idle = idle
        self._server: asyncio.Server | None = None
        self._clients: set[asyncio.Task[None]] = set()

    @property
    def path(self) -> Path:
        return self._state_dir / CONTROL_SOCKET_FILE

    async def start(self) -> None:
        """Listen on the socket (one an earlier start left is replaced). Raises ``OSError``."""
        sock = status_door.listen(self._state_dir, CONTROL_SOCKET_FILE)
        try:
            self._server = await asyncio.start_unix_server(
                self._connected, sock=sock, limit=self._max_line
            )
        except BaseException:
            sock.close()
            raise

    async def stop(self, *, within: float = DRAIN_SECONDS) -> None:
        """Stop listening, let the commands in flight finish (those still running after
        ``within`` seconds are cancelled), remove the socket."""
        server, self._server = self._server, None
        if server is None:
            return
        server.close()
        clients = set(self._clients)
        if clients:
            _, pending = await asyncio.wait(clients, timeout=within)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        await server.wait_closed()
        status_door.forget(self._state_dir, CONTROL_SOCKET_FILE)

    async def _connected(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._clients.add(task)
        try:
            answer = await self._serve(reader, writer)
            writer.write(answer.line())
            await asyncio.wait_for(writer.drain(), self._idle)
        except (OSError, TimeoutError):  # the client went away: nobody to tell
            pass
        except Exception:
            log.exception("the control socket could not answer a client")
        finally:
            self._clients.discard(task)
            writer.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> Answer:
        """The answer to the one request this connection holds."""
        if len(self._clients) > self._max_clients:
            return _usage(f"the orchestrator serves {self._max_clients} shells at once; try again")
        uid = status_door.peer_uid(writer.get_extra_info("socket"))
        # Our own uid, not the folder's owner: whoever came to own the folder is no one
        # Fleetwarden trusts.
        own = os.geteuid()
        if uid != own:
            log.warning("control socket: uid %d refused (only uid %d may use it)", uid, own)
            return Answer(
                EXIT_REFUSED,
                "denied",
                f"uid {uid} may not command this fleet: only Fleetwarden's own user "
                f"(uid {own}) may",
            )
        try:
            line = await asyncio.wait_for(reader.readline(), self._idle)
        except TimeoutError:
            return _usage(f"no request line within {self._idle:g} s")
        except ValueError:  # past the reader's limit, with no newline
            return _usage(f"the request is longer than {self._max_line} bytes")
        if not line.endswith(b"\n"):
            return _usage("the request must be one line, ended by a newline")
        try:
            command = read_request(line)
        except WireError as exc:
            return _usage(str(exc))
        return await self._answer(command)


def _usage(why: str) -> Answer:
    return Answer(EXIT_USAGE, "error", why)

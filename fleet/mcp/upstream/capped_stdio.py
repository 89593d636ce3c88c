"""A stdio server's output read a line at a time within the cap: the SDK's ``stdio_client``
(:mod:`mcp.client.stdio`), its own pieces (the process started in a session of its own, the
spec's shutdown: stdin closed, then the whole process group ended, every wait bounded)
with one part of it changed, the reader of the server's standard output.

The SDK's reader keeps all a line's text until its newline comes, and splits all it holds
again at each chunk read: a server that writes half a gigabyte with no newline grows
Fleetwarden's memory by as much, in time quadratic in it. This one reads bytes, looks for a
newline only in the chunk just read, and holds at most :data:`~fleet.mcp.wire.MAX_MESSAGE`
bytes of a line: past them the line is cut, the request it answered (the one its first
bytes name, else each one waiting) answered :class:`~fleet.mcp.upstream.capped.Cut`, the server's
output read no more and its process group killed; the session ends with it."""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import sys
from collections.abc import AsyncIterator
from typing import TextIO

import anyio
import anyio.lowlevel
from mcp.client._transport import TransportStreams
from mcp.client.stdio import (
    StdioServerParameters,
    _aclose_all,
    _create_platform_compatible_process,
    _drain_stdout,
    _get_executable_command,
    _parse_line,
    _stop_server_process,
    get_default_environment,
)
from mcp.os.win32.utilities import ServerProcess
from mcp.shared.message import SessionMessage
from mcp_types import JSONRPCError, JSONRPCRequest, JSONRPCResponse, RequestId

from fleet.mcp.upstream.capped import HEAD, cut, id_at_start
from fleet.mcp.wire import MAX_MESSAGE

log = logging.getLogger(__name__)

FLUSH_SECONDS = 0.5
"""Seconds the writer has to pass on what it took before the server's stdin closes (the
SDK's)."""

WAITING = 1024
"""Requests waiting for their answer remembered at most (the session holds far fewer)."""

Item = SessionMessage | Exception


class LineReader:
    """Lines of bytes out of chunks, none over ``cap`` bytes held: :meth:`feed` gives the
    lines a chunk ends, and :attr:`over` says when the line being read passed the cap (its
    first bytes kept in :attr:`head`)."""

    def __init__(self, cap: int = MAX_MESSAGE) -> None:
        self._cap = cap
        self._line = bytearray()
        self.over = False
        self.head = b""

    def feed(self, chunk: bytes) -> list[bytes]:
        lines: list[bytes] = []
        start = 0
        while not self.over:
            end = chunk.find(b"\n", start)
            if end < 0:
                self._take(chunk, start, len(chunk))
                break
            self._take(chunk, start, end)
            if not self.over:
                lines.append(bytes(self._line))
                self._line.clear()
            start = end + 1
        return lines

    def _take(self, chunk: bytes, start: int, end: int) -> None:
        if len(self._line) + (end - start) > self._cap:
            head = bytes(self._line[:HEAD])
            self.head = head + chunk[start : min(end, start + HEAD - len(head))]
            self._line.clear()
            self.over = True
            return
        self._line += chunk[start:end]


@contextlib.asynccontextmanager
async def capped_stdio_client(
    server: StdioServerParameters, errlog: TextIO = sys.stderr, *, cap: int = MAX_MESSAGE
) -> AsyncIterator[TransportStreams]:
    """The SDK's ``stdio_client``, its server's output read within ``cap`` bytes a line."""
    command = await _get_executable_command(server.command)
    process = await _create_platform_compatible_process(
        command=command,
        args=server.args,
        env=get_default_environment() | (server.env or {}),
        errlog=errlog,
        cwd=server.cwd,
    )
    # No await until the task group is entered: a cancellation there would leak the process.
    read_writer, read_stream = anyio.create_memory_object_stream[Item](0)
    write_stream, write_reader = anyio.create_memory_object_stream[SessionMessage](0)
    waiting = Waiting()
    closing = False
    writer_done = anyio.Event()

    async def stdout_reader() -> None:
        try:
            try:
                async with read_writer:  # closed first: the session hears the end at once
                    over = await _read_lines(process, read_writer, server, cap, waiting)
                if over:
                    _end_group(process)
            finally:
                await _drain_stdout(process)
        except anyio.ClosedResourceError:
            pass  # the shutdown closed stdout under the read
        except (anyio.BrokenResourceError, ConnectionError):
            if not closing:
                log.exception("Reading an MCP server's standard output failed")

    async def stdin_writer() -> None:
        assert process.stdin is not None
        try:
            async with write_reader:
                async for message in write_reader:
                    waiting.sent(message)
                    json = message.message.model_dump_json(by_alias=True, exclude_unset=True)
                    await process.stdin.send(
                        (json + "\n").encode(server.encoding, server.encoding_error_handler)
                    )
        except (anyio.ClosedResourceError, anyio.BrokenResourceError, OSError):
            await read_writer.aclose()  # the session sees the end, not a request left waiting
        finally:
            writer_done.set()

    async def shutdown() -> None:
        read_stream.close()
        write_stream.close()
        with anyio.move_on_after(FLUSH_SECONDS):
            await writer_done.wait()
        await _stop_server_process(process)
        await _aclose_all(read_stream, write_stream, read_writer, write_reader)
        await anyio.lowlevel.checkpoint()

    async with anyio.create_task_group() as tasks:
        tasks.start_soon(stdout_reader)
        tasks.start_soon(stdin_writer)
        try:
            yield read_stream, write_stream
        finally:
            closing = True
            with anyio.CancelScope(shield=True):  # every wait inside is bounded
                await shutdown()
            tasks.cancel_scope.cancel()
    await anyio.lowlevel.cancel_shielded_checkpoint()


class Waiting:
    """The ids of the requests sent to the server and not answered yet (the newest
    :data:`WAITING` of them: one the server never answers is forgotten in time)."""

    def __init__(self) -> None:
        self._ids: dict[RequestId, None] = {}

    def sent(self, message: SessionMessage) -> None:
        if isinstance(message.message, JSONRPCRequest):
            self._ids[message.message.id] = None
            while len(self._ids) > WAITING:
                del self._ids[next(iter(self._ids))]

    def read(self, item: Item) -> None:
        message = item.message if isinstance(item, SessionMessage) else None
        if isinstance(message, JSONRPCResponse | JSONRPCError) and message.id is not None:
            self._ids.pop(message.id, None)

    def cut(self, head: bytes) -> list[RequestId]:
        """The requests a message cut after ``head`` may have answered: the one its head
        names, else every one waiting (the server's connection ends with it)."""
        named = id_at_start(head)
        return [named] if named is not None and named in self._ids else list(self._ids)


async def _read_lines(
    process: ServerProcess,
    out: anyio.abc.ObjectSendStream[Item],
    server: StdioServerParameters,
    cap: int,
    waiting: Waiting,
) -> bool:
    """Pass each line of the server's output on as its message, until it ends, the session
    is gone, or a line passes ``cap``: then the requests it may have answered are answered
    :class:`~fleet.mcp.upstream.capped.Cut` and the reading ends (``True``)."""
    assert process.stdout is not None
    lines = LineReader(cap)
    async for chunk in process.stdout:
        items: list[Item] = [_message(line, server) for line in lines.feed(chunk)]
        if lines.over:
            log.warning("An MCP server wrote a message over %d bytes: it is ended", cap)
            items += [SessionMessage(cut(request_id)) for request_id in waiting.cut(lines.head)]
        for item in items:
            waiting.read(item)
            try:
                await out.send(item)
            except (anyio.ClosedResourceError, anyio.BrokenResourceError):
                return lines.over
        if lines.over:
            return True
    return False


def _message(line: bytes, server: StdioServerParameters) -> Item:
    """The message ``line`` holds, or why it holds none."""
    try:
        return _parse_line(line.decode(server.encoding, server.encoding_error_handler))
    except UnicodeDecodeError as exc:
        return exc


def _end_group(process: ServerProcess) -> None:
    """Kill the server's whole process group now (it was started in a session of its own,
    so its group is its pid): a server past the cap may write on and on, and is read no
    more."""
    if process.returncode is not None:
        return
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)

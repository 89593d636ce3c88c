"""Tests for connectors.console.input: stdin read as the event loop says it is readable,
with no thread, from a pipe, a regular file or /dev/null; and bytes cut into lines."""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

import pytest

from connectors.console.input import LineSplitter, StdinSource
from tests.polling import eventually


class Taken:
    """What a source handed on: its bytes, and whether it ended."""

    def __init__(self) -> None:
        self.data = b""
        self.ended = asyncio.Event()
        self.ends = 0

    def take(self, data: bytes) -> None:
        self.data += data

    def end(self) -> None:
        self.ends += 1
        self.ended.set()


async def _read_all(stream: BinaryIO) -> Taken:
    taken = Taken()
    source = StdinSource(stream, taken.take, taken.end)
    source.start()
    async with asyncio.timeout(5):
        await taken.ended.wait()
    return taken


class Pipe:
    """A pipe: its reading end as a file, its writing end for the test."""

    def __init__(self, stream: BinaryIO, writer: int) -> None:
        self.stream = stream
        self._writer: int | None = writer

    def write(self, data: bytes) -> None:
        assert self._writer is not None
        os.write(self._writer, data)

    def close_writer(self) -> None:
        if self._writer is not None:
            os.close(self._writer)
            self._writer = None


@pytest.fixture
def pipe() -> Iterator[Pipe]:
    read_fd, write_fd = os.pipe()
    with open(read_fd, "rb") as stream:
        made = Pipe(stream, write_fd)
        yield made
        made.close_writer()


async def test_a_pipe_is_read_with_no_thread_until_its_end(pipe: Pipe) -> None:
    """Bytes written to a pipe arrive as they come, with no thread started to read them;
    its writer closing is the end, said once."""
    taken = Taken()
    threads = set(threading.enumerate())  # another test's thread may end meanwhile
    source = StdinSource(pipe.stream, taken.take, taken.end)
    source.start()
    assert set(threading.enumerate()) <= threads
    pipe.write(b"ps\n")
    await eventually(lambda: taken.data == b"ps\n", "the first line read")
    pipe.write(b"whoami")
    pipe.close_writer()
    async with asyncio.timeout(5):
        await taken.ended.wait()
    assert taken.data == b"ps\nwhoami"
    assert taken.ends == 1


@pytest.fixture(params=["a regular file", "/dev/null"])
def unwatchable(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[BinaryIO, bytes]]:
    """A file the loop cannot watch, opened, and the bytes it holds."""
    path, data = Path(os.devnull), b""
    if request.param == "a regular file":
        path, data = tmp_path / "commands", b"ps\n" * 50_000
        path.write_bytes(data)
    with path.open("rb") as stream:
        yield stream, data


async def test_a_regular_file_and_dev_null_are_read_though_they_cannot_be_watched(
    unwatchable: tuple[BinaryIO, bytes],
) -> None:
    """The loop cannot watch a regular file or /dev/null (epoll refuses them); they are
    read to their end all the same, a chunk per loop turn, and the end said once."""
    stream, data = unwatchable
    taken = await _read_all(stream)
    assert (taken.data, taken.ends) == (data, 1)


async def test_stop_ends_the_reading_without_saying_it_ended(pipe: Pipe) -> None:
    """After stop, nothing more is handed on, and the end is not announced."""
    taken = Taken()
    source = StdinSource(pipe.stream, taken.take, taken.end)
    source.start()
    source.stop()
    pipe.write(b"ps\n")
    pipe.close_writer()
    for _ in range(5):
        await asyncio.sleep(0)
    assert (taken.data, taken.ends) == (b"", 0)


def test_lines_are_cut_at_newlines_and_the_last_one_kept_at_the_end() -> None:
    """A line ends at LF (a CR before it dropped), may come in pieces, and the text left
    at the end of input is the last line; bytes that are not UTF-8 are replaced."""
    lines = LineSplitter()
    assert lines.feed(b"ps\r\nsend a hel") == ["ps"]
    assert lines.feed(b"lo\n\xff\n") == ["send a hello", "\ufffd"]
    assert lines.feed(b"whoami") == []
    assert lines.end() == ["whoami"]
    assert lines.end() == []

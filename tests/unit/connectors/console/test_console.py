"""Tests for connectors.console.connector: stdin lines in, plain-text replies out."""

from __future__ import annotations

import asyncio
import io
import os
import threading
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO

import pytest

from connectors.base import Attachment, InboundMessage, OutboundMessage, RoomId, ThreadId
from connectors.console.config import ConsoleConfig
from connectors.console.connector import ConsoleConnector
from connectors.errors import ThreadsUnsupported
from fleet.timing.clock import ManualClock

T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


class Pipe:
    """stdin for the connector: the read end as a binary file, the write end for the test."""

    def __init__(self) -> None:
        read_fd, self._writer = os.pipe()
        self.stdin: BinaryIO = open(read_fd, "rb")  # noqa: SIM115 — closed in close()
        self._writer_open = True

    def type(self, text: str) -> None:
        """Write ``text`` to the connector's stdin."""
        os.write(self._writer, text.encode())

    def close_writer(self) -> None:
        """End of input, as when the operator presses Ctrl-D or the pipe's writer exits."""
        if self._writer_open:
            self._writer_open = False
            os.close(self._writer)

    def close(self) -> None:
        # Writer first: a reader thread blocked on the pipe then sees EOF and lets go of it.
        self.close_writer()
        self.stdin.close()


@dataclass
class Console:
    connector: ConsoleConnector
    stdout: io.StringIO
    stdin: Pipe

    def type(self, text: str) -> None:
        self.stdin.type(text)

    def close_stdin(self) -> None:
        self.stdin.close_writer()

    async def messages(self) -> list[InboundMessage]:
        """Everything the inbound stream yields until it ends (failing after 5 s)."""
        async with asyncio.timeout(5):
            return [msg async for msg in self.connector.inbound()]


@pytest.fixture
def pipe() -> Iterator[Pipe]:
    made = Pipe()
    yield made
    made.close()


@pytest.fixture
async def console(pipe: Pipe) -> AsyncIterator[Console]:
    stdout = io.StringIO()
    connector = ConsoleConnector(ConsoleConfig(), ManualClock(T0), stdin=pipe.stdin, stdout=stdout)
    yield Console(connector, stdout, pipe)
    await connector.stop()


async def test_each_line_becomes_an_addressed_message_from_the_console_user(
    console: Console,
) -> None:
    """Every stdin line is one InboundMessage from user 'console' in room 'console', addressed."""
    await console.connector.start()
    console.type("ps\nsend coder-1 it's fine\r\n")
    console.close_stdin()
    messages = await console.messages()
    assert [m.text for m in messages] == ["ps", "send coder-1 it's fine"]
    for msg in messages:
        assert msg.connector == "console"
        assert msg.sender == "console"
        assert msg.room == "console"
        assert msg.addressed is True
        assert msg.timestamp == T0
        assert msg.event_id is None
        assert msg.thread_id is None


async def test_the_sender_is_the_configured_user_id(pipe: Pipe) -> None:
    """The console user's id comes from ConsoleConfig.user_id."""
    connector = ConsoleConnector(
        ConsoleConfig(user_id="alice"), ManualClock(T0), stdin=pipe.stdin, stdout=io.StringIO()
    )
    harness = Console(connector, io.StringIO(), pipe)
    await connector.start()
    harness.type("whoami\n")
    harness.close_stdin()
    messages = await harness.messages()
    await connector.stop()
    assert [(m.sender, m.text) for m in messages] == [("alice", "whoami")]


async def test_blank_lines_are_skipped(console: Console) -> None:
    """Empty and whitespace-only lines produce no message."""
    await console.connector.start()
    console.type("\n   \nps\n\t\n")
    console.close_stdin()
    assert [m.text for m in await console.messages()] == ["ps"]


@pytest.mark.parametrize("word", ["quit", "QUIT", "!quit", "  quit  "])
async def test_quit_ends_the_stream(console: Console, word: str) -> None:
    """A 'quit' line ends the inbound stream; lines after it are never read."""
    await console.connector.start()
    console.type(f"ps\n{word}\nwhoami\n")
    assert [m.text for m in await console.messages()] == ["ps"]


async def test_end_of_input_ends_the_stream(console: Console) -> None:
    """EOF on stdin ends the inbound stream, after the lines before it."""
    await console.connector.start()
    console.type("ps\n")
    console.close_stdin()
    assert [m.text for m in await console.messages()] == ["ps"]


async def test_input_ended_before_any_byte_is_said_once(
    console: Console, caplog: pytest.LogCaptureFixture
) -> None:
    """stdin at its end from the start (``< /dev/null``) ends the app: a warning says why
    and how to run unattended; input that ended after a command says nothing."""
    await console.connector.start()
    console.close_stdin()
    with caplog.at_level("WARNING", logger="connectors.console.connector"):
        assert await console.messages() == []
    [record] = caplog.records
    assert "input ended before any command" in record.getMessage()
    assert "keep stdin open" in record.getMessage()


async def test_input_ended_after_a_command_warns_of_nothing(
    console: Console, caplog: pytest.LogCaptureFixture
) -> None:
    await console.connector.start()
    console.type("ps\n")
    console.close_stdin()
    with caplog.at_level("WARNING", logger="connectors.console.connector"):
        assert [m.text for m in await console.messages()] == ["ps"]
    assert caplog.records == []


async def test_a_last_line_without_newline_is_still_read(console: Console) -> None:
    """A final line with no trailing newline is delivered before EOF ends the stream."""
    await console.connector.start()
    console.type("ps")
    console.close_stdin()
    assert [m.text for m in await console.messages()] == ["ps"]


async def test_stop_ends_the_stream(console: Console) -> None:
    """stop() ends an inbound stream that is waiting for input while stdin stays open."""
    await console.connector.start()
    reading = asyncio.create_task(console.messages())
    await asyncio.sleep(0)  # one loop turn: the stream is now waiting on its queue
    assert not reading.done()
    await console.connector.stop()
    assert await reading == []


async def test_no_thread_reads_stdin(console: Console) -> None:
    """The console reads stdin as the loop says it is readable: no thread is started that
    a shutdown would find blocked in a read of it."""
    threads = set(threading.enumerate())  # another test's thread may end meanwhile
    await console.connector.start()
    console.type("ps\n")
    console.close_stdin()
    assert [m.text for m in await console.messages()] == ["ps"]
    assert set(threading.enumerate()) <= threads


async def test_the_link_is_up_until_the_stop_not_the_end_of_input(console: Console) -> None:
    """Piped commands end with the input while they are still being answered: the console
    reports itself up until the app stops it, then down."""
    await console.connector.start()
    console.type("status\n")
    console.close_stdin()
    assert [m.text for m in await console.messages()] == ["status"]  # the input has ended
    assert console.connector.link.report().up
    await console.connector.stop()
    assert not console.connector.link.report().up


async def test_start_twice_is_refused(console: Console) -> None:
    """The console connector starts once; a second start raises."""
    await console.connector.start()
    with pytest.raises(RuntimeError, match="starts once"):
        await console.connector.start()


async def test_send_renders_markdown_as_plain_text(console: Console) -> None:
    """Replies lose their markdown: emphasis is dropped, a table is aligned without pipes."""
    await console.connector.start()
    await console.connector.send(
        OutboundMessage(
            room=RoomId("console"),
            markdown="**Two** agents:\n\n| name | state |\n|---|---|\n| coder-1 | running |\n",
        )
    )
    assert console.stdout.getvalue() == (
        "Two agents:\n\nname     state\n-------  -------\ncoder-1  running\n\n"
    )


async def test_send_lists_images_and_returns_distinct_ids(console: Console) -> None:
    """Images are named on their own line, and every send returns a new event id."""
    await console.connector.start()
    first = await console.connector.send(
        OutboundMessage(room=RoomId("console"), markdown="chart", images=(Path("/tmp/c.png"),))
    )
    second = await console.connector.send(OutboundMessage(room=RoomId("console"), markdown="ok"))
    assert console.stdout.getvalue() == "chart\n[image: /tmp/c.png]\n\nok\n\n"
    assert first.event_ids != second.event_ids


async def test_a_file_is_printed_whole_between_its_name_and_an_end_line(
    console: Console,
) -> None:
    """A terminal has no attachments: a file's text follows the message, named with its
    size and ended by a line; an escape sequence in it is taken out."""
    await console.connector.start()
    text = "diff --git a/x b/x\n+\x1b[2Jred\n" + "+line\n" * 300
    diff = Attachment.of_text("diff-c1.diff", text, "text/x-diff")
    await console.connector.send(OutboundMessage(RoomId("console"), "long diff", files=(diff,)))
    shown = text.replace("\x1b", "").rstrip("\n")
    assert console.stdout.getvalue() == (
        f"long diff\n[file diff-c1.diff, 1.8 KiB]\n{shown}\n[end of diff-c1.diff]\n\n"
    )


async def test_non_interactive_console_prints_no_banner_or_prompt(console: Console) -> None:
    """With stdin from a pipe there is no welcome banner and no prompt."""
    await console.connector.start()
    console.type("\n")
    console.close_stdin()
    await console.messages()
    assert console.stdout.getvalue() == ""


async def test_open_thread_raises_threads_unsupported(console: Console) -> None:
    """The console has no threads: open_thread raises ThreadsUnsupported, and there is no
    link to one."""
    with pytest.raises(ThreadsUnsupported):
        await console.connector.open_thread(RoomId("console"), "coder-1", "hello")
    assert console.connector.thread_link(RoomId("console"), ThreadId("t")) is None


async def test_health_follows_the_lifecycle(console: Console) -> None:
    """Health is ok only between start and stop."""
    assert not (await console.connector.health()).ok
    await console.connector.start()
    assert (await console.connector.health()).ok
    await console.connector.stop()
    assert not (await console.connector.health()).ok


async def test_name_and_home_room(console: Console) -> None:
    """The connector is named 'console' and its home room is 'console'."""
    assert console.connector.name == "console"
    assert console.connector.home_room == "console"

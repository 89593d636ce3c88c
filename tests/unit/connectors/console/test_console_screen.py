"""Tests for connectors.console.screen, and the console connector at a real pseudo-terminal:
the prompt kept at the bottom, replies and log lines printed above it, the terminal's
settings given back."""

from __future__ import annotations

import io
import logging
import os
import select
import termios
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import BinaryIO, TextIO

import pytest

from connectors.base import OutboundMessage, RoomId
from connectors.console.config import ConsoleConfig
from connectors.console.connector import ConsoleConnector
from connectors.console.screen import Screen
from fleet.timing.clock import ManualClock
from tests.polling import eventually

ERASE = "\r\x1b[J"


def test_the_prompt_and_the_typed_line_are_drawn_again_under_text_printed_above() -> None:
    """Text printed while a line is half typed erases the prompt line, prints, and draws
    the prompt with the half-typed line again; Enter keeps the line and draws a new
    prompt; closing erases the prompt."""
    out = io.StringIO()
    screen = Screen(out, "fw> ")
    screen.open()
    assert screen.keys(b"who") == []
    screen.above("fw: warning: something")
    assert out.getvalue() == f"fw> who{ERASE}fw: warning: something\nfw> who"
    out.truncate(0)
    out.seek(0)
    assert screen.keys(b"ami\r") == ["whoami"]
    assert out.getvalue() == f"ami{ERASE}fw> whoami\nfw> "
    out.truncate(0)
    out.seek(0)
    screen.close()
    screen.above("late\n")
    assert out.getvalue() == f"{ERASE}late\n"


def test_a_line_longer_than_the_terminal_is_erased_from_its_first_row() -> None:
    """A typed line that wrapped (80 columns when the width is unknown) is erased from the
    prompt's row: the cursor goes up first."""
    out = io.StringIO()
    screen = Screen(out, "fw> ")
    screen.open()
    screen.keys(b"x" * 100)
    out.truncate(0)
    out.seek(0)
    screen.above("note")
    assert out.getvalue() == f"\x1b[1A{ERASE}note\nfw> {'x' * 100}"


def test_editing_and_the_end_of_input() -> None:
    """Backspace draws the line again; Ctrl-D on an empty line ends the input."""
    out = io.StringIO()
    screen = Screen(out, "fw> ")
    screen.open()
    screen.keys(b"pss\x7f")
    assert out.getvalue().endswith(f"{ERASE}fw> ps")
    assert screen.keys(b"\x15\x04") == [None]


@dataclass
class Pty:
    """A pseudo-terminal: the console's side as files, the test's side as a descriptor."""

    master: int
    stdin: BinaryIO
    stdout: TextIO

    def type(self, data: bytes) -> None:
        os.write(self.master, data)

    def read(self) -> str:
        """What the console printed since the last read (line ends as the terminal has them)."""
        chunks = []
        while select.select([self.master], [], [], 0)[0]:
            chunks.append(os.read(self.master, 65536))
        return b"".join(chunks).decode(errors="replace").replace("\r\n", "\n")

    def canonical(self) -> bool:
        """Whether the terminal edits lines itself and echoes (its usual settings)."""
        flags = termios.tcgetattr(self.stdin.fileno())[3]
        return bool(flags & termios.ICANON and flags & termios.ECHO)


@pytest.fixture
def pty() -> Iterator[Pty]:
    master, slave = os.openpty()
    stdin = open(slave, "rb", buffering=0, closefd=False)  # noqa: SIM115 — closed below
    stdout = open(slave, "w", encoding="utf-8", closefd=False)  # noqa: SIM115
    yield Pty(master, stdin, stdout)  # type: ignore[arg-type]
    stdin.close()
    stdout.close()
    os.close(slave)
    os.close(master)


async def test_at_a_terminal_replies_and_warnings_print_above_the_prompt(pty: Pty) -> None:
    """The console at a real pseudo-terminal: it reads keys itself (no echo, no line
    editing by the terminal), prints a reply and a warning logged on the terminal above
    the half-typed line, and gives the terminal and the log handler back when it stops."""
    clock = ManualClock(datetime(2025, 3, 1, tzinfo=UTC))
    connector = ConsoleConnector(ConsoleConfig(), clock, stdin=pty.stdin, stdout=pty.stdout)
    handler = logging.StreamHandler(pty.stdout)
    logging.getLogger().addHandler(handler)
    try:
        await connector.start()
        assert not pty.canonical()
        await eventually(lambda: "fleetwarden> " in pty.read(), "the prompt")
        pty.type(b"who")
        await eventually(lambda: pty.read() == "who", "the typed keys drawn")
        await connector.send(OutboundMessage(room=RoomId("console"), markdown="**Done**."))
        logging.getLogger("some.part").warning("webhook gh: 401 the signature does not match")
        shown = await eventually(pty.read, "the reply and the warning")
        assert shown == (
            f"{ERASE}Done.\n\nfleetwarden> who"
            f"{ERASE}webhook gh: 401 the signature does not match\nfleetwarden> who"
        )
        pty.type(b"ami\r")
        inbound = connector.inbound()
        message = await anext(inbound)
        assert message.text == "whoami"
        await connector.stop()
        assert pty.canonical()
        assert handler.stream is pty.stdout
    finally:
        logging.getLogger().removeHandler(handler)
        await connector.stop()

"""The `verify` command: a console admin answers an operator's emoji verification."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.acl import Role
from bot.commands.errors import CommandError
from bot.commands.handlers.verify import VerifyCommand
from bot.commands.parsing.grammar import Grammar
from bot.commands.routing.request import Request
from bot.commands.specs import COMMANDS
from connectors.matrix.verification.board import Pending
from connectors.matrix.verification.cli import board_of
from tests.unit.chat_fakes import message


def request(text: str, connector: str) -> Request:
    command = Grammar(COMMANDS, prefix="!").parse(text, addressed=True)
    assert command is not None
    msg = message(text, connector=connector)
    return Request(message=msg, role=Role.ADMIN, command=command)


async def test_the_console_answer_reaches_the_board(tmp_path: Path) -> None:
    """`verify ID yes` on the console writes the answer the running bot reads."""
    board = board_of(tmp_path)
    board.show(Pending("abcdef", "@ann:hs", "DEV", (("🐶", "Dog"),), (1, 2, 3), "compare"))
    said = await VerifyCommand(tmp_path, matrix=True).verify(
        request("verify abcdef yes", "console")
    )
    assert "confirmed" in said and board.take_answer("abcdef") is True


async def test_refused_in_matrix_and_without_matrix(tmp_path: Path) -> None:
    """Not in the Matrix room being verified; not without a Matrix connector; not for an
    unknown id."""
    board_of(tmp_path).show(Pending("abcdef", "@ann:hs", "D", (("🐶", "Dog"),), (1,), "s"))
    with pytest.raises(CommandError, match="never in the chat being verified"):
        await VerifyCommand(tmp_path, matrix=True).verify(request("verify abcdef yes", "matrix"))
    with pytest.raises(CommandError, match="no Matrix connector"):
        await VerifyCommand(tmp_path, matrix=False).verify(request("verify abcdef no", "console"))
    with pytest.raises(CommandError, match="no pending verification"):
        await VerifyCommand(tmp_path, matrix=True).verify(request("verify zzzzzz no", "console"))
    assert board_of(tmp_path).take_answer("abcdef") is None

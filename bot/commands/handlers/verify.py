"""The ``verify`` command: a console admin's answer to an operator's emoji verification of
the bot's Matrix device (the emojis are shown on the console as the operator starts it).

Answered only on the console: the Matrix room is the channel the verification
authenticates, so it is never where the comparison is confirmed.
"""

from __future__ import annotations

from pathlib import Path

from bot.commands.errors import CommandError
from bot.commands.family import Family, command
from bot.commands.handlers.specs import VERIFY
from bot.commands.routing.request import Request
from connectors.matrix.verification.cli import ANSWERS, board_of


class VerifyCommand(Family):
    """The ``verify`` handler over the Matrix crypto store's verification board."""

    def __init__(self, state_dir: Path, *, matrix: bool) -> None:
        self._state_dir = state_dir
        self._matrix = matrix

    @command(VERIFY)
    async def verify(self, req: Request) -> str:
        if not self._matrix:
            raise CommandError("there is no Matrix connector to verify operators for")
        if req.message.connector != "console":
            raise CommandError(
                "answer a verification on the console or with `fleetwarden matrix verify`, "
                "never in the chat being verified"
            )
        vid, yes = req.arg("ID"), ANSWERS[req.arg("ANSWER")]
        try:
            board_of(self._state_dir).answer(vid, yes)
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        if yes:
            return f"Verification {vid}: confirmed; the bot signs the operator's identity."
        return f"Verification {vid}: rejected; it is cancelled and nothing is signed."

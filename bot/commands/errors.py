"""Operator-facing command errors: their messages are shown in chat, verbatim.

    CommandError                     a command could not be carried out
    ├── ParseError                   the text could not be parsed (carries the usage)
    ├── PermissionDenied             the sender may not run this command
    └── NotFound                     the command names something that does not exist

These are separate from ``fleet.errors.FleetwardenError``: that tree is for failures of
the system, this one for mistakes an operator can fix by typing something else. Each
message is one line that says what was wrong and, where it helps, what to type instead.
"""

from __future__ import annotations


class CommandError(Exception):
    """A command could not be carried out; ``str(error)`` is shown to the operator."""


class ParseError(CommandError):
    """The text could not be parsed as a command.

    ``problem`` is what went wrong; ``usage`` is the command's usage line when the command
    was recognised. The message shown is ``"<problem> — usage: <usage>"``.
    """

    def __init__(self, problem: str, *, usage: str | None = None) -> None:
        self.problem = problem
        self.usage = usage
        super().__init__(f"{problem} — usage: {usage}" if usage else problem)


class PermissionDenied(CommandError):
    """The sender lacks the role the command needs."""


class NotFound(CommandError):
    """The command refers to something (an agent, a runtime, a topic) that does not exist."""

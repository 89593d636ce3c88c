"""How a command came to run: typed in chat (or written in an agent's thread), its source
:data:`TYPED`; or run for its sender without them typing it now — a schedule firing —
as a :class:`Delegated` command, its source the schedule's (``schedule:3``); or typed in a
shell, its source :data:`SHELL`. The source is
written to the command's audit entry and rides on its request, so a launch it makes says
where it came from."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Final

from connectors.base import RoomId, UserId

TYPED: Final = "typed"
"""The audit source of a command someone typed (or wrote in an agent's thread)."""
SHELL: Final = "shell"
"""The audit source of a command typed in a shell (``fleetwarden spawn …``), and the
connector name it comes on (:mod:`bot.control`)."""


@dataclass(frozen=True, slots=True)
class Delegated:
    """A command to run for ``sender`` without them typing it now: a schedule firing.

    ``event_id`` is synthetic and names this one run (``schedule:3:<time it was due>``); it
    is claimed like a chat event's id, so a double fire runs once. ``source`` is written to
    the audit entry (``schedule:3``); ``heading``, when given, goes above the reply.
    """

    sender: UserId
    room: RoomId
    text: str
    event_id: str
    source: str
    at: datetime
    heading: str = ""

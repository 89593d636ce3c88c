"""How a command came to run: typed in chat (or written in an agent's thread), its source
:data:`TYPED`; or run for its sender without them typing it now — a schedule firing, a
queued launch's turn — as a :class:`Delegated` command, its source the schedule's
(``schedule:3``); or a start the fleet built for its asker — a held task's — as a
:class:`DelegatedStart`, no text to read (``task:12``); or typed in a shell, its source
:data:`SHELL`. The source is written to the command's audit entry and rides on its request,
so a launch it makes says where it came from."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Final

from bot.commands.routing.request import Handler
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


@dataclass(frozen=True, slots=True)
class DelegatedStart:
    """A start the fleet built, to carry out for ``sender`` in ``room`` without them asking
    now: a held task whose wait is over (:class:`fleet.tasks.asked.HeldStart`).

    It is no text: ``command`` (``task start``) and ``args`` are the command it is, for the
    ACL and the audit; ``act`` carries it out (the launch request the fleet built, through
    the one admission); ``asked`` is what its asker asked, as the audit and a spawn queue's
    entry keep it. ``event_id`` (``task:12:<runs so far>``) is claimed once; ``source``
    (``task:12``) is written to the audit entry; ``heading`` goes above the reply.
    """

    sender: UserId
    room: RoomId
    command: str
    act: Handler
    asked: str
    event_id: str
    source: str
    at: datetime
    heading: str = ""
    args: Mapping[str, str] = field(default_factory=dict)

"""What a command handler gets and gives: the :class:`Request` (a parsed, authorised
command and its message), the :class:`Reply`, and the callables handlers are handed."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from bot.acl import Role
from bot.commands.parsing.grammar import Command
from connectors.base import Attachment, Choice, InboundMessage
from fleet.supervisor.admission.admit import Wait
from fleet.supervisor.admission.request import Queued
from fleet.supervisor.fleet import RosterDiff


@dataclass(frozen=True, slots=True)
class Request:
    """A parsed, authorised command and who sent it. ``confirmed``: its sender has just
    confirmed it with a reply to the question it asked (:mod:`bot.commands.routing.confirmations`).
    ``source``: how it came, as its audit entry says (``typed``, or ``schedule:<id>`` when
    an operator schedule ran it). ``asked``: when confirmed, the question it confirmed
    (what it said it would do); ``plan``: what the command decided as it asked
    (:meth:`~bot.commands.routing.confirmations.ConfirmationDesk.ask`'s ``plan``), to act on."""

    message: InboundMessage
    role: Role
    command: Command
    confirmed: bool = False
    source: str = "typed"
    asked: str | None = None
    plan: Mapping[str, object] | None = None

    def arg(self, name: str) -> str:
        return self.command.args[name]

    @property
    def who(self) -> str:
        return f"{self.message.sender} on {self.message.connector}"


@dataclass(frozen=True, slots=True)
class Reply:
    """A handler's answer, posted where the command was typed (the room, or the thread it
    was typed in), after the text its ``images`` (PNG files) and ``files``.

    ``topic`` names the agent the answer concerns: typed outside that agent's thread in the
    room, the answer links to it and ``thread_line`` (who stopped it, and how) is left
    there too. ``open_thread``: where the room has no thread for ``topic`` yet and the
    command was typed in the room itself, this answer opens one as its root. ``new_thread``:
    a fresh run of ``topic`` — it always gets a new thread, this answer its root; the old
    one, if any, gets a last line pointing to the new one. ``detail``, when given, is
    written to the command's audit entry: what it acted on. ``data``: the same answer as
    data, the object ``fleetwarden VERB --json`` prints (``docs/commands.md`` documents each
    verb's; ``None`` where a command has none). ``choices``: the answers it offers as
    buttons where the medium has them (a confirmation's Yes).
    """

    markdown: str
    topic: str | None = None
    images: tuple[Path, ...] = ()
    files: tuple[Attachment, ...] = ()  # text files sent with it (a long diff)
    new_thread: bool = False
    open_thread: bool = False
    thread_line: str | None = None
    detail: str | None = None
    data: Mapping[str, object] | None = None
    choices: tuple[Choice, ...] = ()  # buttons offered with it, where the medium has them


Handler = Callable[[Request], Awaitable[str | Reply]]
RosterReloader = Callable[[], Awaitable[RosterDiff]]
Follower = Callable[[InboundMessage, str, str], None]  # (message, agent, first screen)


class SpawnGate(Protocol):
    """The spawn queue a ``spawn`` waits in, and the caps a ``restart`` passes
    (:class:`bot.commands.handlers.launches.spawn_queue.SpawnQueue`)."""

    def waiter(self, req: Request) -> Wait:
        """Where ``req``'s launch waits when the admission holds it: the spawn queue, as
        its sender in its room."""
        ...

    async def said(self, name: str, queued: Queued) -> str:
        """What ``spawn`` says of ``name``'s launch that waits."""
        ...

    async def hold(self, agent: str) -> str | None:
        """For ``restart``: ``None`` to go ahead (holding a slot until :meth:`release` when
        the agent does not run), else why not."""
        ...

    def release(self, agent: str) -> None: ...

    async def entries(self) -> Sequence[object]:
        """The launches waiting, oldest first."""
        ...

"""What a command handler gets and gives: the :class:`Request` (a parsed, authorised
command and its message), the :class:`Reply`, and the callables handlers are handed."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Protocol

from bot.acl import Role
from bot.grammar import Command
from connectors.base import InboundMessage
from fleet.supervisor import RosterDiff


@dataclass(frozen=True, slots=True)
class Request:
    """A parsed, authorised command and who sent it."""

    message: InboundMessage
    role: Role
    command: Command

    def arg(self, name: str) -> str:
        return self.command.args[name]

    @property
    def who(self) -> str:
        return f"{self.message.sender} on {self.message.connector}"


@dataclass(frozen=True, slots=True)
class Reply:
    """A handler's answer. With ``topic``, it goes into that topic's thread (opened with
    this reply as its root where the room has none yet). ``images`` (PNG files) are posted
    after the text, in the same place."""

    markdown: str
    topic: str | None = None
    images: tuple[Path, ...] = ()


Handler = Callable[[Request], Awaitable[str | Reply]]
Deferrer = Callable[[Request, datetime, str], Awaitable[str]]  # (spawn, retry when, why) -> reply
RosterReloader = Callable[[], Awaitable[RosterDiff]]
Follower = Callable[[InboundMessage, str, str], None]  # (message, agent, first screen)


class SpawnGate(Protocol):
    """What ``spawn`` passes before launching: the concurrency caps and the spawn queue
    (:class:`bot.spawn_queue.SpawnQueue`)."""

    async def admit(self, req: Request, *, runtime: str | None, account: str | None) -> str | None:
        """``None``: launch now, holding a slot until :meth:`release`; else it was queued,
        and this is the reply saying so."""
        ...

    async def hold(self, agent: str) -> str | None:
        """For ``restart``: ``None`` to go ahead (holding a slot until :meth:`release` when
        the agent does not run), else why not."""
        ...

    def release(self, agent: str) -> None: ...

    async def entries(self) -> Sequence[object]:
        """The launches waiting, oldest first."""
        ...

"""A notice: news about the fleet that operators should read without having asked for it.

An agent failed or was restarted by the watchdog, a budget stepped up the ladder, the pacing
report is due. Whoever has news builds a :class:`Notice` and hands it to the one
:class:`NoticeBoard` of the running app, which knows the home rooms and the agents'
threads on every connector. This module is a leaf: it imports nothing of Fleetwarden's, so
every package may speak it (connectors take :data:`Tone` from here).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Protocol

Tone = Literal["info", "ok", "warning", "error"]
"""How a notice should feel: media that can show it do (a Discord embed's colour)."""


@dataclass(frozen=True, slots=True)
class Notice:
    """Markdown text, its tone, optional images, and where it belongs.

    It goes into the threads of ``agents`` on every connector and, with ``home_too`` (or
    when none of them has a thread there), into each connector's home room. A notice about
    no agent goes to the home rooms. A ``feed`` notice (an agent's live work) goes only into
    its threads, or the home room of a medium without threads.
    """

    markdown: str
    tone: Tone | None = None
    images: tuple[Path, ...] = ()
    agents: tuple[str, ...] = ()
    home_too: bool = True
    feed: bool = False


@dataclass(frozen=True, slots=True)
class Delivery:
    """What became of a notice: the places that could not take it, as
    ``"<connector>: <why>"``. Empty when every place got it."""

    failed: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return not self.failed


class NoticeBoard(Protocol):
    """Posts notices where they belong. One place failing does not stop the others; the
    failures are logged and returned, never raised."""

    async def post(self, notice: Notice) -> Delivery: ...

"""A notice: news about the fleet that operators should read without having asked for it.

An agent failed or was restarted by the watchdog, a budget stepped up the ladder, the pacing
report is due. Whoever has news builds a :class:`Notice` and hands it to the one
:class:`NoticeBoard` of the running app, which knows the home rooms and the agents'
threads on every connector. This module is a leaf: it imports nothing of Fleetwarden's, so
every package may speak it (connectors take :data:`Tone` from here).
"""

from __future__ import annotations

import re
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

    An ``alert`` (a failure, a limit reached, a stalled agent) must wake someone: it is
    posted so the operator's client notifies them — mentioning ``by``, the operator who
    started the agent as the fleet records them (``"@ann:example.org on matrix"``, see
    :func:`starter`), on the connector they use, else that connector's on-call users.
    Routine news (an agent's live work, reports, a run that finished) is no alert.
    """

    markdown: str
    tone: Tone | None = None
    images: tuple[Path, ...] = ()
    agents: tuple[str, ...] = ()
    home_too: bool = True
    feed: bool = False
    alert: bool = False
    by: str | None = None
    about: tuple[str, ...] = ()
    """What else it is news of, as a command names it (``mission:NAME``): like a notice
    about an agent, it waits while a command about that is answered, so the answer comes
    first (``bot.chat.ordering``)."""


# A run's trigger as the fleet records it: "spawned by WHO", "restarted by WHO",
# "follow-up from WHO", where WHO is "<user> on <connector>" (a command's sender),
# perhaps followed by ", queued #3".
_TRIGGER = re.compile(r"(?:spawned by|restarted by|follow-up from) (\S+ on [\w-]+)")
_WHO = re.compile(r"(\S+) on ([\w-]+)")


def starter(trigger: str | None) -> str | None:
    """Who started a run, from its trigger (``"spawned by @ann:hs on matrix"`` →
    ``"@ann:hs on matrix"``); ``None`` when no operator did (the watchdog, autostart)."""
    found = None if trigger is None else _TRIGGER.match(trigger)
    return None if found is None else found.group(1)


def who_on(by: str | None) -> tuple[str, str] | None:
    """``by`` (``"@ann:hs on matrix"``) as (user id, connector name), if it names one."""
    found = None if by is None else _WHO.match(by)
    return None if found is None else (found.group(1), found.group(2))


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

"""Which question a Yes button answers.

A click on a button whose answer is a reply (a command's ``yes``) reaches Fleetwarden as
the clicker typing ``yes`` in that place, and the confirmation desk takes a ``yes`` for
whatever its sender was asked there last. So a Yes under an older question — answered,
lapsed, or replaced by a newer one the same person asked in the same place — or under
someone else's question would confirm another than the one it was shown on. The
connector remembers each question it posted with such a button (its ``ts``, its place,
who asked: the sender of the command it answers) and lets a click through only on the
question that is its clicker's own and their latest in that place. A question it does not
remember (posted before a restart) is left to the desk, which still takes only its
sender's ``yes`` for their live question. A question's Yes is taken off (the message shown
again without it) once its asker clicks it, and when the same asker's newer question in
that place replaces it; one answered by a typed ``yes``, or lapsed, keeps its button, whose
click then does nothing (the desk takes a `yes` only for a live question).
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Final, TypeVar

KEPT: Final = 2048
"""How many questions, and how many senders of recent commands, are remembered."""

Place = tuple[str, str | None]
K = TypeVar("K")
V = TypeVar("V")


class Questions:
    """The questions posted with a Yes button, and who typed the commands they answer."""

    def __init__(self) -> None:
        self._senders: OrderedDict[str, str] = OrderedDict()  # a command's ts -> its sender
        self._asked: OrderedDict[str, tuple[Place, str | None]] = OrderedDict()
        self._latest: OrderedDict[tuple[Place, str | None], str] = OrderedDict()
        self._shown: OrderedDict[str, str] = OrderedDict()  # ts -> its text, buttons still on

    def heard(self, event_id: str, sender: str) -> None:
        """A person's message ``event_id`` came from ``sender``."""
        _keep(self._senders, event_id, sender)

    def asked(self, ts: str, place: Place, answering: str | None, text: str) -> str | None:
        """Question ``ts`` (``text``) was posted in ``place``, answering message
        ``answering``; the question it replaces (the same asker's latest there) whose
        buttons are still shown, if any."""
        asker = None if answering is None else self._senders.get(answering)
        older = self._latest.get((place, asker))
        _keep(self._asked, ts, (place, asker))
        _keep(self._latest, (place, asker), ts)
        _keep(self._shown, ts, text)
        return older if older is not None and older in self._shown else None

    def settled(self, ts: str) -> str | None:
        """Question ``ts`` is answered (or replaced): its text, to show again without its
        buttons — once; ``None`` when it is not (or no longer) remembered with them."""
        return self._shown.pop(ts, None)

    def refusal(self, ts: str, clicker: str) -> str | None:
        """Why a Yes clicked by ``clicker`` on question ``ts`` answers nothing; ``None``
        when it may go to the desk."""
        found = self._asked.get(ts)
        if found is None:
            return None
        place, asker = found
        if asker is not None and asker != clicker:
            return f"that question is {asker}'s: only they confirm it; nothing was done"
        if self._latest.get((place, asker)) != ts:
            return "that question was replaced by a newer one here; nothing was done"
        return None


def _keep(kept: OrderedDict[K, V], key: K, value: V) -> None:
    kept[key] = value
    kept.move_to_end(key)
    while len(kept) > KEPT:
        kept.popitem(last=False)

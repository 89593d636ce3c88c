"""How a row of the register says its words were redacted, and for which secrets
(migrations 30 and 31): ``redacted`` is 1 when every word of the row passed a redactor that
knew the value of every secret the config named then, and ``redacted_for`` names those
secrets (their variables' names, never their values). A secret the config names later is
not covered by the mark: the row is redacted again (:data:`STALE`), and a reader
without that secret's value withholds its words until it is."""

from __future__ import annotations

import json
from collections.abc import Callable, Collection
from dataclasses import dataclass

Redact = Callable[[str], str]
"""Text with every secret known taken out (:meth:`fleet.redaction.redactor.Redactor.redact`)."""

STALE = "(redacted = 0 OR redacted_for <> ?)"
"""Where a row's mark does not cover the secrets named now (its parameter:
:attr:`Marking.names`): its words are redacted again, and it is marked anew."""

KEPT = "redacted = CASE WHEN redacted_for = ? THEN redacted * ? ELSE 0 END"
"""A row's mark once some of its words are written now: kept only when it was made for the
same secrets and what is written now is redacted with them all (its parameters:
:attr:`Marking.names`, :attr:`Marking.vouched`); else lost until it is redacted again."""


def names_text(names: Collection[str]) -> str:
    """``names`` as a row's ``redacted_for`` keeps them: a JSON list, sorted."""
    return json.dumps(sorted(set(names)))


def names_of(text: object) -> frozenset[str]:
    """The names a row's ``redacted_for`` holds (none for a row marked before migration 31,
    or an unreadable one: it then covers no secret)."""
    try:
        found = json.loads(str(text or "[]"))
    except ValueError:
        return frozenset()
    return frozenset(str(name) for name in found) if isinstance(found, list) else frozenset()


def covers(redacted: bool, redacted_for: Collection[str], unknown: Collection[str]) -> bool:
    """Whether a row marked ``redacted`` for the secrets ``redacted_for`` was redacted of
    each secret in ``unknown`` (the ones its reader cannot redact itself: none, and it may
    show any row, redacting it itself)."""
    return not unknown or (redacted and set(unknown) <= set(redacted_for))


@dataclass(frozen=True, slots=True)
class Marking:
    """What the register's words are written with now: ``redact`` (``None``: nothing is
    redacted), and whether it knows the value of every secret the config names
    (``whole``), the names of those secrets."""

    redact: Redact | None = None
    whole: bool = False
    names: str = names_text(())

    def clean(self, text: str) -> str:
        """``text`` redacted, when there is a redactor."""
        return text if self.redact is None or not text else self.redact(text)

    @property
    def vouched(self) -> int:
        """The mark a row written now gets: ``1`` when it is redacted with every secret the
        config names (``redacted_for``: :attr:`names`), else ``0``."""
        return 1 if self.redact is not None and self.whole else 0

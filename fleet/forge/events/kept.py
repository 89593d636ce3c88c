"""A forge event as the ledger keeps it with its delivery until it is acted on
(:func:`kept`), and read back at the next start (:func:`event_of`): so a delivery taken
but not yet acted on when Fleetwarden stopped — killed, say — is acted on, not lost.

What is kept is the event Fleetwarden read from the signed delivery, not the body: it was
verified and judged fresh when it came, and is acted on as it was then. A kept text that
does not read back (a version's change, a hand edit) is no event.
"""

from __future__ import annotations

import json
from dataclasses import fields
from datetime import datetime
from typing import Any, Final

from fleet.forge.model import EventKind, ForgeEvent
from fleet.ledger.records.forge import Slug

_ORDER: Final = tuple(f.name for f in fields(ForgeEvent))
_FIELDS: Final = frozenset(_ORDER)


def kept(event: ForgeEvent) -> str:
    """``event`` as JSON (its fields in their order; each is a plain value but for these
    three, written as text)."""
    data: dict[str, Any] = {name: getattr(event, name) for name in _ORDER}
    data["kind"] = event.kind.value
    data["repo"] = str(event.repo)
    data["at"] = event.at.isoformat()
    return json.dumps(data, separators=(",", ":"), ensure_ascii=False)


def event_of(text: str) -> ForgeEvent | None:
    """The event :func:`kept` wrote, or None when ``text`` is not one."""
    try:
        data = json.loads(text)
        if not isinstance(data, dict) or set(data) != _FIELDS:
            return None
        data["kind"] = EventKind(data["kind"])
        data["repo"] = Slug.parse(data["repo"])
        data["at"] = datetime.fromisoformat(data["at"])
        event = ForgeEvent(**data)
    except (ValueError, TypeError, KeyError):
        return None
    return event if _well_typed(event) else None


def _well_typed(event: ForgeEvent) -> bool:
    texts = (event.forge, event.delivery, event.name, event.actor, event.body)
    optional = (event.label, event.assignee, event.review_state, event.head)
    return (
        all(isinstance(t, str) for t in texts)
        and all(t is None or isinstance(t, str) for t in optional)
        and isinstance(event.number, int)
        and all(isinstance(b, bool) for b in (event.is_pull, event.merged, event.confirm))
        and (event.comment_id is None or isinstance(event.comment_id, int))
        and event.at.tzinfo is not None
    )

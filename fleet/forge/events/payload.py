"""A delivery's payload as forge events read it (:class:`Payload`): typed reads by dotted
path, refusing (:class:`~fleet.forge.events.delivery.BadDelivery`, 400) a payload that
lacks what its event must carry. Everything read is hostile text."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Final

from fleet.forge.events.delivery import BadDelivery
from fleet.forge.model import same_login
from fleet.forge.schema import ForgeEntry, ForgeTrigger
from fleet.ledger.records.forge import Slug

EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)


class Payload:
    """Typed reads of a payload, refusing one that lacks what its event must carry."""

    def __init__(self, data: Mapping[str, Any]) -> None:
        self.data = data

    def get(self, path: str) -> Any:
        node: Any = self.data
        for part in path.split("."):
            if not isinstance(node, Mapping):
                return None
            node = node.get(part)
        return node

    def text(self, path: str, default: str | None = None) -> str:
        value = self.get(path)
        if isinstance(value, str):
            return value
        if value is None and default is not None:
            return default
        raise BadDelivery(400, f"the payload has no {path}")

    def number(self, path: str) -> int:
        value = self.get(path)
        if isinstance(value, bool) or not isinstance(value, int):
            raise BadDelivery(400, f"the payload has no {path}")
        return value

    def optional_text(self, path: str) -> str | None:
        value = self.get(path)
        return value if isinstance(value, str) else None

    def time(self, *paths: str) -> datetime:
        """The first of ``paths`` that holds a time (:data:`EPOCH`: none does): ISO 8601, or
        as GitLab writes some (``2015-05-17 18:08:09 UTC``)."""
        for path in paths:
            value = self.get(path)
            if isinstance(value, str) and value:
                try:
                    found = datetime.fromisoformat(_utc(value))
                except ValueError:
                    raise BadDelivery(400, f"{path} is not a time") from None
                return found if found.tzinfo else found.replace(tzinfo=UTC)
        return EPOCH

    def slug(self) -> Slug:
        """The repository, or an empty one for an event about no repository (a ping to
        an organization's hook)."""
        if self.get("repository") is None:
            return Slug("", "")
        try:
            return Slug.parse(self.optional_text("repository.full_name") or "")
        except ValueError:
            pass
        owner = self.optional_text("repository.owner.login") or self.optional_text(
            "repository.owner.username"
        )
        name = self.optional_text("repository.name")
        if not owner or not name:
            raise BadDelivery(400, "the payload has no repository name")
        return Slug(owner, name)

    def actor(self) -> str:
        return self.optional_text("sender.login") or self.optional_text("sender.username") or ""

    def logins(self, path: str) -> tuple[str, ...]:
        return self._each(path, "login")

    def labels(self, path: str) -> tuple[str, ...]:
        return self._each(path, "name")

    def _each(self, path: str, key: str) -> tuple[str, ...]:
        """The ``key`` text of each item of the list at ``path``: none where it is no list,
        an item without it passed over."""
        found = self.get(path)
        if not isinstance(found, list):
            return ()
        return tuple(
            text
            for item in found
            if isinstance(item, Mapping) and isinstance(text := item.get(key), str)
        )


def _utc(value: str) -> str:
    """``value`` with a trailing `` UTC`` (Ruby's way of writing a time in UTC) as ISO's
    offset."""
    head, utc, tail = value.rpartition(" UTC")
    return head + "+00:00" if utc and not tail else value


def among(login: str, logins: tuple[str, ...]) -> bool:
    """Whether ``login`` is one of ``logins`` (without regard to case)."""
    return any(same_login(login, other) for other in logins)


def is_trigger(entry: ForgeEntry | None, label: str) -> bool:
    """Whether ``label`` starts a run on the forge of ``entry`` (without one: whether it
    has the default trigger prefix)."""
    if entry is not None:
        return entry.agent_of_label(label) is not None
    prefix = ForgeTrigger().label_prefix
    return label.startswith(prefix) and len(label) > len(prefix)

"""Why a name names no agent: the words an operation on an unknown agent raises with,
worked out only when they are shown."""

from __future__ import annotations

from collections.abc import Iterable

from fleet.schema import no_agent_words

__all__ = ["NoSuchAgent", "unknown_agent"]


def unknown_agent(name: str, known: Iterable[str]) -> str:
    """Why ``name`` names no agent (:func:`fleet.schema.no_agent_words`)."""
    return no_agent_words(name, list(known))


class NoSuchAgent:
    """Why ``name`` names no agent, worked out when it is shown: a spawn of a new agent
    asks for its settings first and never shows why there are none, and the closest of
    a thousand names is not worth a spawn's time."""

    __slots__ = ("_known", "_name")

    def __init__(self, name: str, known: Iterable[str]) -> None:
        self._name = name
        self._known = known

    def __str__(self) -> str:
        return unknown_agent(self._name, self._known)

"""Agent names: the one validated identifier an operator may type that reaches the fleet."""

from __future__ import annotations

import re
from typing import NewType

from fleet.errors import InvalidAgentName

AgentName = NewType("AgentName", str)

AGENT_NAME_PATTERN = r"[a-z][a-z0-9-]{0,31}"
_AGENT_NAME_RE = re.compile(AGENT_NAME_PATTERN)
ALL_AGENTS = "all"
"""The word for every agent (``freeze all``, ``stop all``, ``resume all``)."""
RESERVED = frozenset({ALL_AGENTS})
"""Words that name more than one agent: never an agent's name."""


def agent_name(text: str) -> AgentName:
    """Return ``text`` as an :data:`AgentName`, or raise :class:`InvalidAgentName`."""
    if text in RESERVED:
        raise InvalidAgentName(
            f"{text!r} cannot be an agent's name: it means every agent (`stop {text}`, "
            f"`freeze {text}`) — pick another name"
        )
    if not _AGENT_NAME_RE.fullmatch(text):
        shown = text if len(text) <= 40 else text[:37] + "..."
        raise InvalidAgentName(
            f"invalid agent name {shown!r}: use 1-32 characters, a lowercase letter first, "
            "then lowercase letters, digits or '-' (for example 'coder-1')"
        )
    return AgentName(text)


def is_agent_name(text: str) -> bool:
    """Whether ``text`` is a valid agent name."""
    return _AGENT_NAME_RE.fullmatch(text) is not None and text not in RESERVED

"""Agent names: the one validated identifier an operator may type that reaches the fleet."""

from __future__ import annotations

import re
from typing import NewType

from fleet.errors import InvalidAgentName

AgentName = NewType("AgentName", str)

AGENT_NAME_PATTERN = r"[a-z][a-z0-9-]{0,31}"
_AGENT_NAME_RE = re.compile(AGENT_NAME_PATTERN)


def agent_name(text: str) -> AgentName:
    """Return ``text`` as an :data:`AgentName`, or raise :class:`InvalidAgentName`."""
    if not _AGENT_NAME_RE.fullmatch(text):
        shown = text if len(text) <= 40 else text[:37] + "..."
        raise InvalidAgentName(
            f"invalid agent name {shown!r}: use 1-32 characters, a lowercase letter first, "
            "then lowercase letters, digits or '-' (for example 'coder-1')"
        )
    return AgentName(text)


def is_agent_name(text: str) -> bool:
    """Whether ``text`` is a valid agent name."""
    return _AGENT_NAME_RE.fullmatch(text) is not None

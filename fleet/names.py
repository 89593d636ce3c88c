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
BUDGET_WORD = "budget"
"""The word of ``raise budget SCOPE``: an agent so named would make it mean two things."""
_MEANS = {
    ALL_AGENTS: "it means every agent (`stop all`, `freeze all`)",
    BUDGET_WORD: "`raise budget SCOPE` raises a budget's limit",
}
RESERVED = frozenset(_MEANS)
"""Words the commands give a meaning of their own: never an agent's name."""


def reserved_why(text: str) -> str:
    """Why reserved word ``text`` cannot be an agent's name, and what to do."""
    return f"{text!r} cannot be an agent's name: {_MEANS[text]} — pick another name"


def agent_name(text: str) -> AgentName:
    """Return ``text`` as an :data:`AgentName`, or raise :class:`InvalidAgentName`."""
    if text in RESERVED:
        raise InvalidAgentName(reserved_why(text))
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

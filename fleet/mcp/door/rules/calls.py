"""What the door refuses of a ``tools/call`` before any rule or person is asked: a call
no rule could name, or one whose arguments could not be shown as they are relayed."""

from __future__ import annotations

import re
from typing import Final

from fleet.mcp.config.names import TOOL_NAME_PATTERN

TOOL_NAME: Final = re.compile(TOOL_NAME_PATTERN)


def malformed(tool: str | None, arguments: object) -> str | None:
    """Why a call of ``tool`` with ``arguments`` is refused as it stands, or ``None``.

    A name outside MCP's tool names (``a b``, a zero-width space, 129 characters) is one no
    ``allow`` or ``deny`` rule can name, so no rule could hold it back; arguments that are
    not an object would be shown as ``{}`` in an ask while their real value is relayed."""
    if not tool:
        return "tools/call needs the tool's name in params.name"
    if not TOOL_NAME.fullmatch(tool):
        return "a tool's name is 1-128 letters, digits, '_', '-' or '.'"
    if arguments is not None and not isinstance(arguments, dict):
        return "a tool's arguments are an object"
    return None

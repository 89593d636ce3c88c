"""The names the MCP configuration uses: a server's (:data:`McpName`, also a path segment
of the agent's door and a part of each tool's name in every CLI) and a tool's
(:data:`ToolName`, as MCP's specification allows one), with an allow-list of tools
(:data:`Tools`)."""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import AfterValidator
from pydantic_core import PydanticCustomError

from fleet.redaction.shapes import shown_key

MCP_NAME_PATTERN = r"[a-z][a-z0-9-]{0,31}"
"""A server's name: it is a path segment of the agent's door (``/mcp/<server>``), a key of
each CLI's config (Codex's ``mcp_servers.<server>``, a TOML bare key) and the middle of its
tools' names (``mcp__<server>__<tool>``), so it is short, lowercase and has no ``_``: the
``__`` around it is never ambiguous."""
TOOL_NAME_PATTERN = r"[A-Za-z0-9_.-]{1,128}"
"""A tool's name, as MCP's specification allows one."""

_NAME = re.compile(MCP_NAME_PATTERN)
_TOOL = re.compile(TOOL_NAME_PATTERN)


def is_mcp_name(text: str) -> bool:
    """Whether ``text`` is a valid name of an MCP server."""
    return _NAME.fullmatch(text) is not None


def _mcp_name(value: str) -> str:
    if not is_mcp_name(value):
        raise PydanticCustomError(
            "mcp_name",
            "invalid MCP server name {name}: must match {pattern} (a lowercase letter, then up "
            "to 31 lowercase letters, digits or '-', no '_': it is part of the URL /mcp/NAME "
            "and of tool names mcp__NAME__TOOL; for example 'github')",
            {"name": repr(shown_key(value)[:40]), "pattern": MCP_NAME_PATTERN},
        )
    return value


def _tool_name(value: str) -> str:
    if not _TOOL.fullmatch(value):
        raise PydanticCustomError(
            "tool_name",
            "invalid tool name {name}: an MCP tool's name is 1-128 letters, digits, '_', '-' "
            "or '.', as the server lists it (e.g. search_issues)",
            {"name": repr(shown_key(value)[:40])},
        )
    return value


def _unique_tools(value: tuple[str, ...] | None) -> tuple[str, ...] | None:
    if value is None:
        return None
    if not value:
        raise PydanticCustomError(
            "tools_empty",
            "an empty tools list lets no tool through: list the tools allowed, or leave "
            "`tools` out for every tool",
        )
    twice = sorted({tool for tool in value if value.count(tool) > 1})
    if twice:
        raise PydanticCustomError(
            "tools_twice", "{tools} listed twice: list each tool once", {"tools": ", ".join(twice)}
        )
    return value


McpName = Annotated[str, AfterValidator(_mcp_name)]
ToolName = Annotated[str, AfterValidator(_tool_name)]
Tools = Annotated[tuple[ToolName, ...] | None, AfterValidator(_unique_tools)]

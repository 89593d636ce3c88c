"""An agent's grants to the config's MCP servers: its ``mcp:`` (or ``defaults.mcp``), a
list of server names or a mapping narrowing each server's tools, read as
:class:`McpGrantEntry` by name and turned into :class:`~fleet.mcp.model.McpGrant` by
:func:`grants_of`; and the runtimes that cannot be given any (:data:`NO_MCP_RUNTIMES`)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field
from pydantic_core import PydanticCustomError

from fleet.mcp.config.names import McpName, Tools
from fleet.mcp.config.refusals import raise_each
from fleet.mcp.model import McpGrant
from fleet.redaction.shapes import shown_key

NO_MCP_RUNTIMES = frozenset({"pi"})
"""Runtimes Fleetwarden cannot give MCP servers to: pi has no MCP of its own, and no MCP
extension of it (``pi-mcp-adapter``) is pinned and verified here."""
MCP_RUNTIMES = "claude, codex, opencode or command"
"""The runtimes an agent granted MCP servers may run, in words."""


def no_mcp_why(runtime: str) -> str:
    """Why an agent of ``runtime`` (one of :data:`NO_MCP_RUNTIMES`) is given no server."""
    return (
        f"which cannot be given MCP servers ({runtime} has no MCP of its own, and no MCP "
        "extension of it is pinned and verified by Fleetwarden)"
    )


MCP_GRANTS_HELP = (
    "The MCP servers (names under the config's `mcp:`) the agent may use, through its MCP "
    "door: a list of names (`mcp: [github, docs]`), or a mapping narrowing a server's "
    "tools (`mcp: {github: {tools: [search_issues]}}`, `{docs: {}}` for all the server "
    "allows). The servers' credentials stay with Fleetwarden."
)


class McpGrantEntry(BaseModel):
    """An agent's grant to one server, narrowing its tools."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    tools: Tools = Field(
        default=None,
        description=(
            "The only tools of the server this agent may see and call (each on the "
            "server's own `tools` list, if it has one). Default: all the server allows."
        ),
    )


def _grant_forms(value: object) -> object:
    """``[a, b]`` as ``{a: {}, b: {}}`` (a name listed twice refused); ``{a: null}`` as
    ``{a: {}}``."""
    if isinstance(value, list | tuple):
        mapping: dict[object, object] = {}
        found: list[tuple[str | int, PydanticCustomError]] = []
        for index, item in enumerate(value):
            if not isinstance(item, str):
                found.append((index, _not_a_name()))
            elif item in mapping:
                found.append((index, _twice(item)))
            else:
                mapping[item] = {}
        raise_each("mcp", found)
        return mapping
    if isinstance(value, dict):
        found = [
            (name, _not_a_grant())
            for name, grant in value.items()
            if grant is not None and not isinstance(grant, dict)
        ]
        raise_each("mcp", found)
        return {name: {} if grant is None else grant for name, grant in value.items()}
    raise _not_grants(value)


FORMS = (
    "a list of server names (mcp: [github, docs]), or a mapping narrowing a server's tools "
    "(mcp: {github: {tools: [search_issues]}, docs: {}})"
)
"""The two forms of an ``mcp:``, as written."""


def _not_grants(value: object) -> PydanticCustomError:
    if value is None:
        return PydanticCustomError(
            "mcp_null",
            "mcp is empty, which is not read as any servers: write mcp: [] for none (on an "
            "agent, leave the key out to take defaults.mcp), or give {forms}",
            {"forms": FORMS},
        )
    return PydanticCustomError("mcp_grants", "mcp takes {forms}", {"forms": FORMS})


def _not_a_grant() -> PydanticCustomError:
    return PydanticCustomError(
        "mcp_grant_value",
        "a server's grant is a mapping: {empty} for all the server allows, or {example} to "
        "narrow its tools; mcp takes {forms}",
        {"empty": "{}", "example": "{tools: [TOOL, ...]}", "forms": FORMS},
    )


def refuse_null(value: object) -> object:
    """An ``mcp:`` written empty refused (it would read as unset, the defaults' servers)."""
    if value is None:
        raise _not_grants(None)
    return value


def _not_a_name() -> PydanticCustomError:
    return PydanticCustomError(
        "mcp_grant",
        "each item of the mcp list is a server's name; to narrow a server's tools write the "
        "mapping form: mcp: {example}",
        {"example": "{NAME: {tools: [TOOL, ...]}}"},
    )


def _twice(name: str) -> PydanticCustomError:
    return PydanticCustomError(
        "mcp_grant_twice",
        "{name} is listed twice: list each server once",
        {"name": repr(shown_key(name)[:40])},
    )


McpGrants = Annotated[dict[McpName, McpGrantEntry], BeforeValidator(_grant_forms)]
"""An agent's ``mcp:``, either form, as a mapping in the order written."""


def grants_of(grants: Mapping[str, McpGrantEntry]) -> tuple[McpGrant, ...]:
    """The runtime grants of an agent's ``mcp:``, in the order written."""
    return tuple(
        McpGrant(name, None if entry.tools is None else frozenset(entry.tools))
        for name, entry in grants.items()
    )

"""The keys of a roster entry that give its agent the team's tools: the MCP servers it may
use (``mcp:``, names of the config's ``mcp:`` section, each optionally narrowed to some
tools) and the skill directories its CLI is given (``skills:``).

:class:`ToolKeys` is a base of :class:`~fleet.agents.roster.AgentEntry`, and
:meth:`ToolKeys.with_tools` puts its keys on the entry's :class:`~fleet.model.AgentSpec`:
an entry that sets a key has its own, else the ``defaults:`` key of the same name (``mcp:
[]`` gives an agent none of the defaults'). What a key needs of the whole config — each
server named in its section, each tool on its server's allow-list, a runtime that can reach
MCP servers — is checked across entries (:mod:`bot.config.mcp.checks`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Protocol

from pydantic import BaseModel, ConfigDict, Field, field_validator
from pydantic_core import PydanticCustomError

from fleet.mcp.config.grants import (
    MCP_GRANTS_HELP,
    McpGrantEntry,
    McpGrants,
    grants_of,
    refuse_null,
)
from fleet.mcp.config.skills import SKILLS_HELP, SkillDir
from fleet.model import AgentSpec


class ToolDefaults(Protocol):
    """The ``defaults:`` an entry's unset tool keys take."""

    @property
    def mcp(self) -> Mapping[str, McpGrantEntry]: ...

    @property
    def skills(self) -> tuple[Path, ...]: ...


def check_skills(value: tuple[Path, ...] | None) -> tuple[Path, ...] | None:
    """``value``, unless two of its skills have one name (their folders'): a CLI finds a
    skill by its name, so one would hide the other."""
    if value is None:
        return None
    seen: dict[str, Path] = {}
    for path in value:
        if path.name in seen:
            raise PydanticCustomError(
                "skills_twice",
                "two skills are named {name} ({first} and {second}): a CLI knows a skill by "
                "its name, so give it one of them",
                {"name": repr(path.name), "first": str(seen[path.name]), "second": str(path)},
            )
        seen[path.name] = path
    return value


class ToolKeys(BaseModel):
    """The team's tools an agent of the roster may use."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    mcp: McpGrants | None = Field(
        default=None, description=MCP_GRANTS_HELP + " Default: `defaults.mcp`."
    )
    skills: tuple[SkillDir, ...] | None = Field(
        default=None, description=SKILLS_HELP + " Default: `defaults.skills`."
    )

    @field_validator("mcp", mode="before")
    @classmethod
    def _not_empty(cls, value: object) -> object:
        return refuse_null(value)

    @field_validator("skills")
    @classmethod
    def _one_per_name(cls, value: tuple[Path, ...] | None) -> tuple[Path, ...] | None:
        return check_skills(value)

    def with_tools(self, spec: AgentSpec, defaults: ToolDefaults) -> AgentSpec:
        """``spec`` with the entry's MCP grants and skills, unset ones from ``defaults``."""
        return replace(
            spec,
            mcp=grants_of(self.mcp if self.mcp is not None else defaults.mcp),
            skills=self.skills if self.skills is not None else defaults.skills,
        )

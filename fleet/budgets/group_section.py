"""The config file's ``groups`` section: groups of agents for budgets over all of them,
nested by their parents; its conversion to :class:`fleet.budgets.model.Groups`, and the
checks across its entries (an unknown parent, an agent in two groups, a cycle of parents)."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator
from pydantic_core import PydanticCustomError

from fleet.budgets.model import Groups
from fleet.ledger.records.budgets import Scope
from fleet.names import AGENT_NAME_PATTERN, is_agent_name
from fleet.schema import did_you_mean

Loc = tuple[str | int, ...]
"""A place in the config data, e.g. ``("groups", "web", "parent")``."""


class GroupEntry(BaseModel):
    """A group of agents, for budgets over all of them (`scope: group:NAME`). Groups nest:
    a group's budget covers its own agents and those of every group below it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    parent: str | None = Field(
        default=None,
        description="The group this one belongs to, by name; none for a top-level group.",
    )
    agents: tuple[str, ...] = Field(
        default=(),
        description=(
            "The agents in this group, by name. An agent is in at most one group; agents "
            "need not be in the roster (ad hoc `spawn`s count too)."
        ),
    )

    @field_validator("agents")
    @classmethod
    def _agent_names(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for name in value:
            if not is_agent_name(name):
                raise PydanticCustomError(
                    "agent_name",
                    f"invalid agent name {name[:40]!r}: must match {AGENT_NAME_PATTERN}",
                )
        return value


def _check_group_name(name: str) -> str:
    try:
        Scope.parse(f"group:{name}")
    except ValueError:
        raise PydanticCustomError(
            "group_name",
            "group name {name} must be 1-63 lower case letters, digits, '.', '_' or '-', "
            "starting with a letter or digit",
            {"name": repr(name)},
        ) from None
    return name


GroupName = Annotated[str, AfterValidator(_check_group_name)]
GroupsSection = dict[GroupName, GroupEntry]


def groups_of(entries: Mapping[str, GroupEntry]) -> Groups:
    """The ``groups`` section as :class:`Groups`."""
    return Groups(
        parents={name: entry.parent for name, entry in entries.items()},
        members={agent: name for name, entry in entries.items() for agent in entry.agents},
    )


def group_problems(
    groups: Mapping[str, GroupEntry], where: Callable[[Loc], str]
) -> Iterator[tuple[Loc, str]]:
    """The ``groups`` section's problems, each with its place: a parent that does not exist,
    an agent in two groups, a cycle of parents."""
    known = ", ".join(sorted(groups)) or "none"
    member_of: dict[str, Loc] = {}
    for name, entry in groups.items():
        if entry.parent is not None and entry.parent not in groups:
            guess = did_you_mean(entry.parent, groups)
            hint = f" — did you mean {guess!r}?" if guess else ";"
            yield (
                ("groups", name, "parent"),
                f"unknown parent group {entry.parent!r}{hint} known groups: {known}",
            )
        for index, agent in enumerate(entry.agents):
            loc: Loc = ("groups", name, "agents", index)
            if agent in member_of:
                yield (
                    loc,
                    f"agent {agent!r} is already in group {member_of[agent][1]!r} "
                    f"({where(member_of[agent])}); an agent belongs to one group — nest the "
                    "groups instead",
                )
            else:
                member_of[agent] = loc
    reported: set[str] = set()
    for name in groups:
        cycle = _cycle_from(name, groups)
        if cycle and not reported & set(cycle):
            reported.update(cycle)
            path = " → ".join([*cycle, cycle[0]])
            yield (
                ("groups", name, "parent"),
                f"groups form a cycle ({path}): a group cannot be its own ancestor",
            )


def _cycle_from(name: str, groups: Mapping[str, GroupEntry]) -> list[str]:
    """The cycle of parents ``name`` is on, starting at ``name``; empty if it is on none."""
    chain: list[str] = []
    current: str | None = name
    while current is not None and current in groups and current not in chain:
        chain.append(current)
        current = groups[current].parent
    return chain if current == name else []

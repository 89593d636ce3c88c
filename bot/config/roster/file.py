"""The roster file ``agents:`` may name (``agents: etc/roster.yaml``): read, parsed and
validated, its problems reported against its own lines, its relative paths resolved against
its own directory; and where problems in the agents are reported, whichever file holds them.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path

from pydantic import BaseModel, TypeAdapter, ValidationError
from pydantic_core import PydanticCustomError
from yaml.nodes import MappingNode, Node, ScalarNode

from bot.config.chat import ConnectorsSection
from bot.config.checks.problems import (
    ConfigError,
    ConfigProblem,
    Locator,
    compose,
    describe,
    translate,
)
from bot.config.schema import ConfigFile
from fleet.agents.roster import AgentEntry
from fleet.schema import SchemaContext, expand_path

KEY_NOUNS: Mapping[type[BaseModel], str] = {ConnectorsSection: "connector"}
"""What an unknown key is called in a section: ``connectors.matrx`` is an unknown connector."""

_ROSTER_ADAPTER = TypeAdapter(tuple[AgentEntry, ...])


@dataclass(frozen=True, slots=True)
class RosterSource:
    """The agents as written (``items``), and where problems in them are reported: the
    config file itself, or the roster file ``agents:`` names."""

    items: object
    file_name: str
    locate: Locator
    kept: tuple[int, ...] | None = None
    """When some entries failed: the indices (among ``items``) of the entries handed on."""
    damaged: tuple[int, ...] = ()
    """The indices of the entries that failed (handed on without a setting, or not)."""


def roster_file(
    written: str,
    locate: Locator,
    file_name: str,
    context: SchemaContext,
    problems: list[ConfigProblem],
    texts: Mapping[Path, str] | None = None,
) -> tuple[RosterSource, tuple[AgentEntry, ...]]:
    """Read, parse and validate the roster file named by ``agents: <written>``; its problems
    are appended to ``problems``. Returns where the entries came from and the entries: when
    some failed, those sound on their own (their indices in the source's ``kept``), for the
    checks across entries; empty when the file itself could not be read."""
    line, _, _ = locate(("agents",))
    empty = RosterSource([], file_name, locate)

    def refuse(message: str) -> tuple[RosterSource, tuple[AgentEntry, ...]]:
        problems.append(ConfigProblem(file_name, line, "agents", message))
        return empty, ()

    if not written.strip():
        return refuse("expected a list of agents or the path of a roster file, found ''")
    try:
        path = expand_path(Path(written), context)
    except PydanticCustomError as exc:
        return refuse(exc.message())
    shown = _shown_path(written, path, file_name)
    where = f"roster file {str(path)!r}"
    try:
        if texts and path in texts:
            text = texts[path]
        elif not path.is_file():
            what = "does not exist" if not path.exists() else "is not a regular file"
            return refuse(
                f"{where} {what} (a relative path is resolved against the config file's directory)"
            )
        else:
            text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        return refuse(f"cannot read {where}: not UTF-8 text (bad byte at offset {exc.start})")
    except OSError as exc:
        return refuse(f"cannot read {where}: {exc.strerror or exc}")
    try:
        root, items, duplicates = compose(text, shown)
    except ConfigError as exc:
        problems.extend(exc.problems)
        return empty, ()
    # compose() names keys from the file's top ("[0].name"); here they sit under agents.
    problems.extend(p._replace(key_path=f"agents{p.key_path}") for p in duplicates)
    roster = RosterSource([] if items is None else items, shown, Locator(_under_agents(root)))
    if not isinstance(roster.items, list):
        found = describe(roster.items)
        roster_line, _, _ = roster.locate(("agents",))
        message = f"a roster file must be a list of agents (- name: ...), found {found}"
        problems.append(ConfigProblem(shown, roster_line, "", message))
        return empty, ()
    roster_context = replace(context, base_dir=path.parent)
    try:
        entries = _ROSTER_ADAPTER.validate_python(roster.items, context=roster_context)
    except ValidationError as exc:
        for error in exc.errors():
            located = error.copy()
            located["loc"] = ("agents", *error["loc"])
            problems.append(
                translate(located, roster.locate, shown, schema=ConfigFile, key_nouns=KEY_NOUNS)
            )
        # The entries sound on their own (or without the settings refused), for the
        # checks across entries to read.
        sound: list[AgentEntry] = []
        kept: list[int] = []
        damaged: list[int] = []
        for index, item in enumerate(roster.items):
            entry, whole = _sound_entry(item, roster_context)
            if not whole:
                damaged.append(index)
            if entry is not None:
                sound.append(entry)
                kept.append(index)
        return replace(roster, kept=tuple(kept), damaged=tuple(damaged)), tuple(sound)
    return roster, entries


def _sound_entry(item: object, context: SchemaContext) -> tuple[AgentEntry | None, bool]:
    """``item`` as an entry, and whether it is whole: else without the settings the schema
    refused, or ``None`` when a required one is missing or the entry itself is wrong."""
    try:
        return AgentEntry.model_validate(item, context=context), True
    except ValidationError as exc:
        errors = exc.errors()
    refused = {error["loc"][0] for error in errors if error["loc"]}
    if not isinstance(item, dict) or any(
        error["type"] == "missing" or not error["loc"] for error in errors
    ):
        return None, False
    try:
        rest = {key: value for key, value in item.items() if key not in refused}
        return AgentEntry.model_validate(rest, context=context), False
    except ValidationError:
        return None, False


def _shown_path(written: str, path: Path, file_name: str) -> str:
    """How problems name the roster file: next to ``file_name`` as the operator wrote it
    when relative (``etc/roster.yaml``), else the absolute path."""
    if Path(written).is_absolute() or written.startswith("~"):
        return str(path)
    return os.path.normpath(Path(file_name).parent / written)


def _under_agents(root: Node | None) -> Node | None:
    """``root`` (the roster file's list) as the value of an ``agents`` key, so that locations
    like ``("agents", 1, "runtime")`` find their line in the roster file."""
    if root is None:
        return None
    key = ScalarNode("tag:yaml.org,2002:str", "agents", root.start_mark, root.start_mark)
    return MappingNode("tag:yaml.org,2002:map", [(key, root)], root.start_mark, root.end_mark)

"""The rest of a config file whose schema failed somewhere, so that the checks across
entries (an agent naming an unknown repository, account, provider or host; a budget naming
an unknown scope) still run over everything that is sound: ``check-config`` then reports
every problem in one pass.

:func:`sound_document` takes out the settings the schema refused — the one setting of an
entry (an agent's, a repository's) where it can, else the whole entry, and outside entries
the one setting — and validates what is left. :class:`KeptLocator` keeps locations in
what is left pointing at the lines they came from (the agent now first in the list is
still reported on its own line). :func:`unsaid` leaves out what the checks say of an entry
that was damaged so, or of another entry naming one taken out (an agent naming a
repository whose entry failed): the entry is there, only wrong, and its own problem is
already said.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from pydantic import ValidationError
from yaml.nodes import Node

from bot.config.checks.problems import ConfigProblem, Locator
from bot.config.schema import ConfigFile
from fleet.schema import SchemaContext

ENTRY_LISTS = ("agents", "budgets", "hosts", "operators")
"""Sections that are lists of entries."""
ENTRY_MAPPINGS = (
    "repos",
    "forges",
    "accounts",
    "account_pools",
    "groups",
    "providers",
    "prices",
    "mcp",
)
"""Sections that are mappings of named entries."""

Loc = tuple[int | str, ...]
Failed = tuple[Loc, str]
"""Where pydantic failed, and its error's type (``missing``: a required key)."""


@dataclass
class SoundPart:
    """The data with what failed taken out. ``kept``: per list section, which of the
    written entries are left, in order; ``dropped``: the names of entries taken out whole;
    ``damaged``: the key paths (as written) of the entries and settings touched."""

    data: dict[str, object]
    kept: dict[str, list[int]] = field(default_factory=dict)
    dropped: set[str] = field(default_factory=set)
    damaged: set[str] = field(default_factory=set)


class KeptLocator(Locator):
    """A :class:`Locator` over data some list entries were taken out of: ``("agents", 1,
    …)`` is found where the entry now at index 1 was written."""

    def __init__(self, locate: Locator, kept: Mapping[str, Sequence[int]]) -> None:
        super().__init__(None)
        self._locate = locate
        self._kept = kept

    def __call__(self, loc: Loc) -> tuple[int | None, str, Node | None]:
        return self._locate(self.written(loc))

    def written(self, loc: Loc) -> Loc:
        """``loc`` with its list index as written."""
        if len(loc) >= 2 and isinstance(loc[0], str) and isinstance(loc[1], int):
            kept = self._kept.get(loc[0])
            if kept is not None and 0 <= loc[1] < len(kept):
                return (loc[0], kept[loc[1]], *loc[2:])
        return loc


def _path(section: str, entry: int | str) -> str:
    return f"{section}[{entry}]" if isinstance(entry, int) else f"{section}.{entry}"


def sound_part(part: SoundPart, failed: Iterable[Failed], *, whole: bool) -> SoundPart | None:
    """``part`` without what each of ``failed`` (pydantic's, over ``part.data``) is in: its
    setting in an entry, or (``whole``, or a required key, or a problem of the entry
    itself) the entry; ``None`` when an error is about the file as a whole."""
    data = dict(part.data)
    kept = {section: list(indices) for section, indices in part.kept.items()}
    dropped, damaged = set(part.dropped), set(part.damaged)
    written = KeptLocator(Locator(None), kept)
    out: dict[str, set[int]] = {}
    for loc, kind in failed:
        if not loc or not isinstance(loc[0], str) or loc[0] not in data:
            return None
        section, value = loc[0], data[loc[0]]
        entry = loc[1] if len(loc) > 1 else None
        setting = loc[2] if len(loc) > 2 and not whole and kind != "missing" else None
        if section in ENTRY_LISTS and isinstance(value, list) and isinstance(entry, int):
            damaged.add(_path(section, written.written((section, entry))[1]))
            item = value[entry] if entry < len(value) else None
            if isinstance(item, dict) and setting in item:
                trimmed = {k: v for k, v in item.items() if k != setting}
                data[section] = [trimmed if i == entry else v for i, v in enumerate(value)]
            else:
                out.setdefault(section, set()).add(entry)
            continue
        if section in ENTRY_MAPPINGS and isinstance(value, dict) and entry in value:
            damaged.add(_path(section, str(entry)))
            item = value[entry]
            if isinstance(item, dict) and setting in item:
                data[section] = {**value, entry: {k: v for k, v in item.items() if k != setting}}
            else:
                data[section] = {k: v for k, v in value.items() if k != entry}
                dropped.add(str(entry))
            continue
        if isinstance(value, dict) and entry in value:
            data[section] = {k: v for k, v in value.items() if k != entry}  # the one setting
            damaged.add(f"{section}.{entry}")
            continue
        del data[section]
        damaged.add(section)
    for section, indices in out.items():
        items = data[section]
        if not isinstance(items, list):
            continue
        was = kept.get(section, list(range(len(items))))
        for index in indices:
            item = items[index] if index < len(items) else None
            name = item.get("name") if isinstance(item, dict) else None
            if isinstance(name, str):
                dropped.add(name)
        data[section] = [item for i, item in enumerate(items) if i not in indices]
        kept[section] = [w for i, w in enumerate(was) if i not in indices]
    return SoundPart(data, kept, dropped, damaged)


def sound_document(
    part: SoundPart, failed: Sequence[Failed], context: SchemaContext
) -> tuple[ConfigFile, SoundPart] | None:
    """The document of what is sound in ``part.data`` given the errors ``failed``: the
    settings refused taken out and validated again; then, if that fails, the entries
    refused again taken out whole. ``None`` when nothing sound can be had."""
    for attempt in range(4):
        taken = sound_part(part, failed, whole=attempt > 0)
        if taken is None:
            return None
        part = taken
        try:
            return ConfigFile.model_validate(part.data, context=context), part
        except ValidationError as exc:
            failed = [(tuple(error["loc"]), error["type"]) for error in exc.errors()]
    return None


def unsaid(problems: Iterable[ConfigProblem], part: SoundPart) -> list[ConfigProblem]:
    """``problems`` but those of an entry or setting ``part`` took from, and those naming
    an entry it took out whole (``'app'``, ``agent:coder``)."""
    forms = [(f"'{name}'", f":{name}'", f"`{name}`") for name in part.dropped]
    touched = [re.compile(rf"{re.escape(path)}(?![\w-])") for path in part.damaged]
    return [
        problem
        for problem in problems
        if not any(form in problem.message for named in forms for form in named)
        and not any(path.match(problem.key_path) for path in touched)
    ]

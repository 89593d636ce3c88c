"""The roster's YAML text edited in place: an agent added, one of its keys set, an agent
removed — with the file's comments, key order, quoting, flow or block style, indentation
and line endings kept (a round-trip load and dump with ``ruamel.yaml``, never a re-dump of
the parsed data). Where no one indentation dumps the whole file as it is (its sections
indented each its own way), only the lines the edit changed are taken from the dump, when
the file so spliced holds the same data. Pure: text in, text out; checking the result is
the config loader's work (:mod:`bot.app.roster_edits` hands it the new text before
anything is written).

The agents are either the whole file (a roster file ``agents:`` names: a list) or the
config file's ``agents:`` list (``under_agents``). Keys that only go together (``runtime:
command`` and its ``argv``) are given in one edit and judged together
(:mod:`bot.config.roster.coherence`), as is a peer's ``talks_to`` naming an agent removed.
"""

from __future__ import annotations

import contextlib
import difflib
import io
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import yaml as pyyaml
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedBase, CommentedMap, CommentedSeq
from ruamel.yaml.error import YAMLError

from bot.config.roster.coherence import (
    CoherenceError,
    check_added,
    check_removed,
    check_set,
)
from fleet.agents.roster import AgentEntry
from fleet.redaction.shapes import credential_shaped
from fleet.schema import did_you_mean

AGENT_KEYS: tuple[str, ...] = tuple(
    info.alias or name for name, info in AgentEntry.model_fields.items()
)
"""The keys an agent entry may have, as the file spells them."""

NOT_CHANGED = "the roster was not changed; nothing was written"
"""How every refusal of an edit begins."""

# The indentations tried, (mapping, sequence, offset): the one that dumps the file as it
# was is the file's own.
_INDENTS = ((2, 2, 0), (2, 4, 2), (4, 4, 2), (4, 6, 4), (4, 4, 0), (3, 3, 0), (3, 5, 2))


class RosterEditError(Exception):
    """An edit that cannot be made to the text (the message says why and what to do)."""


@dataclass(frozen=True, slots=True)
class AddAgent:
    """``roster add NAME``: a new entry, its keys in the order given; ``typed``: keys
    whose value is read as YAML, as typed (``--argv '[python3, -u, bot.py]'``)."""

    name: str
    keys: Mapping[str, object] = field(default_factory=dict)
    typed: Mapping[str, str] = field(default_factory=dict)

    @property
    def words(self) -> str:
        """The command, as a refusal names it."""
        return f"roster add {self.name}"


@dataclass(frozen=True, slots=True)
class SetKey:
    """``roster set NAME KEY VALUE``: ``value`` as typed, read as YAML (``null``: the key
    is taken out, its default applies)."""

    name: str
    key: str
    value: str

    @property
    def words(self) -> str:
        """The command, as a refusal names it."""
        return f"roster set {self.name}"


@dataclass(frozen=True, slots=True)
class SetKeys:
    """``roster set NAME KEY VALUE KEY VALUE …``: several keys set together, each value as
    typed, the entry judged once they are all set."""

    name: str
    pairs: tuple[tuple[str, str], ...]

    @property
    def words(self) -> str:
        """The command, as a refusal names it."""
        return f"roster set {self.name}"


@dataclass(frozen=True, slots=True)
class RemoveAgent:
    """``roster remove NAME``."""

    name: str

    @property
    def words(self) -> str:
        """The command, as a refusal names it."""
        return f"roster remove {self.name}"


RosterEdit = AddAgent | SetKey | SetKeys | RemoveAgent


def edit_text(text: str, edit: RosterEdit, *, under_agents: bool) -> str:
    """``text`` with ``edit`` made; raises :class:`RosterEditError`."""
    if "\r\n" in text:  # worked on with plain line ends (comments would keep the \r)
        made = edit_text(text.replace("\r\n", "\n"), edit, under_agents=under_agents)
        return made.replace("\n", "\r\n")
    yaml, base = _yaml_for(text)
    document = _load(yaml, text)
    if base != text and not under_agents and isinstance(document, CommentedSeq):
        return _edit_nested(text, edit)
    agents = _agents(document, under_agents)
    if isinstance(edit, AddAgent):
        if _find(agents, edit.name) is not None:
            raise RosterEditError(
                f"an agent named {edit.name!r} is already in the roster: choose another "
                f"name, or change it with `roster set {edit.name} KEY VALUE`"
            )
        entry = CommentedMap()
        entry["name"] = edit.name
        for key, value in edit.keys.items():
            entry[key] = value
        for key, typed in edit.typed.items():
            entry[key] = _read(edit.name, key, typed)
        with _coherent():
            check_added(entry, edit.name, edit.typed)
        if agents is None and not under_agents:  # a roster file of comments only, or empty
            out = io.StringIO()
            yaml.dump(CommentedSeq([entry]), out)
            kept = text if not text or text.endswith("\n") else text + "\n"
            return kept + out.getvalue()
        if agents is None:
            agents = _new_agents(document)
        agents.append(entry)
    elif isinstance(edit, SetKey | SetKeys):
        pairs = edit.pairs if isinstance(edit, SetKeys) else ((edit.key, edit.value),)
        index = _index(agents, edit.name)
        assert agents is not None  # _index found the entry
        for key, typed in pairs:
            _set(agents[index], edit.name, key, typed)
        with _coherent():
            check_set(agents[index], edit.name, pairs)
    else:
        index = _index(agents, edit.name)
        assert agents is not None
        with _coherent():
            check_removed(agents, edit.name)
        del agents[index]
    out = io.StringIO()
    yaml.dump(document, out)
    made = out.getvalue()
    if base == text:
        return made
    # No one indentation dumps the whole file as it is: only the lines the edit changed
    # are taken from the dump, the rest kept as written.
    spliced = _splice(text, base, made)
    return spliced if spliced is not None and _same_data(spliced, made) else made


def _splice(text: str, base: str, made: str) -> str | None:
    """The changes from ``base`` (``text`` dumped unchanged) to ``made`` (dumped edited)
    made on ``text`` itself; ``None`` when a changed line has no counterpart in it."""
    written, was, now = (t.splitlines(keepends=True) for t in (text, base, made))
    where: dict[int, int] = {}  # a line of the dump -> the same line in the text
    for tag, i1, i2, j1, _ in _opcodes(was, written):
        if tag == "equal":
            where.update((i1 + k, j1 + k) for k in range(i2 - i1))
    out = list(written)
    for tag, i1, i2, j1, j2 in reversed(_opcodes(was, now)):
        if tag == "equal":
            continue
        if i1 == i2:  # lines inserted after was[i1 - 1], before was[i1]
            if i1 - 1 in where:
                start = where[i1 - 1] + 1
            elif i1 in where:
                start = where[i1]
            elif i1 == len(was):
                start = len(written)
            else:
                return None
            end = start
        else:
            lines = [where.get(i) for i in range(i1, i2)]
            if None in lines or lines != list(range(lines[0] or 0, (lines[0] or 0) + len(lines))):
                return None
            start, end = where[i1], where[i2 - 1] + 1
        out[start:end] = now[j1:j2]
    return "".join(out)


def _same_data(one: str, other: str) -> bool:
    """Whether two YAML texts hold the same data (a splice must mean what the dump does:
    a line the dump indents otherwise could land under another key)."""
    try:
        return bool(
            YAML(typ="safe", pure=True).load(one) == YAML(typ="safe", pure=True).load(other)
        )
    except YAMLError:
        return False


def _opcodes(a: list[str], b: list[str]) -> Sequence[tuple[str, int, int, int, int]]:
    return difflib.SequenceMatcher(None, a, b, autojunk=False).get_opcodes()


def _edit_nested(text: str, edit: RosterEdit) -> str:
    """A roster file whose lists nest otherwise than its top one (``- name: a`` at the
    margin, ``  talks_to:`` then ``    - b``), which no one indentation dumps as it is:
    edited as the ``agents:`` list of a mapping, where that style is the usual one."""
    indented = "".join("  " + line if line.strip() else line for line in text.splitlines(True))
    made = edit_text("agents:\n" + indented, edit, under_agents=True)
    lines = made.splitlines(keepends=True)[1:]
    return "".join(line[2:] if line.startswith("  ") else line for line in lines)


def parse_value(written: str) -> object:
    """A value typed in chat read as YAML: a scalar (``gpt-5``, ``30``, ``true``) or a flow
    collection (``[Read, Edit]``, ``{A: "1"}``), its flow style kept when written. Plain
    data only: a tag (``!!python/…``, ``!include``), an anchor or an alias is refused."""
    try:
        _refuse_tags(written)
        value: object = YAML().load(written)
    except YAMLError as exc:  # the value itself is not echoed: it may be a pasted secret
        problem = getattr(exc, "problem", None) or "not YAML"
        raise RosterEditError(
            f"cannot read the value as YAML: {problem}; write a scalar (gpt-5) or a flow "
            "list or mapping ([Read, Edit], {A: '1'}), quoting what has spaces or commas"
        ) from None
    if isinstance(value, CommentedBase):
        value.fa.set_flow_style()
    return value


def _refuse_tags(written: str) -> None:
    """Refuse a value that carries a YAML tag, anchor or alias (read by the safe parser,
    nothing constructed); raises the parser's error on text that is not YAML."""
    try:
        events = list(pyyaml.parse(written, Loader=pyyaml.SafeLoader))
    except pyyaml.YAMLError:
        return  # said by the round-trip loader, which reads it next
    for event in events:
        if getattr(event, "anchor", None) is not None or getattr(event, "tag", None) is not None:
            raise RosterEditError(
                "the value has a YAML tag, anchor or alias (!…, &…, *…): write plain data "
                "— a scalar (gpt-5) or a flow list or mapping ([Read, Edit], {A: '1'})"
            )


def _set(entry: object, name: str, key: str, text: str) -> None:
    """``key`` of ``entry`` (the mapping of agent ``name``) set to ``text`` read as YAML."""
    if not isinstance(entry, CommentedMap):
        raise RosterEditError(f"the entry of {name!r} is not a mapping: fix the file by hand")
    if key == "name":
        raise RosterEditError(
            f"an agent's name is not changed in place: `roster add NEW …` then "
            f"`roster remove {name}`"
        )
    if key not in AGENT_KEYS:
        near = did_you_mean(key, AGENT_KEYS)
        hint = f"did you mean {near!r}? " if near else ""
        raise RosterEditError(
            f"unknown agent key {key!r}: {hint}the keys are {', '.join(sorted(AGENT_KEYS))}"
        )
    value = _read(name, key, text)
    if value is None:
        if key in entry:
            del entry[key]
        return
    if key in entry:
        entry[key] = value
        return
    _append_key(entry, key, value)


def _read(name: str, key: str, text: str) -> object:
    """``text``, the value typed for ``key`` of agent ``name``, read as YAML; a credential
    in it is refused unseen."""
    value = parse_value(text)
    if any(credential_shaped(each) for each in _strings(value)):
        raise RosterEditError(
            f"the value of {key} looks like a credential (not shown), and secrets never "
            "go in the config file: set it in Fleetwarden's environment and name the "
            f"variable in `secret_env` (`roster set {name} secret_env [NAME]`)"
        )
    return value


@contextlib.contextmanager
def _coherent() -> Iterator[None]:
    """A check of :mod:`bot.config.roster.coherence` run inside: its refusal said as the
    edit's."""
    try:
        yield
    except CoherenceError as exc:
        raise RosterEditError(str(exc)) from None


def _strings(value: object) -> list[str]:
    """Every string in ``value``: itself, or the keys and items of a list or mapping."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, Mapping):
        return [text for pair in value.items() for part in pair for text in _strings(part)]
    if isinstance(value, list | tuple):
        return [text for item in value for text in _strings(item)]
    return []


def _append_key(entry: CommentedMap, key: str, value: object) -> None:
    """``key`` added last to ``entry``, taking over what trailed the entry's old last line
    (a blank line, a comment before the next entry) so it still trails the entry."""
    tail = _take_tail(entry)
    entry[key] = value
    if tail is not None and not isinstance(value, CommentedBase):
        entry.ca.items[key] = [None, None, tail, None]


def _take_tail(node: object) -> Any:
    """The comment after the last line of ``node``, taken off it (``None``: none)."""
    if isinstance(node, CommentedMap) and node:
        last = list(node)[-1]
        slot = node.ca.items.get(last)
        if slot is not None and len(slot) > 2 and slot[2] is not None:
            tail = slot[2]
            slot[2] = None
            return tail
        return _take_tail(node[last])
    if isinstance(node, CommentedSeq) and node:
        last_index = len(node) - 1
        slot = node.ca.items.get(last_index)
        if slot is not None and slot[0] is not None:
            tail = slot[0]
            slot[0] = None
            return tail
        return _take_tail(node[last_index])
    return None


def _yaml_for(text: str) -> tuple[YAML, str]:
    """A round-trip YAML that dumps ``text``, unchanged, as it is (its indentation found by
    trying the usual ones), else the closest; and its dump of ``text``."""
    best: tuple[float, YAML, str] | None = None
    for mapping, sequence, offset in _INDENTS:
        yaml = YAML()
        yaml.preserve_quotes = True
        yaml.width = 4096  # never fold a long line the file has on one
        yaml.indent(mapping=mapping, sequence=sequence, offset=offset)
        out = io.StringIO()
        yaml.dump(_load(yaml, text), out)
        dumped = out.getvalue()
        if dumped == text:
            return yaml, dumped
        score = difflib.SequenceMatcher(None, dumped, text).ratio()
        if best is None or score > best[0]:
            best = (score, yaml, dumped)
    assert best is not None
    return best[1], best[2]


def _load(yaml: YAML, text: str) -> Any:
    try:
        return yaml.load(text)
    except YAMLError as exc:
        raise RosterEditError(f"the file is not valid YAML ({exc}): fix it by hand") from None


def _agents(document: object, under_agents: bool) -> CommentedSeq | None:
    """The list of agents in ``document`` (``None``: none yet)."""
    if under_agents:
        if not isinstance(document, CommentedMap):
            raise RosterEditError("the config file is not a mapping: fix it by hand")
        document = document.get("agents")
    if document is None:
        return None
    if not isinstance(document, CommentedSeq):
        raise RosterEditError("the agents are not a list: fix the file by hand")
    return document


def _new_agents(document: object) -> CommentedSeq:
    """An empty ``agents:`` list where the config file had none."""
    if not isinstance(document, CommentedMap):
        raise RosterEditError("the config file is not a mapping: fix it by hand")
    agents = CommentedSeq()
    document["agents"] = agents
    return agents


def _find(agents: CommentedSeq | None, name: str) -> int | None:
    for index, entry in enumerate(agents or ()):
        if isinstance(entry, Mapping) and entry.get("name") == name:
            return index
    return None


def _index(agents: CommentedSeq | None, name: str) -> int:
    index = _find(agents, name)
    if index is None:
        names = [e.get("name") for e in agents or () if isinstance(e, Mapping)]
        near = did_you_mean(name, [n for n in names if isinstance(n, str)])
        hint = f" (did you mean {near!r}?)" if near else ""
        raise RosterEditError(
            f"no agent named {name!r} in the roster{hint}: `roster` lists them; "
            f"`roster add {name} --runtime R` adds one"
        )
    return index

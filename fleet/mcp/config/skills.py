"""Skills as the config names them: a directory holding ``SKILL.md`` in the open Agent
Skills format, its YAML front matter giving the skill's ``name`` (the directory's own name)
and a ``description`` of when to use it. :func:`read_skill` reads and checks one, each
problem said with the line of ``SKILL.md`` it is on and its fix; :data:`SkillDir` is the
config's type of a skill directory (``skills: [dir, ...]`` of an agent or of ``defaults``),
checked when the config is loaded.

A skill is read from the operator's directory, never from an agent's workdir: what an
agent's CLI is given at launch is a copy of what was checked here.
"""

from __future__ import annotations

import os
import re
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Final

import yaml
from pydantic import AfterValidator
from pydantic_core import PydanticCustomError
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from fleet.schema import ConfigPath

SKILL_FILE: Final = "SKILL.md"
SKILL_NAME_PATTERN: Final = r"[a-z0-9]+(?:-[a-z0-9]+)*"
"""A skill's name, as the Agent Skills format has it: lowercase letters and digits, words
joined by single hyphens, at most :data:`MAX_NAME` characters."""
MAX_NAME: Final = 64
MAX_DESCRIPTION: Final = 1024
MAX_SKILL_FILE: Final = 1 << 20
"""The largest ``SKILL.md`` read (1 MiB): its body is instructions, not data."""
MAX_ENTRIES: Final = 10_000
"""The most files and folders a skill directory may hold (each is looked at)."""
_KINDS: Final = {
    stat.S_IFIFO: "a FIFO (named pipe), not a file",
    stat.S_IFCHR: "a character device, not a file",
    stat.S_IFBLK: "a block device, not a file",
    stat.S_IFSOCK: "a socket, not a file",
    stat.S_IFDIR: "a directory, not a file",
}

SKILLS_HELP = (
    "Skill directories the agent's CLI is given (the open Agent Skills format): each a "
    "folder holding `SKILL.md`, whose front matter has `name` (the folder's own name) and "
    "a `description`, and none of `allowed-tools` (Claude Code would run those tools "
    "without asking), `hooks` or `mcpServers`. Checked when the config is loaded and at "
    "each launch; relative paths are resolved against the config file's directory."
)

_NAME = re.compile(SKILL_NAME_PATTERN)
_STR = "tag:yaml.org,2002:str"
_NULL = "tag:yaml.org,2002:null"
_SAFE_TAGS = frozenset(
    f"tag:yaml.org,2002:{kind}"
    for kind in ("str", "null", "bool", "int", "float", "timestamp", "seq", "map", "merge")
)
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
"""Control characters (an ANSI escape among them) but a line break and a tab."""
_KNOWN_KEYS = frozenset({"name", "description", "license", "allowed-tools", "metadata"})
_REFUSED_KEYS = {
    "allowed-tools": (
        "lets the skill's tools run without asking while it is active (Claude Code pre-approves "
        "them for a skill read from a folder), around the agent's permission mode"
    ),
    "hooks": "would run commands whenever the agent's CLI uses the skill",
    "mcpServers": (
        "would start MCP servers of the skill's own, around Fleetwarden's MCP door and its "
        "audit (grant servers in the config's mcp: instead)"
    ),
}
"""Front matter keys a skill given by Fleetwarden may not have, and why."""
_FENCE = "---"
_EXAMPLE = "---\nname: {name}\ndescription: what the skill does and when to use it\n---"


@dataclass(frozen=True, slots=True)
class Skill:
    """A checked skill: its directory, its name (the directory's) and its description."""

    path: Path
    name: str
    description: str


class SkillError(ValueError):
    """A skill directory that cannot be used; the message says where and the fix."""


def read_skill(directory: Path) -> Skill:
    """The skill in ``directory``, checked; raises :class:`SkillError` naming the file and
    line of what is wrong, with its fix."""
    folder = directory.name
    if not directory.is_dir():
        what = "is not a directory" if directory.exists() else "does not exist"
        raise SkillError(
            f"skill directory {str(directory)!r} {what}: a skill is a folder holding "
            f"{SKILL_FILE}; create it or fix the path (relative paths are resolved against "
            "the config file's directory)"
        )
    if len(folder) > MAX_NAME or not _NAME.fullmatch(folder):
        raise SkillError(
            f"skill directory {str(directory)!r}: its folder's name {folder[:80]!r} is not a "
            f"skill's name (lowercase letters and digits, words joined by single '-', at most "
            f"{MAX_NAME} characters; the skill's `name` is its folder's): rename the folder"
        )
    skill_file = directory / SKILL_FILE
    shown = str(skill_file)
    _links_stay_inside(directory)
    if not skill_file.exists():
        raise SkillError(
            f"skill directory {str(directory)!r} holds no {SKILL_FILE}: add one beginning "
            f"with its front matter ({_example(folder)})"
        )
    text = _read(Path(os.path.realpath(skill_file)), shown)
    name, description = _front_matter(text, shown, folder)
    return Skill(directory, name, description)


def _links_stay_inside(directory: Path) -> None:
    """Refuse a symlink anywhere in the skill ``directory`` that leads out of it: what a
    CLI is given is the skill's own files, never one it points at (``SKILL.md`` →
    ``/etc/shadow``, a script → an agent's workdir)."""
    top = Path(os.path.realpath(directory))
    seen = 0
    for here, dirs, files in os.walk(top, followlinks=False):
        for entry in (*dirs, *files):
            seen += 1
            if seen > MAX_ENTRIES:
                raise SkillError(
                    f"skill directory {str(directory)!r} holds more than {MAX_ENTRIES} files: "
                    "a skill is instructions and a few files beside them; keep only those"
                )
            path = Path(here, entry)
            if not path.is_symlink():
                continue
            target = Path(os.path.realpath(path))
            if target != top and top not in target.parents:
                raise SkillError(
                    f"skill directory {str(directory)!r}: {str(path.relative_to(top))!r} is a "
                    "symlink leading out of the skill's folder, and a skill is given only its "
                    "own files: copy what it needs into the folder instead"
                )


def _read(real: Path, shown: str) -> str:
    """The text of the ``SKILL.md`` at ``real`` (no symlink), at most
    :data:`MAX_SKILL_FILE` bytes read from the file as opened."""
    flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
    try:
        fd = os.open(real, flags)
    except OSError as exc:
        raise SkillError(f"cannot read {shown}: {exc.strerror or exc}") from None
    with os.fdopen(fd, "rb") as file:
        mode = os.fstat(file.fileno()).st_mode
        if not stat.S_ISREG(mode):
            kind = _KINDS.get(stat.S_IFMT(mode), "not a regular file")
            raise SkillError(f"{shown} is {kind}: make it a plain text file")
        try:
            data = file.read(MAX_SKILL_FILE + 1)
        except OSError as exc:
            raise SkillError(f"cannot read {shown}: {exc.strerror or exc}") from None
    if len(data) > MAX_SKILL_FILE:
        raise SkillError(
            f"{shown} is larger than {MAX_SKILL_FILE // 1024} KiB: keep the instructions "
            "short and put the rest in files beside it"
        )
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SkillError(
            f"{shown} is not UTF-8 text (bad byte at offset {exc.start}): save it as UTF-8"
        ) from None


def _example(folder: str) -> str:
    return " / ".join(_EXAMPLE.format(name=folder).splitlines())


def _front_matter(text: str, shown: str, folder: str) -> tuple[str, str]:
    """The ``name`` and ``description`` of a ``SKILL.md``'s front matter, checked."""
    lines = text.lstrip("\ufeff").splitlines()
    if not lines or lines[0].rstrip() != _FENCE:
        raise SkillError(
            f"{shown}:1: {SKILL_FILE} begins with its YAML front matter between two `---` "
            f"lines: {_example(folder)}"
        )
    end = next((n for n in range(1, len(lines)) if lines[n].rstrip() == _FENCE), None)
    if end is None:
        raise SkillError(
            f"{shown}:1: the front matter is never closed: end it with a line `---` after "
            "its `description`"
        )
    try:
        root = yaml.compose("\n".join(lines[1:end]), Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = 2 + mark.line if mark is not None else 1
        problem = getattr(exc, "problem", None) or "malformed"
        raise SkillError(
            f"{shown}:{line}: the front matter is not valid YAML ({problem}): write it as "
            "`key: value` lines; quote a description holding ': '"
        ) from None
    if not isinstance(root, MappingNode):
        raise SkillError(
            f"{shown}:2: the front matter must be `key: value` lines: {_example(folder)}"
        )
    _safe_nodes(root, shown)
    keys: dict[str, tuple[Node, int]] = {}
    for key, value in root.value:
        if not isinstance(key, ScalarNode):
            continue
        line = key.start_mark.line + 2
        if key.value in keys:
            raise SkillError(
                f"{shown}:{line}: `{_said_key(key.value)}` is set twice in the front matter "
                f"(first on line {keys[key.value][1]}): keep one"
            )
        keys[key.value] = (value, line)
    for key, why in _REFUSED_KEYS.items():
        if key in keys:
            raise SkillError(f"{shown}:{keys[key][1]}: `{key}` {why}: remove it")
    if "name" not in keys:
        raise SkillError(f"{shown}:2: the front matter has no `name`: add `name: {folder}`")
    node, line = keys["name"]
    name = node.value if isinstance(node, ScalarNode) and node.tag == _STR else None
    if name != folder:
        raise SkillError(
            f"{shown}:{line}: the `name` in {SKILL_FILE} differs from the folder's name "
            f"`{folder}` (a skill's name is its folder's): set `name: {folder}` (or rename "
            "the folder)"
        )
    if "description" not in keys:
        raise SkillError(
            f"{shown}:2: the front matter has no `description`: add `description:` saying "
            "what the skill does and when to use it"
        )
    node, line = keys["description"]
    if not isinstance(node, ScalarNode) or node.tag not in (_STR, _NULL):
        kind = {"seq": "list", "map": "mapping"}.get(node.tag.rsplit(":", 1)[-1])
        kind = kind or node.tag.rsplit(":", 1)[-1]
        article = "an" if kind[:1] in "aeiou" else "a"
        raise SkillError(
            f"{shown}:{line}: `description` must be text, and YAML reads this one as "
            f"{article} {kind}: put it in quotes, or write what the skill does"
        )
    written = isinstance(node, ScalarNode) and node.tag == _STR
    description = node.value.strip() if written else ""
    if not description:
        raise SkillError(
            f"{shown}:{line}: `description` is empty: say what the skill does and when to "
            "use it (an agent's CLI chooses skills by it)"
        )
    if _CONTROL.search(description):
        raise SkillError(
            f"{shown}:{line}: `description` holds a control character (an escape sequence?): "
            "write it as plain text (it is shown to agents and in chat)"
        )
    if len(description) > MAX_DESCRIPTION:
        raise SkillError(
            f"{shown}:{line}: `description` is {len(description)} characters, more than "
            f"{MAX_DESCRIPTION}: shorten it (the details go in the body)"
        )
    return name, description


def _said_key(key: str) -> str:
    return key if _NAME.fullmatch(key) or key in _KNOWN_KEYS else "a key"


def _safe_nodes(root: Node, shown: str) -> None:
    """Refuse a YAML tag the safe loader would not build (``!!python/object``, ``!x``)."""
    todo, seen = [root], 0
    while todo:
        node = todo.pop()
        seen += 1
        if node.tag not in _SAFE_TAGS:
            raise SkillError(
                f"{shown}:{node.start_mark.line + 2}: the front matter uses a YAML tag (`!…`): "
                "write plain values"
            )
        if seen > 10_000:
            raise SkillError(f"{shown}:2: the front matter is too large: keep it to a few keys")
        if isinstance(node, MappingNode):
            todo += [part for pair in node.value for part in pair]
        elif isinstance(node, SequenceNode):
            todo += node.value


def _skill_dir(value: Path) -> Path:
    try:
        read_skill(value)
    except SkillError as exc:
        raise PydanticCustomError("skill", "{problem}", {"problem": str(exc)}) from None
    return value


SkillDir = Annotated[ConfigPath, AfterValidator(_skill_dir)]
"""A skill directory in the config: a :data:`~fleet.schema.ConfigPath` holding a checked
``SKILL.md`` (:func:`read_skill`)."""

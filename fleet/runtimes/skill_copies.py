"""An agent's skills as its CLI is given them at launch: a copy of each configured skill
directory (checked when the config was loaded, :mod:`fleet.mcp.config.skills`) in the CLI's own
skills folder in the agent's home, written as the run's other config files are (mode
0600, an executable script 0700; through no symlink the agent left there). Never read
from the agent's own workdir or home: what the agent could write is not what the operator
configured.

Where each CLI reads them (measured in ``docs/mcp-clis.md``): Claude Code
``$CLAUDE_CONFIG_DIR/skills/<name>`` (the only skills folder read with ``--setting-sources
user``); Codex ``$CODEX_HOME/skills/<name>``; opencode ``~/.config/opencode/skills/<name>``;
a ``command`` agent ``$HOME/.fleetwarden/skills/<name>``. Codex also reads the workdir's
``.agents/skills``, even in an untrusted project, and no switch turns that off: that folder
is the repository's text, as its ``AGENTS.md`` is, never Fleetwarden's.

A skill is copied file by file: a symlink inside it that stays inside is copied as the
file it names; one that leads out of it, or to a directory, refuses the launch, as do a
file that is not UTF-8 text and a skill over :data:`MAX_FILES` files or
:data:`MAX_BYTES` bytes, each saying which skill and the fix. Each file is opened with
``O_NOFOLLOW`` and, once open, must still be inside the skill: a symlink put in a file's
place after it was looked at is refused, never followed. A file executable where the
operator keeps it (a script of the skill's ``scripts/``) is copied executable (0700),
every other 0600.
"""

from __future__ import annotations

import errno
import os
import re
import stat
from pathlib import Path
from typing import Final

from fleet.errors import LaunchFailed
from fleet.lane_files import ExecutableText
from fleet.mcp.config.skills import MAX_NAME, SKILL_NAME_PATTERN
from fleet.model import AgentSpec
from fleet.runtimes.base import RuntimeContext

MAX_FILES: Final = 256
"""Files one skill may hold (its ``SKILL.md`` among them)."""
MAX_BYTES: Final = 4 * 1024 * 1024
"""Bytes one skill's files may hold together."""
COMMAND_SKILLS: Final = ".fleetwarden/skills"
"""Where a ``command`` agent finds its skills, under its ``HOME``."""

_NAME = re.compile(SKILL_NAME_PATTERN)


def skill_files(spec: AgentSpec, ctx: RuntimeContext, folder: Path) -> dict[Path, str]:
    """The files that put each of ``spec``'s skills in ``folder/<name>`` (none without
    skills); :class:`~fleet.errors.LaunchFailed` naming the skill and the fix when one
    cannot be copied."""
    files: dict[Path, str] = {}
    for source in spec.skills:
        for relative, text in _read_skill(spec, ctx, source).items():
            files[folder / source.name / relative] = text
    return files


def _read_skill(spec: AgentSpec, ctx: RuntimeContext, source: Path) -> dict[str, str]:
    name = source.name
    if len(name) > MAX_NAME or not _NAME.fullmatch(name):  # a folder of the CLI's, by name
        raise _refused(
            spec, name[:80], f"{source}'s folder name is not a skill's name: rename the folder"
        )
    try:
        root = source.resolve(strict=True)
    except OSError as exc:
        raise _refused(spec, name, f"{source} cannot be read ({exc.strerror or exc})") from None
    for own in (ctx.workdir, ctx.home):
        if root.is_relative_to(own.resolve()):
            raise _refused(
                spec,
                name,
                f"{source} is inside the agent's own {'workdir' if own == ctx.workdir else 'home'}"
                ", which the agent can write: keep skills in a directory of the operator's",
            )
    try:
        return _walk(spec, source, root)
    except OSError as exc:
        raise _refused(spec, name, f"{source} cannot be read ({exc.strerror or exc})") from None


def _walk(spec: AgentSpec, source: Path, root: Path) -> dict[str, str]:
    name = source.name
    copied: dict[str, str] = {}
    total = 0
    for directory, dirs, names in os.walk(root, onerror=_raise):
        here = Path(directory)
        for entry in sorted(dirs):
            if (here / entry).is_symlink():
                raise _refused(
                    spec,
                    name,
                    f"{here / entry} is a symlink to a directory: copy the files into the "
                    "skill instead",
                )
        dirs.sort()
        for entry in sorted(names):
            path = here / entry
            text = _read_file(spec, name, root, path)
            total += len(text.encode("utf-8"))
            copied[path.relative_to(root).as_posix()] = text
            if len(copied) > MAX_FILES or total > MAX_BYTES:
                raise _refused(
                    spec,
                    name,
                    f"{source} holds more than {MAX_FILES} files or {MAX_BYTES // (1024 * 1024)}"
                    " MiB: keep a skill to its instructions and the few files they use",
                )
    return copied


def _read_file(spec: AgentSpec, name: str, root: Path, path: Path) -> str:
    target = path
    if path.is_symlink():
        target = path.resolve()
        if not target.is_relative_to(root):
            raise _leads_out(spec, name, path)
    try:
        # O_NOFOLLOW: a symlink put here since it was looked at is refused, not followed.
        fd = os.open(target, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC | os.O_NOFOLLOW)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise _leads_out(spec, name, path) from None
        raise _refused(spec, name, f"{path} cannot be read ({exc.strerror or exc})") from None
    try:
        if not Path(os.readlink(f"/proc/self/fd/{fd}")).is_relative_to(root):
            raise _leads_out(spec, name, path)  # a directory on the way was swapped
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise _refused(spec, name, f"{path} is not a plain file: remove it from the skill")
        if info.st_size > MAX_BYTES:
            raise _refused(
                spec, name, f"{path} is larger than {MAX_BYTES // (1024 * 1024)} MiB: remove it"
            )
        with os.fdopen(fd, "rb", closefd=False) as file:
            data = file.read(MAX_BYTES + 1)
    except OSError as exc:
        raise _refused(spec, name, f"{path} cannot be read ({exc.strerror or exc})") from None
    finally:
        os.close(fd)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise _refused(
            spec,
            name,
            f"{path} is not UTF-8 text (skills are copied as text): remove it or save it as UTF-8",
        ) from None
    return ExecutableText(text) if info.st_mode & 0o111 else text


def _leads_out(spec: AgentSpec, name: str, path: Path) -> LaunchFailed:
    return _refused(
        spec,
        name,
        f"{path} is a symlink leading out of the skill: copy the file into the skill instead",
    )


def _raise(exc: OSError) -> None:
    raise exc


def _refused(spec: AgentSpec, skill: str, why: str) -> LaunchFailed:
    return LaunchFailed(f"{spec.name} cannot start: its skill {skill!r} cannot be copied: {why}")

"""Where an agent can write, and what Fleetwarden reads or runs outside every sandbox, kept
apart: a skill directory and a stdio server's working directory, program, and any path its
arguments or environment name (``PYTHONPATH``, ``NODE_OPTIONS=--require …``) are never an
agent's workdir, ``workdirs:`` or the state directory, nor inside one — and no such place is
inside a skill directory or a server's working directory either. The one check
(:func:`clash`), used by the config's load (:mod:`bot.config.mcp.checks`) and by every
launch (:class:`~fleet.mcp.config.rules.McpRules`, a spawn's ``--workdir``).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path

from fleet.mcp.model import McpServer, StdioServer

_WORDS = re.compile(r"[\s=,;:]+")
"""What separates the paths in an argument or a variable's value (``a:b``, ``--x=/p``)."""


def _real(path: Path) -> Path:
    return Path(os.path.realpath(path.expanduser()))


def inside(path: Path, root: Path) -> bool:
    """Whether ``path`` is ``root`` or under it, each with its symlinks resolved."""
    real, top = _real(path), _real(root)
    return real == top or top in real.parents


def clash(path: Path, root: Path, *, both: bool = True) -> bool:
    """Whether ``path`` is ``root``, inside it or (``both``) holds it."""
    return inside(path, root) or (both and inside(root, path))


def paths_in(text: str, base: Path | None = None, *, every_word: bool = False) -> Iterator[Path]:
    """The paths an argument or a variable's value names: each absolute one (``/…``,
    ``~/…``) and, resolved against ``base`` (where the server runs), each relative one —
    a word that says it is a path (``.``, ``./x``, ``../x``, ``a/b``) or, with
    ``every_word``, any word but an option (``-…``) or an npm package (``@scope/…``)."""
    for word in _WORDS.split(text):
        if word.startswith(("/", "~/")):
            yield Path(word)
        elif base is not None and _relative(word, every_word=every_word):
            yield base / word


def _relative(word: str, *, every_word: bool) -> bool:
    if not word or word.startswith(("-", "@", "~")):
        return False
    return every_word or word in (".", "..") or word.startswith(("./", "../")) or "/" in word


def first_clash(path: Path, places: Iterable[tuple[Path, str]], *, both: bool = True) -> str | None:
    """What the first of ``places`` (a path, said in words) ``path`` clashes with is."""
    return next((what for root, what in places if clash(path, root, both=both)), None)


Place = tuple[Path, str, bool]
"""A place Fleetwarden reads or runs from outside every sandbox, said in words, and
whether an agent's place may not hold it either (``False``: only not be inside one)."""


def stdio_places(
    command: str, args: Iterable[str], env: Mapping[str, str], cwd: Path | str | None
) -> Iterator[tuple[tuple[str | int, ...], Path, bool]]:
    """Each place a stdio server is run from or reads, where it is said (``("args", 0)``),
    and whether it clashes by holding an agent's place too (its working directory) or only
    by being in one (its program, a path an argument or variable names). A relative path is
    resolved against the server's working directory: ``cwd`` (any word but an option), or
    else Fleetwarden's own, where the server is started then (a word that says it is a
    path: a bare word there is more often a name than a file)."""
    base = Path(cwd) if cwd is not None else Path.cwd()
    every_word = cwd is not None  # Fleetwarden's own directory: only what says it is a path

    def named(text: str) -> Iterator[Path]:
        return paths_in(text, base, every_word=every_word)

    if cwd is not None:
        yield ("cwd",), Path(cwd), True
    if "/" in command:
        yield ("command",), Path(command), False
    for index, arg in enumerate(args):
        for path in named(arg):
            yield ("args", index), path, False
    for key, value in env.items():
        for path in named(value):
            yield ("env", key), path, False


def protected(skills: Iterable[Path], servers: Mapping[str, McpServer]) -> tuple[Place, ...]:
    """What an agent's workdir may never be nor hold (and, for skill directories and a
    server's working directory, not be inside): every skill directory, and each stdio
    server's working directory, program and the paths its arguments and variables name."""
    places = [(path, f"skill directory {str(path)!r}", True) for path in dict.fromkeys(skills)]
    for name, server in servers.items():
        t = server.transport
        if isinstance(t, StdioServer):
            for key, path, both in stdio_places(t.command, t.args, t.env, t.cwd):
                places.append((path, f"MCP server {name}'s {key[0]} {str(path)!r}", both))
    return tuple(places)


def workdir_clash(workdir: Path, places: Iterable[Place]) -> str | None:
    """What of ``places`` the agent's ``workdir`` is, holds, or (where it matters) is in."""
    for path, what, both in places:
        if inside(path, workdir) or (both and inside(workdir, path)):
            return what
    return None

"""Where an agent can write, and what Fleetwarden reads or runs for itself, kept apart: a
skill directory and a stdio server's working directory, program, and any path its arguments
or environment name — read as the program reads them (:mod:`fleet.mcp.config.spelled`:
quotes, ``=`` values, argument files, ``file:`` URLs, ``-c`` code, ``NODE_OPTIONS``) — are
never an agent's workdir, ``workdirs:`` or the state directory, nor inside one — and no
such place is inside a skill directory, a server's working directory or a path given to a
server whole either. The one check
(:func:`clash`), used by the config's load (:mod:`bot.config.mcp.checks`) and by every
launch (:class:`~fleet.mcp.config.rules.McpRules`, a spawn's ``--workdir``).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from fleet.mcp.config.spelled import arg_paths, env_paths
from fleet.mcp.model import McpServer, StdioServer


def _real(path: Path) -> Path:
    return Path(os.path.realpath(path.expanduser()))


def inside(path: Path, root: Path) -> bool:
    """Whether ``path`` is ``root`` or under it, each with its symlinks resolved."""
    real, top = _real(path), _real(root)
    return real == top or top in real.parents


def clash(path: Path, root: Path, *, both: bool = True) -> bool:
    """Whether ``path`` is ``root``, inside it or (``both``) holds it."""
    return inside(path, root) or (both and inside(root, path))


def first_clash(path: Path, places: Iterable[tuple[Path, str]], *, both: bool = True) -> str | None:
    """What the first of ``places`` (a path, said in words) ``path`` clashes with is."""
    return next((what for root, what in places if clash(path, root, both=both)), None)


Place = tuple[Path, str, bool]
"""A place Fleetwarden reads or runs from for itself, said in words, and
whether an agent's place may not hold it either (``False``: only not be inside one)."""


@dataclass(frozen=True, slots=True)
class Named:
    """A place a stdio server is run from or reads: where the config says it (``("args",
    0)``), the path, whether it clashes by holding an agent's place too (``both``: its
    working directory, a path an argument or variable gives whole) or only by being in one
    (its program, a path in code or in an argument file), and how the server reads it when
    not as written (:class:`fleet.mcp.config.spelled.Found`)."""

    key: tuple[str | int, ...]
    path: Path
    both: bool
    how: str = ""

    @property
    def said(self) -> str:
        """Where the config says it: ``args[0]``, ``env.NODE_OPTIONS``, ``cwd``."""
        head, *rest = self.key
        if not rest:
            return str(head)
        return f"{head}[{rest[0]}]" if isinstance(rest[0], int) else f"{head}.{rest[0]}"


def stdio_places(
    command: str,
    args: Iterable[str],
    env: Mapping[str, str],
    cwd: Path | str | None,
    held: Mapping[str, str] | None = None,
) -> Iterator[Named]:
    """Each place a stdio server is run from or reads, read as the program reads its words
    (:mod:`fleet.mcp.config.spelled`); ``held``: the values of its ``env_env`` variables as
    Fleetwarden's environment gives them (key ``("env_env", NAME)``), read as ``env``'s
    are — where that environment is known. A relative path is resolved against the server's
    working directory: ``cwd`` (any word but an option), or else Fleetwarden's own, where
    the server is started then (a word that says it is a path: a bare word there is more
    often a name than a file)."""
    base = Path(cwd) if cwd is not None else Path.cwd()
    every_word = cwd is not None  # Fleetwarden's own directory: only what says it is a path
    if cwd is not None:
        yield Named(("cwd",), Path(cwd), True)
    if "/" in command:
        yield Named(("command",), Path(command), False)
    for index, found in arg_paths(tuple(args), base, every_word):
        yield Named(("args", index), found.path, found.whole, found.how)
    for key, value in env.items():
        for found in env_paths(value, base, every_word):
            yield Named(("env", key), found.path, found.whole, found.how)
    for key, value in (held or {}).items():
        for found in env_paths(value, base, every_word):
            yield Named(("env_env", key), found.path, found.whole, found.how)


def protected(skills: Iterable[Path], servers: Mapping[str, McpServer]) -> tuple[Place, ...]:
    """What an agent's workdir may never be nor hold (and, for skill directories and a
    server's working directory, not be inside): every skill directory, and each stdio
    server's working directory, program and the paths its arguments and variables name."""
    places = [(path, f"skill directory {str(path)!r}", True) for path in dict.fromkeys(skills)]
    for name, server in servers.items():
        t = server.transport
        if isinstance(t, StdioServer):
            for named in stdio_places(t.command, t.args, t.env, t.cwd):
                what = f"MCP server {name}'s {named.key[0]} {str(named.path)!r}"
                places.append((named.path, what, named.both))
    return tuple(places)


def workdir_clash(workdir: Path, places: Iterable[Place]) -> str | None:
    """What of ``places`` the agent's ``workdir`` is, holds, or (where it matters) is in."""
    for path, what, both in places:
        if inside(path, workdir) or (both and inside(workdir, path)):
            return what
    return None

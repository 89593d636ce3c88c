"""Config checks of where MCP stdio servers and skills are: no skill directory, nor a stdio
server's program, where an agent can write (its workdir, ``workdirs:``, the state
directory); and no stdio server's working directory, nor a path its arguments or variables
name — read as the program reads them — where an agent can write, nor at the config file's
folder (its environment file), nor holding any of those: each refused at its line, naming
the server, the key, the place and how the program reads the path. The one check of places
is :mod:`fleet.mcp.config.places`'.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

from bot.config.checks.problems import ConfigProblem, Locator
from bot.config.roster.file import RosterSource
from bot.config.schema import ConfigFile
from fleet.budgets.schema import Loc
from fleet.mcp.config.places import Named, first_clash, inside, stdio_places

GUIDE = "docs/mcp.md"
"""Where an operator reads how MCP servers are set up."""


def place_problems(
    document: ConfigFile,
    locate: Locator,
    file_name: str,
    roster: RosterSource,
    config_dir: Path | None = None,
    environ: Mapping[str, str] | None = None,
) -> Iterator[ConfigProblem]:
    """Skill directories and stdio servers' programs where an agent can write: its workdir,
    ``workdirs:`` or the state directory (where runs and checkouts are) — or such a place
    inside a skill directory; and a stdio server's working directory and every path its
    arguments and variables name that is, holds or is in such a place or ``config_dir``
    (the config file's folder) — with ``environ``, the values its ``env_env`` variables
    take from it too (a path in one is not shown: such a value may be a secret). What is
    there could be changed by an agent before
    Fleetwarden gives it to a CLI or runs it with the server's credentials, or read by a
    tool an agent calls (:func:`fleet.mcp.config.places.clash`)."""
    fenced = fences(document)
    skills: list[tuple[Loc, Path, bool]] = [
        (("defaults", "skills", n), path, False) for n, path in enumerate(document.defaults.skills)
    ]
    for index, agent in enumerate(document.agents):
        skills += [
            (("agents", index, "skills", n), path, True)
            for n, path in enumerate(agent.skills or ())
        ]
    for loc, path, in_roster in skills:
        what = first_clash(path, fenced)
        if what is None:
            continue
        message = (
            f"skill directory {str(path)!r} {_how(path, what, fenced)}: an agent could change "
            "it before it is given to a CLI; keep skills in a directory of the operator's, "
            "apart from every workdir and the state directory"
        )
        line, where, _ = (roster.locate if in_roster else locate)(loc)
        yield ConfigProblem(roster.file_name if in_roster else file_name, line, where, message)
    said: set[Loc] = set()
    for loc, named in _server_places(document, environ):
        if loc in said:
            continue  # one word may name a place in several spellings: said once
        what = first_clash(named.path, fenced, both=named.both)
        how = None if what is None else _how(named.path, what, fenced)
        if how is None and config_dir is not None and named.key != ("command",):
            how = _at_config(named.path, config_dir, both=named.both)
        if how is None:
            continue
        said.add(loc)
        line, where, _ = locate(loc)
        read = f" ({named.how})" if named.how else ""
        shown = f"{str(named.path)!r}{read}"
        if named.key[0] == "env_env":
            shown = f"(as Fleetwarden's environment sets it now; not shown){read}: a path in it"
        yield ConfigProblem(
            file_name,
            line,
            where,
            f"MCP server {loc[1]}'s {named.said} {shown} {how}: "
            "Fleetwarden runs the server with its credentials, so an agent could change what "
            "it runs, or a tool an agent calls read what is there; keep the server's program, "
            "cwd and every path it is given apart from every workdir, the state directory and "
            f"the config file's own files (see {GUIDE})",
        )


def _at_config(path: Path, config_dir: Path, *, both: bool) -> str | None:
    """How ``path`` reaches the config file's folder (its config and environment files):
    it is that folder, holds it (``both``), or is a file directly in it; ``None``: it does
    not (a folder inside it is the operator's to give)."""
    if inside(path, config_dir) and inside(config_dir, path):
        return "is the config file's folder"
    if both and inside(config_dir, path):
        return "holds the config file's folder"
    real = Path(os.path.realpath(path))
    if real.parent == Path(os.path.realpath(config_dir)) and not real.is_dir():
        return "is a file of the config file's folder (its config, its environment file)"
    return None


def _how(path: Path, what: str, fenced: Sequence[tuple[Path, str]]) -> str:
    """How ``path`` clashes with the fenced place ``what``: inside it, or holding it."""
    root = next(root for root, said in fenced if said == what)
    return f"is inside {what}" if inside(path, root) else f"holds {what}"


def fences(document: ConfigFile) -> list[tuple[Path, str]]:
    """The places an agent can write, said in words: the state directory, ``workdirs:``,
    each agent's workdir."""
    fenced = [(document.state_dir, "Fleetwarden's state directory, where agents' runs are")]
    if document.workdirs is not None:
        fenced.append((document.workdirs, "`workdirs:`, where agents work"))
    fenced += [
        (agent.workdir, f"agent {agent.name}'s workdir")
        for agent in document.agents
        if agent.workdir is not None
    ]
    return fenced


def _server_places(
    document: ConfigFile, environ: Mapping[str, str] | None
) -> Iterator[tuple[Loc, Named]]:
    """Each place a stdio server of the section is run from or reads
    (:func:`fleet.mcp.config.places.stdio_places`), where the config says it; with
    ``environ``, what its ``env_env`` variables hold there too."""
    for name, server in document.mcp.items():
        if server.command is None:
            continue
        held = {
            key: environ[variable]
            for key, variable in server.env_env.items()
            if environ is not None and environ.get(variable)
        }
        for named in stdio_places(server.command, server.args, server.env, server.cwd, held):
            yield ("mcp", name, *named.key), named

"""Config checks of where MCP stdio servers and skills are: no skill directory, nor a stdio
server's program, working directory or a path its arguments or variables name, where an
agent can write (its workdir, ``workdirs:``, the state directory) — refused at its line —
and, for ``check-config``, a warning of each path such a server is given that holds the
state directory or is at the config file's directory (the server runs as Fleetwarden's
user: a path-taking tool an agent drives could read what is there). The one check of
places is :mod:`fleet.mcp.config.places`'.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path

from bot.config.checks.problems import ConfigProblem, Locator
from bot.config.roster.file import RosterSource
from bot.config.schema import ConfigFile
from fleet.budgets.schema import Loc
from fleet.mcp.config.places import first_clash, inside, stdio_places

GUIDE = "docs/mcp.md"
"""Where an operator reads how MCP servers are set up."""


def place_problems(
    document: ConfigFile, locate: Locator, file_name: str, roster: RosterSource
) -> Iterator[ConfigProblem]:
    """Skill directories, and stdio servers' programs, working directories and the paths
    their arguments and variables name, where an agent can write: its workdir,
    ``workdirs:`` or the state directory (where runs and checkouts are) — or such a place
    inside a skill directory or a server's working directory. What is there could be
    changed by an agent before Fleetwarden gives it to a CLI, or runs it with its own
    rights, outside every sandbox (:func:`fleet.mcp.config.places.clash`)."""
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
    for loc, path, both in _server_places(document):
        what = first_clash(path, fenced, both=both)
        if what is None:
            continue
        line, where, _ = locate(loc)
        key = where.removeprefix(f"mcp.{loc[1]}.")
        yield ConfigProblem(
            file_name,
            line,
            where,
            f"MCP server {loc[1]}'s {key} {str(path)!r} {_how(path, what, fenced)}: "
            "Fleetwarden runs the server outside every sandbox, with its credentials, so an "
            "agent could change what it runs; keep it apart from every workdir and the state "
            "directory",
        )


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


def _server_places(document: ConfigFile) -> Iterator[tuple[Loc, Path, bool]]:
    """Each place a stdio server of the section is run from or reads
    (:func:`fleet.mcp.config.places.stdio_places`), where the config says it."""
    for name, server in document.mcp.items():
        if server.command is None:
            continue
        for key, path, both in stdio_places(server.command, server.args, server.env, server.cwd):
            yield ("mcp", name, *key), path, both


def reach_warnings(document: ConfigFile, source: Path | None) -> list[str]:
    """A warning for each path a stdio server's arguments or variables name that holds
    Fleetwarden's state directory (its logins, keys and ledger; a path inside it is
    refused), or is, holds or is inside the config file's directory: the server runs as
    Fleetwarden's user, so a path-taking tool an agent drives (a filesystem server) could
    read what is there."""
    places = [(document.state_dir, "Fleetwarden's state directory (its logins, keys, ledger)")]
    if source is not None:
        places.append((source.parent, "the config file's directory"))
    found = []
    for name, server in document.mcp.items():
        if server.command is None:
            continue
        for key, path, _ in stdio_places(server.command, server.args, server.env, server.cwd):
            if key[0] not in ("args", "env"):
                continue
            for root, what in places:
                holds, within = inside(root, path), inside(path, root)
                if within and root == document.state_dir:
                    continue  # refused: place_problems
                if holds or within:
                    how = "is" if holds and within else "holds" if holds else "is inside"
                else:
                    continue
                shown = f"{key[0]}[{key[1]}]" if isinstance(key[1], int) else f"{key[0]}.{key[1]}"
                found.append(
                    f"mcp.{name}.{shown}: {str(path)!r} {how} {what}; the server runs as "
                    "Fleetwarden's user, outside every sandbox, so a tool an agent calls could "
                    f"read what is there: give the server only the paths it needs (see {GUIDE})"
                )
                break
    return found

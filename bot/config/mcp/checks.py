"""Config checks of the MCP servers across entries: each server an agent's ``mcp:`` (or
``defaults.mcp``) names is one of the config's ``mcp:`` section (a typo answered with the
likeliest one meant), each tool a grant lists is on its server's allow-list, an agent
granted a server runs a CLI Fleetwarden can give it to, and no skill nor stdio server is
read or run from where an agent can write (:mod:`bot.config.mcp.places`); at start, each
server's credentials are in the environment. And the servers as ``check-config`` sums
them up.

What is checked inside one entry (a url, a header that looks secret, ``url`` or
``command``) is the schema's own, :class:`fleet.mcp.config.schema.McpServerEntry`; that no agent
holds a server's credential is :mod:`bot.config.checks.doors`'s, with every other credential
Fleetwarden holds.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from urllib.parse import urlsplit

from bot.config.checks.problems import ConfigProblem, Locator
from bot.config.mcp.places import GUIDE, place_problems
from bot.config.roster.file import RosterSource
from bot.config.schema import ConfigFile
from fleet.budgets.schema import Loc
from fleet.mcp.config.grants import MCP_RUNTIMES, NO_MCP_RUNTIMES, McpGrantEntry, no_mcp_why
from fleet.mcp.config.schema import McpServerEntry
from fleet.runtimes.base import PASSTHROUGH_ENV
from fleet.schema import did_you_mean, unset_variable


def mcp_problems(
    document: ConfigFile,
    locate: Locator,
    file_name: str,
    roster: RosterSource,
    config_dir: Path | None = None,
) -> Iterator[ConfigProblem]:
    """Grants naming no server of the section, or a tool off its allow-list; agents
    granted servers on a runtime that cannot reach them; stdio servers given a place they
    must not reach (``config_dir``: the config file's folder)."""
    servers = document.mcp
    for loc, message in _grant_problems(document.defaults.mcp, servers, ("defaults", "mcp")):
        line, path, _ = locate(loc)
        yield ConfigProblem(file_name, line, path, message)
    for index, agent in enumerate(document.agents):
        if agent.mcp is None:
            continue
        for loc, message in _grant_problems(agent.mcp, servers, ("agents", index, "mcp")):
            line, path, _ = roster.locate(loc)
            yield ConfigProblem(roster.file_name, line, path, message)
    yield from _runtime_problems(document, locate, file_name, roster)
    yield from place_problems(document, locate, file_name, roster, config_dir)
    yield from _unsandboxed_problems(document, locate, file_name, roster)
    yield from _passed_through(document, locate, file_name)
    yield from _program_problems(document, locate, file_name)


def _grant_problems(
    grants: Mapping[str, McpGrantEntry], servers: Mapping[str, McpServerEntry], where: Loc
) -> Iterator[tuple[Loc, str]]:
    for name, grant in grants.items():
        server = servers.get(name)
        if server is None:
            yield (*where, name), _no_such_server(name, sorted(servers))
            continue
        if grant.tools is None or server.tools is None:
            continue
        for item, tool in enumerate(grant.tools):
            if tool not in server.tools:
                guess = did_you_mean(tool, server.tools)
                hint = f" — did you mean {guess!r}?" if guess is not None else ":"
                yield (
                    (*where, name, "tools", item),
                    f"tool {tool!r} is not on MCP server {name}'s allow-list{hint} a grant "
                    f"narrows the server's tools (mcp.{name}.tools: "
                    f"{', '.join(server.tools)}); add it there, or remove it here",
                )


def _no_such_server(name: str, known: Sequence[str]) -> str:
    if not known:
        return (
            f"MCP server {name!r} is not defined: the config has no `mcp:` section; add the "
            f"server there (mcp: {{{name}: {{url: …}}}}, see {GUIDE})"
        )
    guess = did_you_mean(name, known)
    if guess is not None:
        return (
            f"MCP server {name!r} is not defined — did you mean {guess!r}? (defined under "
            f"`mcp:`: {', '.join(known)})"
        )
    return (
        f"MCP server {name!r} is not defined: add it under `mcp:`, or remove it here "
        f"(defined: {', '.join(known)})"
    )


def _runtime_problems(
    document: ConfigFile, locate: Locator, file_name: str, roster: RosterSource
) -> Iterator[ConfigProblem]:
    """Agents (and ``defaults``) granted MCP servers on a runtime that cannot reach them."""
    defaults = document.defaults
    if defaults.mcp and defaults.runtime in NO_MCP_RUNTIMES:
        line, path, _ = locate(("defaults", "mcp"))
        yield ConfigProblem(
            file_name,
            line,
            path,
            f"defaults.runtime is {defaults.runtime}, {no_mcp_why(defaults.runtime)}: give the "
            f"servers to agents of runtime {MCP_RUNTIMES}, or set defaults.runtime to one",
        )
    for index, agent in enumerate(document.agents):
        grants = agent.mcp if agent.mcp is not None else defaults.mcp
        if not grants:
            continue
        runtime = agent.runtime or defaults.runtime
        loc: Loc = ("agents", index, "mcp") if agent.mcp is not None else ("agents", index)
        given = "its mcp:" if agent.mcp is not None else "defaults.mcp"
        message = None
        both_defaults = agent.runtime is None and agent.mcp is None  # said at defaults.mcp
        if runtime in NO_MCP_RUNTIMES and not both_defaults:
            message = (
                f"agent {agent.name!r} runs {runtime}, {no_mcp_why(runtime)}, and {given} grants "
                f"{', '.join(grants)}: use runtime {MCP_RUNTIMES}, or "
                + ("remove mcp here" if agent.mcp is not None else "set `mcp: []` on it")
            )
        elif agent.fallback is not None and agent.fallback.runtime in NO_MCP_RUNTIMES:
            loc = ("agents", index, "fallback", "runtime")
            message = (
                f"agent {agent.name}'s fallback runs {agent.fallback.runtime}, "
                f"{no_mcp_why(agent.fallback.runtime)}, and {given} grants {', '.join(grants)}: "
                f"give it a fallback of runtime {MCP_RUNTIMES}"
            )
        if message is not None:
            line, path, _ = roster.locate(loc)
            yield ConfigProblem(roster.file_name, line, path, message)


def _program_problems(
    document: ConfigFile, locate: Locator, file_name: str
) -> Iterator[ConfigProblem]:
    """A stdio server's program given by its path that is not there, or cannot be run."""
    for name, server in document.mcp.items():
        if server.command is None or "/" not in server.command:
            continue
        path = Path(server.command)
        if path.is_file() and os.access(path, os.X_OK):
            continue
        what = "cannot be run (not executable)" if path.is_file() else "does not exist"
        if path.is_dir():
            what = "is a directory"
        line, where, _ = locate(("mcp", name, "command"))
        yield ConfigProblem(
            file_name,
            line,
            where,
            f"MCP server {name}'s command {str(path)!r} {what}: give the path of the server's "
            "program, or a name on Fleetwarden's PATH (such as npx)",
        )


def missing_program_warnings(document: ConfigFile, path: str | None) -> list[str]:
    """A warning for each stdio server whose program, a bare name, is not on ``path``
    (Fleetwarden's ``PATH``): the server would fail to start when an agent needs it."""
    return [
        f"MCP server {name}'s command {server.command!r} is not on Fleetwarden's PATH: "
        "install it, or give the program's full path"
        for name, server in document.mcp.items()
        if server.command is not None
        and "/" not in server.command
        and shutil.which(server.command, path=path) is None
    ]


EVERY_AGENTS = frozenset({*PASSTHROUGH_ENV, "HOME", "FLEETWARDEN_AGENT"})
"""Variables every agent is given (a private HOME, Fleetwarden's few pass-throughs): never
a credential's."""


def _passed_through(
    document: ConfigFile, locate: Locator, file_name: str
) -> Iterator[ConfigProblem]:
    """A server's credential read from a variable every agent is given anyway."""
    for name, server in document.mcp.items():
        held: list[tuple[Loc, str]] = [
            (("headers_env", k), v) for k, v in server.headers_env.items()
        ]
        held += [(("env_env", k), v) for k, v in server.env_env.items()]
        held += [(("oauth", k), v) for k, v in _oauth_variables(server)]
        for key, variable in held:
            if variable not in EVERY_AGENTS:
                continue
            line, path, _ = locate(("mcp", name, *key))
            yield ConfigProblem(
                file_name,
                line,
                path,
                f"{variable} is a variable every agent is given ({', '.join(sorted(EVERY_AGENTS))}"
                "), so it cannot hold a credential Fleetwarden keeps from agents: put the "
                "credential in a variable of its own and name that one",
            )


def _held(server: McpServerEntry) -> bool:
    return bool(server.headers_env or server.env_env or server.oauth)


def _oauth_variables(server: McpServerEntry) -> list[tuple[str, str]]:
    """Where an HTTP server's OAuth client id and secret are read from: (key under
    ``oauth``, variable)."""
    oauth = server.oauth
    if oauth is None:
        return []
    return [
        ("client_id_env", oauth.client_id_env),
        ("client_secret_env", oauth.client_secret_env),
    ]


def _unsandboxed_why(who: str, names: Sequence[str]) -> str:
    return (
        f"{who} runs with sandbox: none and is granted MCP server {', '.join(names)}, whose "
        "credential Fleetwarden holds: an unsandboxed agent shares Fleetwarden's user and can "
        "read its environment (the credential with it) through /proc. Give it sandbox: bwrap, "
        "or take the server out of its mcp"
    )


def _unsandboxed_problems(
    document: ConfigFile, locate: Locator, file_name: str, roster: RosterSource
) -> Iterator[ConfigProblem]:
    """Agents (and ``defaults``, for ad hoc ones) without a sandbox granted a server whose
    credential Fleetwarden holds."""
    servers, defaults = document.mcp, document.defaults

    def held(grants: Iterable[str]) -> list[str]:
        return [n for n in grants if n in servers and _held(servers[n])]

    if defaults.sandbox == "none" and (names := held(defaults.mcp)):
        line, path, _ = locate(("defaults", "sandbox"))
        yield ConfigProblem(file_name, line, path, _unsandboxed_why("defaults", names))
    for index, agent in enumerate(document.agents):
        spec = agent.to_spec(defaults)
        names = held(grant.server for grant in spec.mcp)
        if spec.sandbox != "none" or not names:
            continue
        if agent.sandbox is None and agent.mcp is None:
            continue  # said at defaults
        key = "sandbox" if agent.sandbox is not None else "mcp"
        line, path, _ = roster.locate(("agents", index, key))
        who = f"agent {agent.name!r}"
        yield ConfigProblem(roster.file_name, line, path, _unsandboxed_why(who, names))


def direct_reach_warnings(document: ConfigFile) -> list[str]:
    """A warning for each agent granted an HTTP MCP server whose host it may reach itself
    (``egress: open``, or the host in its ``egress_allow``): it holds no credential, but
    could call the server around the door, unaudited."""
    found = []
    for agent in document.agents:
        spec = agent.to_spec(document.defaults)
        if spec.sandbox == "none":
            continue  # refused with a held credential; warned of as unsandboxed otherwise
        for grant in spec.mcp:
            server = document.mcp.get(grant.server)
            host = (urlsplit(server.url).hostname or "") if server and server.url else ""
            if not host:
                continue
            if spec.egress == "open":
                how, fix = "has egress: open", "give it egress: locked"
            elif any(_allows(entry, host) for entry in spec.egress_allow):
                how, fix = f"has {host} in its egress_allow", f"take {host} out of it"
            else:
                continue
            found.append(
                f"agent {agent.name!r} {how}, so it can reach MCP server {grant.server} "
                "directly, around its MCP door (without the credential, but unaudited and "
                f"unapproved): {fix}"
            )
    return found


def _allows(entry: str, host: str) -> bool:
    entry, host = entry.lower().rstrip("."), host.lower().rstrip(".")
    if entry.startswith("*."):
        return host.endswith(entry[1:])
    return entry == host or host.endswith("." + entry)


def environment_problems(
    servers: Mapping[str, McpServerEntry], environ: Mapping[str, str]
) -> Iterator[tuple[Loc, str]]:
    """Servers' credentials that are not in the environment: each is named, never shown."""
    for name, server in servers.items():
        wanted = [
            (("mcp", name, "headers_env", header), variable, f"the {header} header's value")
            for header, variable in server.headers_env.items()
        ]
        wanted += [
            (("mcp", name, "env_env", key), variable, f"the value of its {key}")
            for key, variable in server.env_env.items()
        ]
        wanted += [
            (("mcp", name, "oauth", key), variable, f"its OAuth client {key.split('_')[1]}")
            for key, variable in _oauth_variables(server)
        ]
        for loc, variable, what in wanted:
            problem = unset_variable(environ, variable, f"{what} for MCP server {name}")
            if problem is not None:
                yield loc, problem


def summary_lines(document: ConfigFile) -> list[str]:
    """One line per MCP server for ``check-config``: how it is reached, where its
    credential comes from (the variables, never their values), its allow-list, and the
    agents granted it."""
    lines = []
    for name, server in document.mcp.items():
        if server.url is not None:
            how = f"HTTP {server.url}"
            held = sorted({*server.headers_env.values(), *(v for _, v in _oauth_variables(server))})
            if server.oauth is not None:
                found = server.oauth.token_url or "the server's metadata"
                how += f"; OAuth client credentials, token from {found}"
        else:
            how = f"stdio {server.command}"
            held = sorted(set(server.env_env.values()))
        parts = [how, f"credential from ${', $'.join(held)}" if held else "no credential"]
        parts.append(f"tools: {', '.join(server.tools)}" if server.tools else "every tool")
        if server.price_per_call is not None:
            parts.append(f"${server.price_per_call:g} a call")
        granted = [
            agent.name
            for agent in document.agents
            if name in (agent.mcp if agent.mcp is not None else document.defaults.mcp)
        ]
        parts.append(f"agents: {', '.join(granted) or 'none'}")
        lines.append(f"{name}: {'; '.join(parts)}")
    return lines

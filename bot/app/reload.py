"""What ``roster reload`` (and SIGHUP) apply of the edited config file: all of it that
differs from what runs, or nothing.

The file is read and checked whole first: any problem, and nothing changes. Then
:func:`plan` sorts what differs from what runs. The roster and the operators apply at
once. A repository new to the file is taken on (its mirror made) when Fleetwarden already
works on repositories and the new one is on no forge. What Fleetwarden builds only when it
starts — the git door and the branch commands (a first ``repos:`` section), a repository's
mirror and lines (a repository changed or removed), a forge's client, pollers, webhook
route and watched repositories (anything under ``forges:``, a new repository on a forge),
the review stage (a new repository with ``review:`` when none had one at start), the MCP
door's servers (anything under ``mcp:``; an agent's own ``mcp:`` and ``skills:`` apply
with the roster) —
refuses the reload whole, naming each change and saying that a restart applies it. So does
a new repository ``check-config`` would refuse on this machine's disk (a path ``url`` that
is no git repository, a ``copy_from`` that is no directory), naming it on its line.

Only then does anything change, in this order: the new repositories (so an ``autostart``
agent on one finds it), the roster, the operators.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

from pydantic import BaseModel

from bot.acl import Acl
from bot.app.assembly import grants_of, mcp_rules, roster_of
from bot.commands.errors import CommandError
from bot.commands.handlers.launches.spawn_queue import caps_of
from bot.config import Config, ConfigError, Offered, load_config
from bot.config.checks.enforce import changed_refusal
from bot.config.checks.problems import ConfigProblem, Locator, compose
from bot.config.checks.repos import path_problems
from fleet.budgets.schema import Loc
from fleet.caps import Caps
from fleet.errors import FleetError
from fleet.forge.schema import ForgeEntry
from fleet.mcp.model import McpServer
from fleet.repos.schema import RepoEntry
from fleet.repos.service import Repos
from fleet.supervisor.fleet import Fleet, RosterDiff

log = logging.getLogger(__name__)

NOT_RELOADED = "the roster was not reloaded; nothing changed"
RESTART = "restart Fleetwarden (as you started it, with the same `--config`)"
ENVIRONMENT_NOTE = (
    "Fleetwarden reads its environment once, when it starts: a variable set since needs a "
    f"restart: {RESTART}"
)


@dataclass(frozen=True, slots=True)
class ReloadPlan:
    """What a reload does beyond the roster and the operators."""

    repos_added: Mapping[str, RepoEntry] = field(default_factory=dict)
    """Repositories to take on now, by name."""
    at_start: tuple[str, ...] = ()
    """The changes only a start applies, one phrase each: any refuses the whole reload."""


def plan(
    repos: Mapping[str, RepoEntry] | None,
    forges: Mapping[str, ForgeEntry],
    fresh: Config,
    caps: Caps | None = None,
    offline: frozenset[str] | None = None,
    mcp: Mapping[str, McpServer] | None = None,
) -> ReloadPlan:
    """What reloading ``fresh`` does, given the repositories Fleetwarden works on now
    (``None``: it started without ``repos:``), the forges it started with, the
    concurrency caps in force, the providers the offline stand-in answers and the MCP
    servers it started with (``None``: not compared)."""
    at_start: list[str] = []
    if mcp is not None:
        at_start.extend(_mcp_changes(mcp, fresh.mcp))
    if offline is not None and offline_of(fresh) != offline:
        at_start.append(
            "the providers the offline provider answers changed (a `providers:` entry, an "
            "account or an agent's key for a built-in provider was added or removed: the "
            "metering proxy's routes are made at start)"
        )
    if caps is not None and caps_of(fresh) != caps:
        at_start.append(
            "the concurrency caps were changed (`limits.max_running`, or `max_running` on an "
            "account or a budget)"
        )
    added, changed = _repo_changes(repos, forges, fresh)
    at_start.extend(changed)
    at_start.extend(_forge_changes(forges, fresh.forges))
    return ReloadPlan(added, tuple(at_start))


def _repo_changes(
    repos: Mapping[str, RepoEntry] | None, forges: Mapping[str, ForgeEntry], fresh: Config
) -> tuple[dict[str, RepoEntry], list[str]]:
    """The repositories a reload takes on, and the changes to them only a start applies."""
    at_start: list[str] = []
    added: dict[str, RepoEntry] = {}
    running = repos or {}
    # The review stage is made at start, and only when a repository or forge names one.
    staged = any(e.review for e in running.values()) or any(f.review for f in forges.values())
    for name, entry in sorted(fresh.repos.items()):
        if name in running:
            if keys := changed_keys(running[name], entry):
                at_start.append(f"repository {name!r} was changed ({', '.join(keys)})")
        elif repos is None:
            at_start.append(
                f"repository {name!r} was added, and Fleetwarden started with no `repos:` "
                "(the git door and the branch commands are made at start)"
            )
        elif entry.forge is not None:
            at_start.append(
                f"repository {name!r} was added on forge {entry.forge!r} (a forge's "
                "repositories are watched from the start)"
            )
        elif entry.review is not None and not staged:
            at_start.append(
                f"repository {name!r} was added with a `review:` stage, and Fleetwarden "
                "started with none (the review stage is made at start)"
            )
        else:
            added[name] = entry
    gone = sorted(running.keys() - fresh.repos.keys())
    at_start.extend(f"repository {name!r} was removed" for name in gone)
    return added, at_start


def _forge_changes(running: Mapping[str, ForgeEntry], fresh: Mapping[str, ForgeEntry]) -> list[str]:
    """The forges added, removed or changed: only a start applies any."""
    at_start: list[str] = []
    for name in sorted(running.keys() | fresh.keys()):
        if name not in fresh:
            at_start.append(f"forge {name!r} was removed")
        elif name not in running:
            at_start.append(f"forge {name!r} was added")
        elif keys := changed_keys(running[name], fresh[name]):
            at_start.append(f"forge {name!r} was changed ({', '.join(keys)})")
    return at_start


def _mcp_changes(running: Mapping[str, McpServer], fresh: Mapping[str, McpServer]) -> list[str]:
    """The MCP servers added, removed or changed: the MCP door reaches (and runs) the
    servers it started with."""
    said = []
    for name in sorted(running.keys() | fresh.keys()):
        if name not in fresh:
            said.append(f"MCP server {name!r} was removed")
        elif name not in running:
            said.append(f"MCP server {name!r} was added (the MCP door's servers are made at start)")
        elif running[name] != fresh[name]:
            said.append(f"MCP server {name!r} was changed")
    return said


def offline_of(cfg: Config) -> frozenset[str]:
    """The providers the offline stand-in answers under ``cfg`` (none without the proxy)."""
    if cfg.metering is None:
        return frozenset()
    return frozenset(name for name, route in cfg.providers.items() if route.offline)


def changed_keys(old: BaseModel, new: BaseModel) -> list[str]:
    """The config keys (as the file spells them) whose values differ between two entries."""
    fields = type(old).model_fields
    return [
        info.alias or name
        for name, info in fields.items()
        if getattr(old, name) != getattr(new, name)
    ]


def refusal(at_start: Collection[str]) -> str:
    """The answer to a reload refused for what only a start applies."""
    return (
        f"{NOT_RELOADED}: {'; '.join(at_start)}. These apply only when Fleetwarden starts: "
        f"{RESTART} to apply the whole file, or undo those edits and `roster reload` again"
    )


async def reload_config(
    config: Config,
    environ: Mapping[str, str],
    offered: Offered,
    fleet: Fleet,
    acl: Acl | None = None,
    repos: Repos | None = None,
    read: Callable[[Config], None] | None = None,
) -> RosterDiff:
    """Read ``config``'s file again and apply it (see the module), or change nothing and
    say why. ``config``: the one Fleetwarden started with; ``repos``: the repositories it
    works on (``None``: it started without ``repos:``); ``read``: told the new config
    before its roster applies (the redactor learns the secrets it names)."""
    fresh, chosen = await checked(config, environ, offered, repos)
    if chosen.repos_added:
        assert repos is not None  # plan adds none to a Fleetwarden without repositories
        try:
            await repos.adopt(chosen.repos_added)
        except (FleetError, OSError) as exc:
            raise CommandError(
                f"{NOT_RELOADED}: the new repositories could not be set up: {exc}"
            ) from exc
        log.info("repositories taken on by a reload: %s", ", ".join(sorted(chosen.repos_added)))
    if read is not None:
        read(fresh)
    diff = await fleet.apply_roster(roster_of(fresh), mcp_rules(fresh))
    if acl is not None:
        acl.replace(grants_of(fresh))
    return replace(diff, repos_added=tuple(sorted(chosen.repos_added)))


async def checked(
    config: Config,
    environ: Mapping[str, str],
    offered: Offered,
    repos: Repos | None = None,
    texts: Mapping[Path, str] | None = None,
    said: Callable[[ConfigProblem], ConfigProblem] | None = None,
) -> tuple[Config, ReloadPlan]:
    """The config file read again and checked whole, and what reloading it does; any
    problem, or a change only a start applies, as a :class:`CommandError`. ``texts``:
    files read as these texts instead of from the disk (a roster edit not yet written);
    ``said``: each problem of the file as it is to be shown (where ``texts`` has lines the
    disk has not)."""
    source = config.source
    if source is None:
        raise CommandError("there is no config file to reload")
    fresh = await _read(source, environ, offered, texts, said)
    if why := changed_refusal(config.document.enforce, fresh.document.enforce):
        raise CommandError(f"{NOT_RELOADED}: {why}")
    running = None if repos is None else {name: repos.entry(name) for name in repos.names()}
    chosen = plan(running, config.forges, fresh, caps_of(config), offline_of(config), config.mcp)
    if chosen.at_start:
        raise CommandError(refusal(chosen.at_start))
    if found := await asyncio.to_thread(path_problems, chosen.repos_added):
        where = await asyncio.to_thread(_located, source, found)
        raise CommandError(f"{NOT_RELOADED}: " + "; ".join(where))
    return fresh, chosen


def _located(source: Path, found: list[tuple[Loc, str]]) -> list[str]:
    """``found`` as ``FILE:LINE: key.path: message``, as ``check-config`` says them."""
    root = None
    with contextlib.suppress(OSError, ConfigError):
        root, _, _ = compose(source.read_text(encoding="utf-8"), str(source))
    locate = Locator(root)
    said = []
    for loc, message in found:
        line, path, _ = locate(loc)
        said.append(str(ConfigProblem(str(source), line, path, message)))
    return said


async def _read(
    source: Path,
    environ: Mapping[str, str],
    offered: Offered,
    texts: Mapping[Path, str] | None = None,
    said: Callable[[ConfigProblem], ConfigProblem] | None = None,
) -> Config:
    """The file read and checked whole; its problems as a :class:`CommandError`, with a
    word on the environment when only variables missing from it stand in the way."""
    try:
        return await asyncio.to_thread(load_config, source, environ, offered=offered, texts=texts)
    except ConfigError as exc:
        error = exc
    unset = any(p.message.startswith("environment variable ") for p in error.problems)
    if unset:  # the same file without its credentials checked: were those the only problems?
        try:
            await asyncio.to_thread(
                load_config,
                source,
                environ,
                offered=offered,
                credentials=False,
                texts=texts,
            )
        except ConfigError:
            unset = False
    note = f"\n{ENVIRONMENT_NOTE}." if unset else ""
    if said is not None:
        error = ConfigError(said(problem) for problem in error.problems)
    raise CommandError(f"{NOT_RELOADED}: {error}{note}")

"""The launch a ``spawn`` asks for: its flags (or a ``task start``'s) read into a
:class:`~fleet.supervisor.admission.request.LaunchRequest` — the host and working
directory, the repository and what it asks of its line, the runtime, model and account,
the spend cap — with the earlier live line a ``--fresh`` leaves.

Also the records a spawn's handlers are built with, each bundling the collaborators of one
idea: :class:`Launching` (the path a launch takes) and :class:`SpawnRepos` (the
repositories it works on, and who asks in git).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from bot.commands.errors import CommandError
from bot.commands.handlers.agents.spawn.repository import RepoChoice, repo_choice
from bot.commands.handlers.agents.spawn.spend import SpawnSpend, quote_under
from bot.commands.handlers.places.hosts import host_flag as _host
from bot.commands.handlers.places.repos import CoAuthors
from bot.commands.parsing.grammar import FlagValue
from bot.commands.routing.request import Request, SpawnGate
from fleet.errors import FleetError
from fleet.hosts.schema import LOCAL_HOST
from fleet.ledger.records.lines import LineRecord
from fleet.model import PermissionMode
from fleet.repos.desk import RepoDesk
from fleet.repos.line.cutting import Asked
from fleet.supervisor.admission.admit import Admission
from fleet.supervisor.admission.request import LaunchRequest
from fleet.supervisor.interfaces import AgentControl


def _nobody(connector: str, sender: str) -> str | None:
    return None


@dataclass(frozen=True, slots=True)
class Launching:
    """The path a spawn's launch takes. ``admission``: what every ``spawn`` passes —
    budgets, fallback, deferral, the concurrency caps; nothing starts an agent around it.
    ``gate``: the spawn queue a launch waits in, and the caps a ``restart`` must fit.
    ``spend``: a spawn's cap on its run, and what a run usually costs."""

    admission: Admission
    gate: SpawnGate | None = None
    spend: SpawnSpend | None = None


@dataclass(frozen=True, slots=True)
class SpawnRepos:
    """The repositories ``spawn --repo`` works on, and who an operator is in git
    (``co_authors``), for the commits on the branches they ask for."""

    desk: RepoDesk
    co_authors: CoAuthors = _nobody


class LaunchReader:
    """Reads the launch a ``spawn`` (or ``task start``) asks for, against the agents'
    settings (``fleet``), the repositories (``repos``) and the spend caps (``spend``)."""

    def __init__(
        self, fleet: AgentControl, repos: SpawnRepos | None, spend: SpawnSpend | None
    ) -> None:
        self._fleet = fleet
        self._repos = repos
        self._spend = spend

    async def read(
        self, req: Request, name: str, flags: Mapping[str, FlagValue]
    ) -> tuple[LaunchRequest, LineRecord | None]:
        """The launch of agent ``name`` that ``req`` asks for with ``flags`` (``spawn``'s,
        as typed, or those a ``task start`` gives: the task's prompt and repository), and
        the earlier live line a ``--fresh`` leaves. Whether the agent is free for it (a
        forge issue's, or running under a ``--fresh``) is the admission's to say."""
        host = _host(flags.get("host"))
        workdir = _workdir(flags.get("workdir"), here=host in (None, LOCAL_HOST))
        own = await self._own_repo(name, flags, host)
        desk = self._repos.desk if self._repos is not None else None
        choice = repo_choice(desk, flags, workdir=workdir, own=own)
        runtime, model = _opt_str(flags.get("runtime")), _opt_str(flags.get("model"))
        account = _opt_str(flags.get("account"))
        spend = self._spend
        cap = await spend.cap(name, flags, runtime, model) if spend is not None else None
        limit = quote_under(flags)
        chosen = own if workdir is None else None
        earlier, asked = await self._ready_repo(req, name, choice, chosen)
        scheduled = req.source.startswith("schedule:")
        request = LaunchRequest(
            name,
            origin="schedule" if scheduled else "chat",
            by=req.who,
            runtime=runtime,
            model=model,
            account=account,
            prompt=_opt_str(flags.get("prompt")),
            workdir=workdir,
            permissions=_mode(flags.get("permissions")),
            run_budget=cap,
            host=host,
            repo=choice.repo,
            repo_base=choice.base,
            fresh=asked is not None and asked.fresh,
            co_author=asked.co_author if asked is not None else None,
            urgent=bool(flags.get("urgent")),
            quote_under=limit,
            new=bool(flags.get("new")),
        )
        return request, earlier

    async def _own_repo(
        self, name: str, flags: Mapping[str, FlagValue], host: str | None
    ) -> str | None:
        """The repository ``name``'s own settings name, where ``spawn`` needs it."""
        if flags.get("repo") is not None or (self._repos is None and host in (None, LOCAL_HOST)):
            return None
        try:
            return (await self._fleet.spec(name)).repo
        except FleetError:  # not known yet, or no agent name: spawn says so
            return None

    async def _ready_repo(
        self, req: Request, name: str, choice: RepoChoice, own: str | None
    ) -> tuple[LineRecord | None, Asked | None]:
        """Before a launch on a repository: what it asks of its line — a new branch
        (``--fresh``) naming who asked for it (``Co-authored-by:``) — and the earlier live
        line a ``--fresh`` leaves as it was, if any; a running agent's is refused (its run
        still writes it, and a spawn would not start a second run)."""
        repos = self._repos
        if repos is None or (choice.repo or own) is None:
            return None, None
        earlier = await repos.desk.line_of(name) if choice.fresh else None
        who = repos.co_authors(req.message.connector, req.message.sender)
        return earlier, Asked(co_author=who, fresh=choice.fresh)


def _opt_str(value: str | int | bool | None) -> str | None:
    return value if isinstance(value, str) else None


def _mode(value: str | int | bool | None) -> PermissionMode | None:
    """``--permissions``: the grammar has checked it is one of the modes."""
    return PermissionMode(value) if isinstance(value, str) else None


def _workdir(value: str | int | bool | None, *, here: bool = True) -> Path | None:
    """``--workdir``: absolute; on this machine (``here``), an existing directory (another
    host's is made there at launch)."""
    if not isinstance(value, str):
        return None
    path = Path(value).expanduser() if here else Path(value)
    if not path.is_absolute():
        raise CommandError(f"--workdir must be an absolute path, got {value!r}")
    if here and not path.is_dir():
        raise CommandError(f"--workdir {value!r} is not an existing directory — create it first")
    return path

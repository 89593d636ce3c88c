"""``spawn``'s launch request, built from what chat asked: the agent's flags as typed
(:meth:`SpawnRequests.launch_request`), or a task's request — built by the register,
:func:`fleet.tasks.asked.task_request` — readied for its asker (:meth:`SpawnRequests.readied`):
its repository checked, its line asked for with who its commits credit."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path

from bot.commands.errors import CommandError
from bot.commands.handlers.agents.spawn.launching import SpawnRepos
from bot.commands.handlers.agents.spawn.repository import RepoChoice, repo_choice
from bot.commands.handlers.agents.spawn.spend import SpawnSpend, quote_under
from bot.commands.handlers.places.hosts import host_flag as _host
from bot.commands.parsing.grammar import FlagValue
from bot.commands.routing.request import Request
from fleet.errors import FleetError
from fleet.hosts.schema import LOCAL_HOST
from fleet.ledger.records.lines import LineRecord
from fleet.model import PermissionMode
from fleet.repos.line.cutting import Asked
from fleet.supervisor.admission.request import LaunchRequest
from fleet.supervisor.interfaces import AgentControl


class SpawnRequests:
    """Builds the launch requests chat asks for. ``repos``: the repositories and who an
    operator is in git (``None``: none configured); ``spend``: a run's cap."""

    def __init__(
        self, *, fleet: AgentControl, repos: SpawnRepos | None, spend: SpawnSpend | None
    ) -> None:
        self._fleet = fleet
        self._repos = None if repos is None else repos.desk
        self._co_authors = None if repos is None else repos.co_authors
        self._spend = spend

    async def launch_request(
        self, req: Request, name: str, flags: Mapping[str, FlagValue]
    ) -> tuple[LaunchRequest, LineRecord | None]:
        """The launch of agent ``name`` that ``req`` asks for with ``flags`` (``spawn``'s,
        as typed), and
        the earlier live line a ``--fresh`` leaves. Whether the agent is free for it (a
        forge issue's, or running under a ``--fresh``) is the admission's to say."""
        host = _host(flags.get("host"))
        workdir = _workdir(flags.get("workdir"), here=host in (None, LOCAL_HOST))
        own = await self._own_repo(name, flags, host)
        choice = repo_choice(self._repos, flags, workdir=workdir, own=own)
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

    async def readied(
        self, req: Request, request: LaunchRequest
    ) -> tuple[LaunchRequest, LineRecord | None]:
        """``request`` (a task's, :func:`fleet.tasks.asked.task_request`) ready to launch
        for ``req``'s sender, as ``spawn --repo`` readies its own: its repository one the
        config has, and its line asked for with who its commits credit; and the earlier live
        line a ``--fresh`` leaves (a task's launch asks for none)."""
        flags: dict[str, FlagValue] = {} if request.repo is None else {"repo": request.repo}
        own = await self._own_repo(request.agent, flags, request.host)
        choice = repo_choice(self._repos, flags, workdir=request.workdir, own=own)
        chosen = own if request.workdir is None else None
        earlier, asked = await self._ready_repo(req, request.agent, choice, chosen)
        readied = replace(
            request,
            repo=choice.repo,
            repo_base=choice.base,
            fresh=asked is not None and asked.fresh,
            co_author=asked.co_author if asked is not None else None,
        )
        return readied, earlier

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
        earlier = await repos.line_of(name) if choice.fresh else None
        who = None
        if self._co_authors is not None:
            who = self._co_authors(req.message.connector, req.message.sender)
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

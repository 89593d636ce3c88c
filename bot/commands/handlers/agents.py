"""Command handlers: one coroutine per command, each returning markdown.

Handlers validate what the grammar cannot (paths, names) and call the fleet; the
renderers in :mod:`bot.render.fleet` shape the answer. Errors are raised, not rendered:
the router turns them into one-line replies and audit outcomes.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from pathlib import Path

from bot.chat.agent_text import said
from bot.commands.errors import CommandError
from bot.commands.family import Family, command
from bot.commands.grammar import CommandSpec, FlagValue
from bot.commands.handlers.accounts import ACCOUNTS, AccountCommands
from bot.commands.handlers.budgets import BUDGET, BUDGET_ALLOW_BURST, BUDGET_SET, BudgetHandlers
from bot.commands.handlers.repos import CoAuthors
from bot.commands.handlers.spawn.repository import RepoChoice, repo_choice
from bot.commands.handlers.spawn.spend import SpawnSpend
from bot.commands.handlers.watch_follow import agent_view
from bot.commands.help import help_text
from bot.commands.request import (
    Follower,
    Reply,
    Request,
    RosterReloader,
    SpawnGate,
)
from bot.commands.specs import (
    HELP,
    PACE,
    PS,
    REPORT,
    RESTART,
    ROSTER,
    ROSTER_RELOAD,
    SEND,
    SPAWN,
    USAGE,
    WATCH,
    WHOAMI,
)
from bot.render import fleet as render
from bot.render import forge as render_forge
from bot.render import runs as render_runs
from bot.render.report import NO_BUDGETS, compose, render_text
from fleet.accounts.book import AccountBook
from fleet.budgets.model import BudgetBook
from fleet.budgets.report_windows import DEFAULT_WINDOW
from fleet.clock import Clock
from fleet.errors import AgentNotRunning, FleetError
from fleet.forge.facts import ForgeRunRecord, ForgeRuns, ForgeRunState
from fleet.hosts.schema import ANY_HOST, LOCAL_HOST, is_host_name
from fleet.model import PermissionMode
from fleet.repos.desk import RepoDesk
from fleet.repos.facts import LineRecord
from fleet.repos.line.cutting import Asked
from fleet.repos.schema import ref_problem
from fleet.supervisor.admission.admit import Admission
from fleet.supervisor.admission.request import LaunchRequest, Queued, Refused
from fleet.supervisor.interfaces import AgentControl


class Handlers(Family):
    """The commands of the fleet, bound to one :class:`~fleet.supervisor.fleet.Fleet`."""

    def __init__(
        self,
        *,
        fleet: AgentControl,
        specs: Sequence[CommandSpec],
        clock: Clock,
        prefix: str,
        reload_roster: RosterReloader | None = None,
        follow_screen: Follower | None = None,
        budgets: BudgetBook | None = None,
        reports_dir: Path | None = None,
        admission: Admission | None = None,
        accounts: AccountBook | None = None,
        gate: SpawnGate | None = None,
        spend: SpawnSpend | None = None,
        problems: Callable[[], list[str]] = list,
        repos: RepoDesk | None = None,
        co_authors: CoAuthors | None = None,
        forge_runs: ForgeRuns | None = None,
    ) -> None:
        """``budgets``: where ``budget``, ``pace`` and ``report`` read budgets and
        ``budget set``/``allow-burst`` change them (``None``: none are configured).
        ``reports_dir``: where ``report`` keeps its charts (``None``: the report is text
        only). ``admission``: what every ``spawn`` passes — budgets, fallback, deferral, the
        concurrency caps (``None``: the budgets alone). ``gate``: the spawn queue a launch
        waits in, and the caps a ``restart`` must fit. ``spend``:
        a spawn's cap on its run, and what a run usually costs. ``problems``: what is wrong
        beyond the agents (a chat receive path that keeps failing), shown by ``ps``.
        ``repos``: the repositories ``spawn --repo`` works on (``None``: none configured);
        ``co_authors``: who an operator is in git, for the commits on the branches they ask
        for. ``forge_runs``: the live forge runs (of an agent), whose links ``ps`` shows."""
        self._fleet = fleet
        self._forge_runs = forge_runs
        self._repos = repos
        self._co_authors: CoAuthors = co_authors or (lambda _connector, _sender: None)
        self._problems = problems
        self._stories = fleet.outputs.stories
        self._admission = admission or Admission(fleet=fleet, slots=None, budgets=budgets)
        self._gate = gate
        self._spend = spend
        self._specs = specs
        self._clock = clock
        self._prefix = prefix
        self._reload_roster = reload_roster
        self._follow_screen = follow_screen
        self._budgets = budgets
        self._budget_commands = BudgetHandlers(budgets)
        self._reports_dir = reports_dir
        self._account_commands = AccountCommands(accounts)

    @command(HELP)
    async def help(self, req: Request) -> str:
        return help_text(self._specs, req.command.args.get("COMMAND"), prefix=self._prefix)

    @command(PS)
    async def ps(self, req: Request) -> str:
        statuses = await self._fleet.ps()
        if self._budgets is not None:
            book = self._budgets
            statuses = [replace(s, queued_until=book.queued_until(s.name)) for s in statuses]
        text = render.ps(statuses, self._clock.now(), await self._fleet.drift())
        text += render.problems(self._problems())
        if self._forge_runs is not None and (forged := await self._forge_runs(None)):
            rows = [f"- **{r.agent}** ({r.state}): {render_forge.links(r)}" for r in forged]
            text += "\n\nForge runs:\n" + "\n".join(rows)
        waiting = len(await self._gate.entries()) if self._gate is not None else 0
        if waiting:
            text += f"\n\n{waiting} launch{'es' if waiting > 1 else ''} queued: `queue` lists why."
        return text

    @command(SPAWN)
    async def spawn(self, req: Request) -> Reply:
        await self._not_on_an_issue(req.arg("NAME"))
        flags = req.command.flags
        host = _host(flags.get("host"))
        workdir = _workdir(flags.get("workdir"), here=host in (None, LOCAL_HOST))
        own = await self._own_repo(req.arg("NAME"), flags, host)
        choice = repo_choice(self._repos, flags, workdir=workdir, own=own)
        runtime, model = _opt_str(flags.get("runtime")), _opt_str(flags.get("model"))
        account = _opt_str(flags.get("account"))
        spend, name = self._spend, req.arg("NAME")
        cap = await spend.cap(name, flags, runtime, model) if spend is not None else None
        earlier, asked = await self._ready_repo(req, choice, own if workdir is None else None)
        request = LaunchRequest(
            name,
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
        )
        gate = self._gate
        admitted = await self._admission.admit(request, gate.waiter(req) if gate else None)
        if isinstance(admitted, Refused):
            raise CommandError(f"not started: {admitted.why}")
        if isinstance(admitted, Queued):
            assert gate is not None  # a chat spawn waits only in the queue
            return Reply(await gate.said(name, admitted))
        outcome, note = admitted.outcome, admitted.fallback
        note = f"\n\n{note}" if note else ""
        ended = outcome.ended
        if ended is not None and ended.end is not None and ended.end.outcome != "finished":
            story = await self._stories.story(ended.run.id)
            if story is not None:  # it failed at once: why, in one line
                line = render_runs.ended_at_once(story, self._clock.now())
                return Reply(line + note, topic=outcome.status.name, new_thread=True)
        text = render.spawned(outcome.status, outcome.started, outcome.pid)
        if earlier is not None and outcome.started:
            text += "\n\n" + _left_live(earlier.branch)
        if spend is not None and outcome.started:
            text += "\n\n" + await spend.answer(name)
        # A fresh run gets a thread of its own; "already running" points to the one it has.
        return Reply(text + note, topic=outcome.status.name, new_thread=outcome.started)

    async def _not_on_an_issue(self, name: str) -> None:
        """A chat run (or restart) of an agent working on a forge issue would take over its
        branch and its session."""
        record = await self._on_an_issue(name)
        if record is None:
            return
        where = f"{name} works on {render_forge.links(record)} ({record.state})"
        if await self._is_live(name):
            raise CommandError(
                f"{where}: `send {name} TEXT` continues that session; it ends when its pull "
                "request closes"
            )
        raise CommandError(f"{where}, and is not running now: {_goes_on(record)}")

    async def _on_an_issue(self, name: str) -> ForgeRunRecord | None:
        """The forge run ``name`` works on (on its branch already), if any."""
        if self._forge_runs is None:
            return None
        for record in await self._forge_runs(name):
            if ForgeRunState(record.state) is not ForgeRunState.QUEUED:  # not on its branch yet
                return record
        return None

    async def _is_live(self, name: str) -> bool:
        try:
            return (await self._fleet.status(name)).state.is_live
        except FleetError:  # not known
            return False

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
        self, req: Request, choice: RepoChoice, own: str | None
    ) -> tuple[LineRecord | None, Asked | None]:
        """Before a launch on a repository: what it asks of its line — a new branch
        (``--fresh``) naming who asked for it (``Co-authored-by:``) — and the earlier live
        line a ``--fresh`` leaves as it was, if any; a running agent's is refused (its run
        still writes it, and a spawn would not start a second run)."""
        repos, name = self._repos, req.arg("NAME")
        if repos is None or (choice.repo or own) is None:
            return None, None
        earlier = None
        if choice.fresh:
            earlier = await repos.line_of(name)
            if await self._is_live(name):
                on = f" on its branch {said(earlier.branch, 80)}" if earlier is not None else ""
                raise CommandError(
                    f"{name} is running{on}: `stop {name}` first, then `spawn {name} --fresh` "
                    "cuts a new one"
                )
        who = self._co_authors(req.message.connector, req.message.sender)
        return earlier, Asked(co_author=who, fresh=choice.fresh)

    async def stop(self, req: Request) -> Reply:
        """The ordinary ``stop NAME``: ``stop`` is bound in
        :class:`~bot.commands.handlers.levers.Levers`, which hands every stop but ``stop all``
        to this."""
        name = req.arg("NAME")
        info = await self._fleet.stop_agent(
            name, force=bool(req.command.flags.get("force")), by=req.who
        )
        line = f"Stopped by {req.message.sender} ({said(info.reason, render.WHY_CAP)})."
        return Reply(render.stopped(name, info), topic=name, thread_line=line)

    @command(RESTART)
    async def restart(self, req: Request) -> Reply:
        name, gate = req.arg("NAME"), self._gate
        await self._not_on_an_issue(name)  # its forge run's session and branch are the issue's
        why = await gate.hold(name) if gate is not None else None
        if why is not None:
            raise CommandError(f"not restarted: {why} — `spawn {name}` waits for a slot")
        try:
            status = await self._fleet.restart(name, by=req.who)
            line = f"Restarted by {req.message.sender}, now pid {status.pid}."
            return Reply(render.restarted(status), topic=name, thread_line=line)
        finally:
            if gate is not None:
                gate.release(name)

    @command(SEND)
    async def send(self, req: Request) -> Reply:
        name, text = req.arg("NAME"), req.arg("TEXT")
        if not text.strip():
            raise CommandError(f"nothing to send — usage: send {name} TEXT")
        try:
            ended = await self._fleet.send(name, text, by=req.who)
        except AgentNotRunning as exc:  # "spawn it first": not for an agent on an issue
            record = await self._on_an_issue(name)
            if record is None:
                raise
            raise CommandError(
                f"{name} has no live session to send to, and works on "
                f"{render_forge.links(record)} ({record.state}): {_goes_on(record)}"
            ) from exc
        if ended is not None and ended.end is not None and ended.end.outcome != "finished":
            story = await self._stories.story(ended.run.id)
            if story is not None:  # its follow-up failed at once: why, in one line
                return Reply(render_runs.ended_at_once(story, self._clock.now()), topic=name)
        return Reply(render.sent(name), topic=name)

    @command(WATCH)
    async def watch(self, req: Request) -> Reply:
        name = req.arg("NAME")
        view = await agent_view(self._fleet, name)
        if req.command.flags.get("follow") and self._follow_screen is not None:
            self._follow_screen(req.message, name, view)
        return Reply(view, topic=name, open_thread=True)

    @command(USAGE)
    async def usage(self, req: Request) -> str:
        name = req.command.args.get("NAME")
        window = req.command.str_flag("window") or DEFAULT_WINDOW
        since = self._fleet.window_start(window)
        host = _host(req.command.str_flag("host"))
        totals = await self._fleet.usage(since, agent=name, host=host)
        known = name is None or bool(totals) or await self._fleet.knows(name)
        text = render.usage(totals, window=window, since=since, agent=name, known=known)
        return text if host is None else f"On host **{host}**:\n\n{text}"

    @command(PACE)
    async def pace(self, req: Request) -> str:
        book = self._budgets
        if book is None:
            return NO_BUDGETS
        return render_text(await book.statuses(), book.now(), book.timezone)

    @command(REPORT)
    async def report(self, req: Request) -> Reply:
        if self._budgets is None:
            return Reply(NO_BUDGETS)
        report = await compose(self._budgets, self._reports_dir, self._account_commands.text())
        return Reply(report.markdown, images=report.images)

    @command(ROSTER)
    async def roster(self, req: Request) -> str:
        return render.roster(self._fleet.roster())

    @command(ROSTER_RELOAD, under=ROSTER)
    async def roster_reload(self, req: Request) -> str:
        if self._reload_roster is None:
            raise CommandError(
                "there is no config file to reload: Fleetwarden runs on its defaults"
            )
        return render.roster_diff(await self._reload_roster())

    @command(WHOAMI)
    async def whoami(self, req: Request) -> str:
        return render.whoami(req.message.sender, req.role.value, req.message.connector)

    # The budget and account commands are answered by their own classes.

    @command(BUDGET)
    async def budget(self, req: Request) -> str:
        return await self._budget_commands.budget(req)

    @command(BUDGET_SET, under=BUDGET)
    async def budget_set(self, req: Request) -> str:
        return await self._budget_commands.budget_set(req)

    @command(BUDGET_ALLOW_BURST, under=BUDGET)
    async def budget_allow_burst(self, req: Request) -> str:
        return await self._budget_commands.budget_allow_burst(req)

    @command(ACCOUNTS)
    async def accounts(self, req: Request) -> str:
        return await self._account_commands.accounts(req)


def _goes_on(record: ForgeRunRecord) -> str:
    """What gives an agent working on a forge issue its next run once its session ended."""
    where = "its pull request" if record.pull is not None else "the issue"
    return (
        f"a review or comment on {where} starts its next run on its branch; it ends when "
        "its pull request closes"
    )


def _left_live(branch: str) -> str:
    """What ``spawn --fresh`` says of the agent's earlier branch, which it leaves as it was."""
    if ref_problem(branch) is not None:  # not one of Fleetwarden's names: no command shown
        return f"Its earlier branch {said(branch, 80)} stays as it was: `branches` lists it."
    return (
        f"Its earlier branch {said(branch, 80)} stays as it was: name it by its branch — "
        f"`diff {branch}`, `push {branch}`, `merge {branch}` or `discard {branch}`."
    )


def _opt_str(value: str | int | bool | None) -> str | None:
    return value if isinstance(value, str) else None


def _mode(value: str | int | bool | None) -> PermissionMode | None:
    """``--permissions``: the grammar has checked it is one of the modes."""
    return PermissionMode(value) if isinstance(value, str) else None


def _host(value: object) -> str | None:
    if value is None:
        return None
    text = str(value)
    if text not in (LOCAL_HOST, ANY_HOST) and not is_host_name(text):
        raise CommandError(f"--host {text!r} is no host name: `hosts` lists them")
    return text


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

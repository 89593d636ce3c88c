"""The commands that show the fleet as a whole: ``help``, ``ps``, ``roster`` (and ``roster
reload``, ``roster add|set|remove``) and ``whoami``.

``ps`` lists every agent with its state, what is wrong beyond the agents (a chat receive
path that keeps failing), the live forge runs and how many launches the queue holds; with
the app's :class:`Standing`, it first says the build, ``enforce: strict`` when it is on and
any connector whose link is down (its data: the build, ``enforce`` and every connector's
link, as the dashboard's ``/api/fleet`` has them).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, replace

from bot.build import Build
from bot.commands.errors import CommandError
from bot.commands.family import Family, command
from bot.commands.handlers.agents.roster_specs import (
    ADD_KEYS,
    ROSTER_ADD,
    ROSTER_REMOVE,
    ROSTER_SET,
    TYPED_KEYS,
)
from bot.commands.help import help_text
from bot.commands.parsing.grammar import CommandSpec
from bot.commands.routing.request import Reply, Request, RosterReloader, SpawnGate
from bot.commands.specs import HELP, PS, ROSTER, ROSTER_RELOAD, WHOAMI
from bot.config.roster.edit import (
    AGENT_KEYS,
    NOT_CHANGED,
    AddAgent,
    RemoveAgent,
    RosterEdit,
    SetKeys,
)
from bot.config.roster.pairs import PairsError, key_values
from bot.dashboard.pages.shapes import Redacted, link_json
from bot.render import fleet as render
from bot.render import forge as render_forge
from bot.render import machine
from connectors.health import HealthReport
from fleet.budgets.model import BudgetBook
from fleet.supervisor.admission.owners import ForgeRuns
from fleet.supervisor.fleet import RosterDiff
from fleet.supervisor.interfaces import AgentControl
from fleet.timing.clock import Clock

RosterEditor = Callable[[RosterEdit], Awaitable[RosterDiff]]


@dataclass(frozen=True, slots=True)
class RosterFile:
    """The roster's file, as ``roster reload`` and ``roster add|set|remove`` change it:
    ``reload`` reads it again, ``edit`` writes an edit into it (both then applied)."""

    reload: RosterReloader
    edit: RosterEditor


@dataclass(frozen=True, slots=True)
class Standing:
    """What ``ps`` says of the app beyond its agents: what is wrong beyond them (a chat
    receive path that keeps failing); the build it runs (``None``: ``ps`` says no build,
    ``enforce`` or connectors), the config's ``enforce`` (``strict`` or ``warn``), each
    running connector's link to its service, and the redactor its last errors pass (what
    chat never shows, ``ps`` does not either)."""

    problems: Callable[[], list[str]] = list
    build: Build | None = None
    enforce: str = "warn"
    links: Callable[[], Sequence[HealthReport]] = tuple
    redact: Callable[[str], str] = str


def standing_line(build: Build, enforce: str, links: Sequence[HealthReport]) -> str:
    """``ps``'s first line: the build, ``enforce: strict`` when on, each connector down."""
    said = [f"Fleetwarden {build.words}"]
    if enforce == "strict":
        said.append("enforce: strict")
    said += [f"{r.connector} {'logged out' if r.connected else 'DOWN'}" for r in links if not r.up]
    return "; ".join(said)


class OverviewCommands(Family):
    """``help``, ``ps``, ``roster``, ``roster reload`` and ``whoami`` over one fleet."""

    def __init__(
        self,
        *,
        fleet: AgentControl,
        specs: Sequence[CommandSpec],
        clock: Clock,
        prefix: str,
        roster: RosterFile | None = None,
        budgets: BudgetBook | None = None,
        gate: SpawnGate | None = None,
        forge_runs: ForgeRuns | None = None,
        standing: Standing | None = None,
    ) -> None:
        """``specs`` and ``prefix``: the command table and the prefix ``help`` shows.
        ``roster``: what ``roster reload`` and ``roster add|set|remove`` change (``None``:
        Fleetwarden runs without a config file). ``budgets``: when an agent held by a
        queued budget may run again, shown by ``ps`` (``None``: none are configured).
        ``gate``: the spawn queue, whose length ``ps`` says. ``forge_runs``: the live forge
        runs, whose links ``ps`` shows. ``standing``: what is wrong beyond the agents, the
        build, ``enforce`` and the connectors ``ps`` says."""
        self._fleet = fleet
        self._specs = specs
        self._clock = clock
        self._prefix = prefix
        self._roster = roster
        self._budgets = budgets
        self._gate = gate
        self._forge_runs = forge_runs
        self._standing = standing or Standing()
        self._redacted = Redacted(self._standing.redact)

    @command(HELP)
    async def help(self, req: Request) -> str:
        # `help` typed without the prefix (the console) is told the form it typed
        typed = self._prefix if req.message.text.lstrip().startswith(self._prefix) else ""
        return help_text(
            self._specs, req.command.args.get("COMMAND"), prefix=self._prefix, typed=typed
        )

    @command(PS)
    async def ps(self, req: Request) -> Reply:
        statuses = await self._fleet.ps()
        if self._budgets is not None:
            book = self._budgets
            # Only the few agents a budget holds are built again.
            held = {s.name: until for s in statuses if (until := book.queued_until(s.name))}
            statuses = [
                replace(s, queued_until=held[s.name]) if s.name in held else s for s in statuses
            ]
        text = render.ps(statuses, self._clock.now(), await self._fleet.drift())
        problems = self._standing.problems()
        text += render.problems(problems)
        if self._forge_runs is not None and (forged := await self._forge_runs(None)):
            rows = [f"- **{r.agent}** ({r.state}): {render_forge.links(r)}" for r in forged]
            text += "\n\nForge runs:\n" + "\n".join(rows)
        waiting = len(await self._gate.entries()) if self._gate is not None else 0
        if waiting:
            text += f"\n\n{waiting} launch{'es' if waiting > 1 else ''} queued: `queue` lists why."
        data = machine.ps(statuses, waiting, problems)
        if (build := self._standing.build) is not None:
            standing, links = self._standing, self._standing.links()
            text = f"{standing_line(build, standing.enforce, links)}\n\n{text}"
            data |= {
                "build": build.as_json(),
                "enforce": standing.enforce,
                "connectors": [link_json(r, self._redacted.line) for r in links],
            }
        return Reply(text, data=data)

    @command(ROSTER)
    async def roster(self, req: Request) -> str:
        return render.roster(self._fleet.roster())

    @command(ROSTER_RELOAD, under=ROSTER)
    async def roster_reload(self, req: Request) -> str:
        if self._roster is None:
            raise CommandError(
                "there is no config file to reload: Fleetwarden runs on its defaults"
            )
        return render.roster_diff(await self._roster.reload())

    @command(ROSTER_ADD, under=ROSTER)
    async def roster_add(self, req: Request) -> str:
        cmd = req.command
        keys: dict[str, object] = {}
        for key, _ in ADD_KEYS:
            if (value := cmd.str_flag(key)) is not None:
                keys[key] = value
        if "runtime" not in keys:
            raise CommandError(
                f"`roster add` needs the agent's runtime: `roster add {cmd.args['NAME']} "
                "--runtime R` (e.g. `claude`, `codex`, `stub`)"
            )
        if cmd.bool_flag("autostart"):
            keys["autostart"] = True
        typed = {key: value for key in TYPED_KEYS if (value := cmd.str_flag(key)) is not None}
        return await self._edited(AddAgent(cmd.args["NAME"], keys, typed))

    @command(ROSTER_SET, under=ROSTER)
    async def roster_set(self, req: Request) -> str:
        args = req.command.args
        try:
            pairs = key_values(args["KEY"], args["VALUE"], AGENT_KEYS)
        except PairsError as exc:
            raise CommandError(f"{NOT_CHANGED}: {exc}") from None
        return await self._edited(SetKeys(args["NAME"], pairs))

    @command(ROSTER_REMOVE, under=ROSTER)
    async def roster_remove(self, req: Request) -> str:
        return await self._edited(RemoveAgent(req.command.args["NAME"]))

    async def _edited(self, edit: RosterEdit) -> str:
        if self._roster is None:
            raise CommandError(
                "there is no roster file to write: Fleetwarden runs on its defaults; start it "
                "with `--config FILE`"
            )
        return "Roster file updated. " + render.roster_diff(await self._roster.edit(edit))

    @command(WHOAMI)
    async def whoami(self, req: Request) -> str:
        return render.whoami(req.message.sender, req.role.value, req.message.connector)

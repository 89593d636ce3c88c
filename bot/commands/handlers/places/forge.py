"""The forge commands: ``forge [list]`` lists the issues given to agents and where each
is (its pull request, its state), and ``pr NAME [--draft]`` opens the pull request of an
agent's forge run from its branch, the person who gave it the issue asked to review.

Each asks the parts of forge work (:class:`fleet.forge.runs.work.ForgeWork`) it uses
(:class:`ForgeParts`), there when the config has a ``forges:`` section; without one, each
says how to add it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

from bot.commands.errors import CommandError, NotFound
from bot.commands.family import Family, command
from bot.commands.handlers.places.repos import link
from bot.commands.handlers.places.specs import FORGE, PR
from bot.commands.parsing.grammar import no_agent
from bot.commands.routing.request import Reply, Request
from bot.render import forge as render
from bot.text.agent_text import said
from fleet.errors import FleetwardenError
from fleet.forge.events.holds import ForgeHolds
from fleet.forge.launcher import ForgeLauncher
from fleet.forge.posts.publish import Publisher
from fleet.forge.posts.unpublished import LineEnded, why_unpublished
from fleet.forge.runs.desk import IssueLock
from fleet.forge.runs.merging import PullMerges
from fleet.forge.schema import ForgeEntry
from fleet.ledger.records.forge import ForgeRunRecord, ForgeRunState
from fleet.ledger.records.lines import LineState
from fleet.ledger.stores.code.forge import ForgeStore
from fleet.names import is_agent_name
from fleet.repos.line.no_branch import PullEnd, run_pull_end
from fleet.timing.clock import Clock

NO_FORGES: Final = (
    "no forges are configured: add `forges:` to the config and `forge: NAME` to a "
    "repository (see docs/forges.md)"
)


@dataclass(frozen=True, slots=True)
class ForgeParts:
    """What the forge commands use of forge work: the forges' settings, the ledger's forge
    runs, what posts on the forges, what runs an agent's work on the fleet, the forges held
    at start, and the lock of each issue."""

    forges: Mapping[str, ForgeEntry]
    forge: ForgeStore
    publisher: Publisher
    launcher: ForgeLauncher
    holds: ForgeHolds
    lock: IssueLock
    pulls: PullMerges | None = None  # the merges ``merge`` asks of a forge


class ForgeCommands(Family):
    """``forge`` and ``pr`` over forge work."""

    def __init__(self, parts: ForgeParts | None, clock: Clock) -> None:
        """``parts``: forge work's (``None`` without forges)."""
        self._forge = parts
        self._clock = clock

    def _parts(self) -> ForgeParts:
        parts = self._forge
        if parts is None:
            raise CommandError(NO_FORGES)
        return parts

    @command(FORGE)
    async def forge(self, req: Request) -> str:
        parts = self._parts()
        what = (req.command.args.get("WHAT") or "list").lower()
        if what not in ("list", "all"):
            raise CommandError(f"`forge {said(what, 20)}`: say `forge list` or `forge all`")
        runs = await parts.forge.forge_runs(live=what == "list")
        not_opened = {}
        for run in runs:
            if run.state == ForgeRunState.UNPUBLISHED.value:
                why = await parts.publisher.not_opened_why(run, detail=True)
                if why is not None:
                    not_opened[run.id] = why
        ended = 0
        if what == "list" and not runs:
            ended = len(await parts.forge.forge_runs(live=False))
        return render.forge_list(
            runs, self._clock.now(), held=parts.holds.held, not_opened=not_opened, ended=ended
        )

    @command(PR)
    async def pr(self, req: Request) -> Reply:
        parts, name = self._parts(), req.arg("NAME")
        if not is_agent_name(name):
            raise CommandError(f"{said(name, 40)} is no agent name")
        record = await parts.forge.agent_forge_run(name)
        if record is None:
            agents = list(await parts.launcher.agents())
            if name not in agents:
                raise no_agent(name, agents)
            raise NotFound(await _no_run(parts.forge, parts.launcher, name))
        entry = parts.forges[record.forge]
        draft = bool(req.command.flags.get("draft")) or entry.draft
        try:
            async with parts.lock(record.forge, record.slug, record.issue):
                fresh = await parts.forge.forge_run(record.id) or record
                pull = await parts.publisher.open_now(fresh, draft=draft)
        except LineEnded as exc:  # never to be opened: an unpublished run ended with it
            unpublished = record.state == ForgeRunState.UNPUBLISHED.value
            ended = " (its run has ended)" if unpublished else ""
            gone = f"no pull request for {name}: {said(str(exc), 300)}{ended}"
            raise CommandError(gone) from None
        except FleetwardenError as exc:  # the forge's refusal, or the branch's push
            why = why_unpublished(
                exc, forge=record.forge, entry=entry, slug=str(record.slug), branch=record.branch
            )
            raise CommandError(f"no pull request for {name}: {said(why.detail, 500)}") from None
        where = link(pull.url)
        return Reply(
            f"**{name}**'s pull request #{pull.number} on {record.slug}: {where}",
            topic=name,
            thread_line=f"Pull request #{pull.number} opened by {req.message.sender}: {where}",
            detail=f"opened PR #{pull.number} of {record.slug} from {record.branch}",
        )


async def _no_run(forge: ForgeStore, launcher: ForgeLauncher, name: str) -> str:
    """Why ``pr NAME`` has nothing to open for ``name``, which works on no issue now."""
    runs = await forge.forge_runs(live=False, agent=name, limit=1)
    last = runs[-1] if runs else None
    end = await run_pull_end(forge, last) if last is not None else None
    line = await launcher.line(name)
    has_branch = line is not None and line.state is LineState.LIVE
    return no_run_words(name, last, end, has_branch=has_branch)


def no_run_words(
    name: str, last: ForgeRunRecord | None, end: PullEnd | None, *, has_branch: bool
) -> str:
    """Why there is no pull request to open for ``name`` (``last``: its newest forge run,
    ended; ``end``: how that run's pull request ended) and what gives it one."""
    label = f"label an issue `fleetwarden:{name}` to give it new work"
    if last is not None:
        issue = f"issue #{last.issue} of {last.slug}"
        if end is not None:
            how = f"ended when its pull request #{end.number} was {end.how}"
        elif last.state == ForgeRunState.STOPPED.value:
            how = "was stopped (its issue unassigned or unlabelled)"
        else:
            how = "has ended"
        return f"{name}'s forge run on {issue} {how}: there is nothing to open. To go on, {label}."
    if has_branch:
        return (
            f"{name} works on no issue from a forge, so there is no pull request to open: "
            f"`push {name}` pushes its branch, or {label}"
        )
    return f"{name} works on no issue from a forge and has no branch: {label}"

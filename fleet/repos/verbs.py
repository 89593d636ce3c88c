"""What operators do with runs' branches: see the diff, list the branches and the orphans,
merge a branch into its base upstream, push it, discard it — :class:`RepoVerbs`, the
:class:`fleet.repos.desk.RepoDesk` the bot's commands and pages use.

A verb acts on an agent's newest live line, or on the line given by its id (an earlier
branch ``spawn --fresh`` left live, named in chat by its branch:
:meth:`RepoVerbs.lines_named`), and only on one no run is writing (a running agent is still
writing its newest line's checkout: ``stop`` it first; :meth:`RepoVerbs.ready` says so
before anything is asked). ``merge`` fetches the base anew, lands the branch by the
strategy asked (:func:`fleet.repos.landing.strategies.land`) and pushes the base fast-forward only;
a conflict refuses with the files and changes nothing, and so does a line whose forge
run's pull request is open (the forge lands it, and its merge there ends the run), and —
``merge`` and ``push`` both — a line whose review agent approved another commit than its
tip, unless asked ``unreviewed`` (:mod:`fleet.repos.landing.approval`).
``discard`` and cleanup never take away the last copy of a commit by surprise: the command
asks first while the branch holds commits on no upstream branch
(:meth:`RepoVerbs.unpushed`).
"""

from __future__ import annotations

import asyncio
import re
import shutil
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Final

from fleet.ledger.records.forge import ForgeRunState
from fleet.ledger.records.lines import LineRecord, LineState
from fleet.model import AgentState
from fleet.repos.desk import NoLine, RepoError
from fleet.repos.facts import Change, Landed
from fleet.repos.hook.policy import Issue
from fleet.repos.landing.approval import ApprovalHold, Unapproved
from fleet.repos.landing.changes import diff_of, unpushed_count
from fleet.repos.landing.messages import TITLE_MOST, one_line
from fleet.repos.landing.strategies import LandWords, compare_url, land
from fleet.repos.line.checkouts import disk_bytes
from fleet.repos.line.identity import clean_co_author
from fleet.repos.schema import STRATEGIES, RepoEntry
from fleet.repos.service import Repos
from fleet.timing.clock import Clock, SystemClock

REFRESH_LIMIT: Final = 20.0
"""Seconds ``branches`` waits for one upstream's fetch before it says so."""
_WEB: Final = re.compile(r"https?://[^\s<>()\[\]`\"'\\|]{1,500}")
"""A pull request's address shown as a link: a plain web address, nothing that breaks out."""
_BUSY = frozenset({AgentState.STARTING, AgentState.RUNNING, AgentState.IDLE, AgentState.STALLED})


class RepoVerbs:
    """The operators' verbs on the lines of ``repos``."""

    def __init__(
        self, repos: Repos, clock: Clock | None = None, hold: ApprovalHold | None = None
    ) -> None:
        """``hold``: what keeps a line whose tip its review agent did not approve from
        landing (``None``: nothing)."""
        self.repos = repos
        self._clock = clock or SystemClock()
        self._hold = hold
        self._fetched: dict[str, datetime] = {}  # repository → when a verb last fetched it

    def names(self) -> Sequence[str]:
        return self.repos.names()

    def entry(self, repo: str) -> RepoEntry:
        return self.repos.entry(repo)

    async def line_of(self, agent: str) -> LineRecord | None:
        return await self.repos.line_of(agent)

    async def no_branch(self, agent: str) -> str:
        return await self.repos.no_branch(agent)

    async def change(self, agent: str, line_id: int | None = None) -> Change:
        return await self.repos.change_of(await self._live(agent, line_id))

    async def lines_named(self, branch: str) -> list[LineRecord]:
        """The live lines whose branch is ``branch`` (one, unless repositories share it)."""
        return [line for line in await self.repos.stores.lines.lines() if line.branch == branch]

    async def ready(self, agent: str, verb: str, line_id: int | None = None) -> LineRecord:
        """The line ``verb`` would act on, when no run is writing it now; else
        :class:`RepoError` saying what to do first. The verb checks again as it acts."""
        return await self._ended(agent, verb, line_id)

    async def diff(self, agent: str, path: str | None = None, line_id: int | None = None) -> str:
        line = await self._live(agent, line_id)
        mirror = self.repos.mirror(line.repo)
        return await diff_of(
            mirror.scratch,
            mirror.path,
            self.repos.line_repo(line),
            branch=line.branch,
            base_ref=line.base_ref,
            path=path,
        )

    async def lines(self, repo: str | None = None) -> Sequence[Change]:
        if repo is not None:
            self.repos.mirror(repo)  # an unknown name is refused, naming the known ones
        return [
            await self.repos.change_of(line)
            for line in await self.repos.stores.lines.lines(repo=repo)
            if line.checkout
        ]

    async def known_agents(self) -> Sequence[str]:
        return [record.name for record in await self.repos.stores.agents.list_agents()]

    async def refresh(self, repo: str | None = None) -> Sequence[str]:
        """Fetch the upstream of ``repo`` (or of each repository a live line is on), each
        within :data:`REFRESH_LIMIT` seconds, so that how far the bases moved is true now;
        what could not be fetched, and since when its counts stand."""
        if repo is not None:
            self.repos.mirror(repo)  # an unknown name is refused, naming the known ones
        names = sorted({line.repo for line in await self.repos.stores.lines.lines(repo=repo)})
        notes = await asyncio.gather(*(self._fetch(name) for name in names))  # side by side
        return [note for note in notes if note is not None]

    async def _fetch(self, name: str) -> str | None:
        """Fetch ``name``'s upstream within :data:`REFRESH_LIMIT` seconds; what could not
        be, and since when its counts stand (None: fetched)."""
        try:
            await asyncio.wait_for(self.repos.mirror(name).fetch(), REFRESH_LIMIT)
        except (RepoError, TimeoutError) as exc:
            why = str(exc) or f"its upstream gave no answer within {REFRESH_LIMIT:.0f} s"
            return f"{name}'s behind counts are {self._as_of(name)}. {why}"
        self._fetched[name] = self._clock.now()
        return None

    def _as_of(self, repo: str) -> str:
        at = self._fetched.get(repo)
        if at is None:
            return "as of its last fetch (by a merge, a spawn or Fleetwarden's start)"
        return f"as of its last fetch, at {at:%Y-%m-%d %H:%M} UTC"

    async def orphans(self) -> Sequence[str]:
        """Checkouts no live line has, and live lines whose checkout is gone."""
        lines = await self.repos.stores.lines.lines()
        lines = [line for line in lines if line.host == "local"]  # a host's: over its link
        known = {Path(line.checkout) for line in lines if line.checkout}
        found: list[str] = []
        for line in lines:
            if line.checkout and not await asyncio.to_thread(Path(line.checkout).is_dir):
                found.append(f"{line.branch} of {line.repo}: its checkout is gone")
        for checkout in await asyncio.to_thread(_checkouts, self.repos.checkouts):
            if checkout not in known:
                size = await disk_bytes(checkout)
                took = f" ({size // 1024:,} KiB)" if size is not None else ""
                found.append(f"{checkout.parent.name}/{checkout.name}: no live run has it{took}")
        return found

    async def unpushed(self, agent: str, line_id: int | None = None) -> int:
        line = await self._live(agent, line_id)
        mirror = self.repos.mirror(line.repo)
        return await unpushed_count(
            mirror.scratch, mirror.path, self.repos.line_repo(line), line.branch
        )

    async def merge(
        self,
        agent: str,
        strategy: str | None,
        *,
        by: str,
        co_author: str | None = None,
        line_id: int | None = None,
        unreviewed: bool = False,
    ) -> Landed:
        async with self.repos.lock(agent):
            line = await self._ended(agent, "merge", line_id)
            await self._not_under_review(line)
            if not unreviewed:
                await self._approved(line, "merge")
            entry = self.repos.entry(line.repo)
            chosen = strategy or entry.merge
            if chosen not in STRATEGIES:
                raise RepoError(f"no merge strategy {chosen!r}: use --squash, --rebase or --merge")
            mirror = self.repos.mirror(line.repo)
            await mirror.fetch()
            line_repo = self.repos.line_repo(line)
            trailers = [f"Fleetwarden-Agent: {line.agent}"]
            if line.last_run is not None:
                trailers.insert(0, f"Fleetwarden-Run: {line.last_run}")
            people = (clean_co_author(p) for p in (line.co_author, co_author))
            for person in dict.fromkeys(p for p in people if p):
                trailers.append(f"Co-authored-by: {person}")

            async def upstream(sha: str, ref: str) -> None:
                await mirror.push(sha, ref, objects=[line_repo])

            title, own = await self._work(line)
            merged_by = f"Merged by {by.lstrip('@')} with Fleetwarden: {line.branch} ({chosen})."
            landed = await land(
                mirror.scratch,
                mirror.path,
                line_repo,
                branch=line.branch,
                base_ref=line.base_ref,
                strategy=chosen,
                words=LandWords(
                    message=title,
                    trailers=tuple(trailers),
                    footer=merged_by,
                    own=own,
                ),
                upstream_push=upstream,
            )
            if landed.new_sha is not None:
                self._fetched[line.repo] = self._clock.now()
                await self.repos.stores.lines.update_line(
                    line.id,
                    state=LineState.MERGED,
                    merged_sha=landed.new_sha,
                    ended_at=None,
                )
                await self.repos.remove_checkout(line)
        return landed

    async def _not_under_review(self, line: LineRecord) -> None:
        """Refuse to land ``line`` while its forge run's pull request is open: the review
        there decides, and merging that pull request on the forge ends the run."""
        for record in await self.repos.stores.forge.forge_runs(agent=line.agent):
            over = ForgeRunState(record.state).is_over
            if record.line_id == line.id and record.pull is not None and not over:
                raise RepoError(under_review(line, record.pull, record.pull_url, str(record.slug)))

    async def _approved(self, line: LineRecord, verb: str) -> None:
        """Refuse ``verb`` of ``line`` when its tip is not the commit its review agent
        approved (:mod:`fleet.repos.landing.approval`)."""
        if self._hold is None:
            return
        tip = await self.repos.line_tip(line.id)
        why = await self._hold.why_not(line, tip, verb)
        if why is not None:
            raise Unapproved(why)

    async def approval(self, agent: str, line_id: int | None = None) -> str | None:
        """The commit the approval standing on ``agent``'s line is of, or ``None``."""
        if self._hold is None:
            return None
        approved = await self._hold.approved(await self._live(agent, line_id))
        return None if approved is None else approved.commit

    async def _work(self, line: LineRecord) -> tuple[str, tuple[Issue, ...]]:
        """What ``line``'s work is called — its forge run's title (its pull request's), else
        the prompt its agent was last spawned with (the first line of each); empty when
        neither says: the landing then names it by its one commit, or its branch — and the
        issue and pull request its forge run works on, the only ones its message may name."""
        stores = self.repos.stores
        own: tuple[Issue, ...] = ()
        for record in reversed(await stores.forge.forge_runs(live=False, agent=line.agent)):
            if record.line_id == line.id:
                slug = str(record.slug)
                own = tuple(Issue(slug, n) for n in (record.issue, record.pull) if n is not None)
                if one_line(record.title, TITLE_MOST):
                    return one_line(record.title, TITLE_MOST), own
                break
        agent = await stores.agents.get_agent(line.agent)
        return (one_line(agent.prompt or "", TITLE_MOST) if agent is not None else ""), own

    async def push(self, agent: str, line_id: int | None = None, unreviewed: bool = False) -> str:
        async with self.repos.lock(agent):
            line = await self._ended(agent, "push", line_id)
            await self.repos.push_line(line, unreviewed=unreviewed)
        return compare_url(self.repos.entry(line.repo).url, line.base_ref, line.branch)

    async def discard(self, agent: str, line_id: int | None = None) -> LineRecord:
        async with self.repos.lock(agent):
            line = await self._ended(agent, "discard", line_id)
            await self.repos.stores.lines.update_line(
                line.id, state=LineState.DISCARDED, ended_at=None
            )
            await self.repos.remove_checkout(line)  # here or on its host
            await asyncio.to_thread(shutil.rmtree, self.repos.line_repo(line), True)
        return line

    async def _live(self, agent: str, line_id: int | None) -> LineRecord:
        """Line ``line_id`` of ``agent`` while it is live; ``None``: its newest live one."""
        if line_id is None:
            return await self.repos.live(agent)
        line = await self.repos.stores.lines.line(line_id)
        if line is None or line.agent != agent or line.state is not LineState.LIVE:
            raise NoLine(f"{agent} has no such live branch now: `branches` lists them")
        return line

    async def _ended(self, agent: str, verb: str, line_id: int | None = None) -> LineRecord:
        """``agent``'s line (its newest live one, or ``line_id``), when no run of it is
        starting, running or being kept on it (called under the agent's lock, or to ask
        before acting: a launch's prepare and a run's end take the lock too). Runs work on
        the newest line: an earlier one is written by none."""
        line = await self._live(agent, line_id)
        newest = await self.repos.stores.lines.live_line(agent)
        if newest is not None and newest.id != line.id:
            return line
        record = await self.repos.stores.agents.get_agent(agent)
        state = record.state.value if record is not None else "?"
        if agent in self.repos.launching or (record is not None and record.state in _BUSY):
            raise RepoError(
                f"{agent} is {'starting' if agent in self.repos.launching else state} and "
                f"still writing {line.branch}: `stop {agent}` first, then {verb}"
            )
        return line


def under_review(line: LineRecord, pull: int, url: str | None, slug: str) -> str:
    """Why ``line`` is not merged from here: its pull request ``pull`` of ``slug`` is open
    for review; the next step."""
    where = f" (<{url}>)" if url is not None and _WEB.fullmatch(url) else ""
    return (
        f"{line.branch} of {line.repo} is the branch of {line.agent}'s pull request "
        f"#{pull} on {slug}{where}, open for review: merge (or close) it on the forge, "
        f"which ends its run. Nothing was merged."
    )


def _checkouts(root: Path) -> list[Path]:
    """Every checkout directory under ``root`` (``<repo>/<agent>-<line>``)."""
    if not root.is_dir():
        return []
    return sorted(
        child
        for repo in root.iterdir()
        if repo.is_dir() and not repo.is_symlink()
        for child in repo.iterdir()
        if child.is_dir() and not child.is_symlink()
    )

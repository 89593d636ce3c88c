"""The repositories at work: each run of an agent with a ``repo`` gets its line — a branch
and a checkout of its own — before it launches, and leaves its change on it when it ends.

:meth:`Repos.prepare` gives a launch its workdir: the agent's live line on that
repository, its checkout made again if it was lost; or, the first time (or after
``spawn --fresh``), a new line cut from the freshly fetched base — its door repo
(:mod:`fleet.repos.door.line_repo`), its checkout (:mod:`fleet.repos.line.checkouts`) with the
gitignored files the config names copied in. :meth:`Repos.finished` commits what the run
left uncommitted and brings it to the branch through the door's checks
(:mod:`fleet.repos.line.harvest`), then records the change
(:mod:`fleet.repos.landing.changes`) for the run's summary, and pushes upstream at once
when the repository says ``autopush``.

The git door (:class:`fleet.repos.door.server.GitDoor`) asks :attr:`Repos.door`
(:class:`fleet.repos.door.lines.DoorLines`) which door repo an agent's push goes to, and tells
it what the hook refused; a review agent's checkout of another line is
:attr:`Repos.reviews`'. The verbs of :class:`fleet.repos.desk.RepoDesk` are
:class:`fleet.repos.verbs.RepoVerbs`'.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path

from fleet.hosts.schema import LOCAL_HOST
from fleet.ledger.records.lines import LineRecord, LineState
from fleet.model import AgentSpec
from fleet.names import AgentName
from fleet.private_files import private_dir
from fleet.redaction.known import Secret
from fleet.repos import git as g
from fleet.repos.desk import NoLine, RepoError
from fleet.repos.door.line_repo import (
    add_run,
    line_identity,
    set_base,
    take_refusals,
    write_hooks,
)
from fleet.repos.door.lines import DoorLines
from fleet.repos.facts import Change, change_to_json
from fleet.repos.landing.approval import ApprovalHold, Unapproved
from fleet.repos.landing.changes import OtherLine, change_of
from fleet.repos.line.checkouts import NewBranch, disk_bytes, make_checkout, remove_tree, repoint
from fleet.repos.line.cutting import Asked, cut_line
from fleet.repos.line.harvest import keep_end
from fleet.repos.line.identity import clean_co_author
from fleet.repos.line.lane_git import LaneGit
from fleet.repos.line.no_branch import why_no_branch
from fleet.repos.line.ready import ReadyCheckouts
from fleet.repos.line.remote import HostAccess, HostCheckouts, elsewhere
from fleet.repos.line.review import LineDiff, line_diff
from fleet.repos.reviews import Reviews
from fleet.repos.schema import RepoEntry
from fleet.repos.stores import RepoStores
from fleet.repos.upstream.branches import push_line_branch
from fleet.repos.upstream.credentials import secret_of
from fleet.repos.upstream.mirror import Mirror
from fleet.repos.upstream.named import Credential

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Prepared:
    """A launch made ready on its line: its spec working in the line's checkout, and the
    setup command of a checkout just made (run in its sandbox first), if any. ``head``: a
    checkout just cut here, its HEAD as :meth:`fleet.sandbox.git.git_probe.GitProbe.head`
    says it (12 hex digits; nothing is uncommitted in it yet), which then need not be
    read from it."""

    spec: AgentSpec
    setup: tuple[str, ...] = ()
    head: str | None = None


DoorUrl = Callable[[str, str], str]
"""The origin URL of ``agent``'s checkout of ``repo``: the git door, with its own token."""


class Repos:
    """The configured repositories, their mirrors and every run's line."""

    def __init__(
        self,
        *,
        state_dir: Path,
        entries: Mapping[str, RepoEntry],
        stores: RepoStores,
        environ: Mapping[str, str],
        version: str = "",
        lane: LaneGit | None = None,
        credentials: Mapping[str, Credential] | None = None,
        door_url: DoorUrl | None = None,
        hosts: HostAccess | None = None,
    ) -> None:
        """``door_url``: where a checkout's ``origin`` points (the heartbeat endpoint's git
        door), by agent and repository; asked only at a launch, once the endpoint listens.
        ``hosts``: the fleet's SSH hosts (an agent placed on one gets its checkout there)."""
        self.dir = state_dir / "repos"
        self.checkouts = state_dir / "checkouts"
        self.hooks = self.dir / ".hooks"
        self.work = self.dir / ".work"
        self._entries = dict(entries)
        self._environ = environ
        self._mirrors = {
            name: Mirror(name, entry, self.dir, environ, (credentials or {}).get(name))
            for name, entry in entries.items()
        }
        self.ready = ReadyCheckouts(self._mirrors)  # checkouts made before a run asks
        for name, mirror in self._mirrors.items():
            mirror.fetched = partial(self.ready.stir, name)
        self.stores = stores
        self.version = version
        self.lane = lane or LaneGit()
        self._door_url = door_url
        # Lines checked out on SSH hosts.
        self._on_hosts = HostCheckouts(hosts) if hosts is not None else None
        self.launching: set[str] = set()  # agents between prepare and their run's start
        self._locks: dict[str, asyncio.Lock] = {}
        # The git door's side of the lines.
        self.door = DoorLines(stores.lines, stores.forge, stores.refusals, self.line_repo)
        # Review agents' read-only checkouts of other lines.
        self.reviews = Reviews(stores.lines, self.line_repo, self.checkouts, self.names)
        self._unkept: dict[int, str] = {}  # line → why its last run's end was not kept
        self._not_copied: dict[int, str] = {}  # line → what of `copy` was not there
        self._push_at_end: set[str] = set()  # agents whose run's end is pushed (forge done)
        self.hold: ApprovalHold | None = None  # what an approval holds a push to (wiring's)

    # -- setup ---------------------------------------------------------------------------

    async def start(self) -> None:
        """Make the directories and the hook, and every mirror (fetched when first used)."""
        private_dir(self.dir)
        private_dir(self.checkouts)
        private_dir(self.work)
        write_hooks(self.hooks)
        for mirror in self._mirrors.values():
            await mirror.ensure()
        await self.ready.start(self.dir)

    async def stop(self) -> None:
        """Stop making ready checkouts."""
        await self.ready.stop()

    def hosts(self) -> HostCheckouts:
        if self._on_hosts is None:
            raise RepoError("no SSH hosts are configured: a checkout can only be here")
        return self._on_hosts

    def names(self) -> Sequence[str]:
        return sorted(self._entries)

    def entry(self, repo: str) -> RepoEntry:
        """``repo``'s settings (:class:`RepoError` naming the known ones when unknown)."""
        return self.mirror(repo).entry

    def mirror(self, repo: str) -> Mirror:
        try:
            return self._mirrors[repo]
        except KeyError:
            known = ", ".join(sorted(self._mirrors)) or "none"
            raise RepoError(f"no repository {repo!r} in the config (known: {known})") from None

    async def adopt(self, entries: Mapping[str, RepoEntry]) -> None:
        """Work on ``entries`` too (repositories a ``roster reload`` found added, none on a
        forge: each credential is its own): every mirror made first, then all known at once."""
        mirrors = {name: Mirror(name, e, self.dir, self._environ) for name, e in entries.items()}
        for mirror in mirrors.values():
            await mirror.ensure()
        self._entries.update(entries)
        self._mirrors.update(mirrors)
        for name, mirror in mirrors.items():
            mirror.fetched = partial(self.ready.stir, name)
        self.ready.adopt(mirrors)

    def known_secrets(self) -> list[Secret]:
        """The upstream tokens, for the redactor."""
        found = ((name, secret_of(e, self._environ)) for name, e in self._entries.items())
        return [Secret(token, f"token of repository {name}") for name, token in found if token]

    def line_repo(self, line: LineRecord) -> Path:
        return self.mirror(line.repo).lines / line.agent / f"{line.id}.git"

    def lock(self, agent: str) -> asyncio.Lock:
        return self._locks.setdefault(agent, asyncio.Lock())

    # -- a run's line --------------------------------------------------------------------

    async def line_of(self, agent: str) -> LineRecord | None:
        return await self.stores.lines.live_line(agent)

    async def prepare(self, spec: AgentSpec, asked: Asked | None = None) -> Prepared:
        """``spec`` with its workdir set to its line's checkout (made now when needed):
        its live line's, or a new line's cut with what the launch ``asked`` of it."""
        if spec.repo is None:
            return Prepared(spec)
        asked = asked or Asked()
        async with self.lock(spec.name):
            line = await self.stores.lines.live_line(spec.name)
            fresh = asked.new_line or (
                line is not None and spec.repo_base not in (None, line.base_ref)
            )
            setup: tuple[str, ...] = ()
            head = None
            if line is not None and line.repo == spec.repo and not fresh:
                if line.host != spec.host:
                    raise RepoError(elsewhere(line, spec.host))
                checkout = await self._keep(line)
            else:
                checkout, setup, head = await self._cut(spec, asked)
            self.launching.add(spec.name)
        return Prepared(replace(spec, workdir=checkout), setup, head)

    async def _keep(self, line: LineRecord) -> Path:
        """The live line's checkout, made again from its branch if it was lost."""
        checkout = Path(line.checkout)
        mirror = self.mirror(line.repo)
        try:
            await mirror.fetch()
        except RepoError as exc:  # the run goes on with the base as last fetched
            log.warning("%s", exc)
        tip = await mirror.tip(line.base_ref)
        if tip is not None:  # the agent's `git fetch origin` sees where the base is now
            await set_base(self.line_repo(line), line.base_ref, tip)
        # The identity its line was cut with: the door takes commits by it alone.
        identity = await line_identity(self.line_repo(line), line.agent, line.host)
        if line.host != LOCAL_HOST:  # on its host: made again there if it was lost
            await self.hosts().keep(
                line, self.origin_of(line.agent, line.repo), identity, line.co_author
            )
            return checkout
        if await asyncio.to_thread(checkout.is_dir):  # its origin: the door, this run's token
            await repoint(self.lane, checkout, self.origin_of(line.agent, line.repo))
            return checkout
        log.warning("the checkout of %s was gone: made again from its branch", line.branch)
        start = await g.rev(self.line_repo(line), f"refs/heads/{line.branch}")
        await make_checkout(
            mirror.path,
            checkout,
            NewBranch(
                base_ref=line.base_ref,
                branch=line.branch,
                origin_url=self.origin_of(line.agent, line.repo),
                identity=identity,
                line_repo=self.line_repo(line),
                start_sha=start or line.fork_sha,
                co_author=line.co_author,
            ),
        )
        return checkout

    async def _cut(self, spec: AgentSpec, asked: Asked) -> tuple[Path, tuple[str, ...], str | None]:
        """A new line for ``spec`` from its base's tip upstream, now
        (:mod:`fleet.repos.line.cutting`), with what its launch asked of it (a requester
        kept only when it is one ``NAME <EMAIL>``); its checkout, setup command and HEAD
        (here: :attr:`Prepared.head`)."""
        asked = replace(asked, co_author=clean_co_author(asked.co_author))
        cut = await cut_line(self, spec, lambda: asked)
        if cut.not_copied:
            self._not_copied[cut.line_id] = cut.not_copied
        head = cut.fork_sha[:12] if spec.host == LOCAL_HOST and cut.fork_sha else None
        return cut.checkout, tuple(cut.setup), head

    async def line_diff(self, line_id: int, base: str, commit: str) -> LineDiff:
        """Line ``line_id``'s change from ``base`` to ``commit``, capped (a review's)."""
        line = await self.stores.lines.line(line_id)
        if line is None:
            raise RepoError(f"line {line_id} is not there to review")
        return await line_diff(self.line_repo(line), base, commit)

    async def line_tip(self, line_id: int) -> str | None:
        """The tip of line ``line_id``'s branch in its door repo (what its agent pushed)."""
        line = await self.stores.lines.line(line_id)
        if line is None:
            return None
        return await g.rev(self.line_repo(line), f"refs/heads/{line.branch}")

    def launched(self, agent: str) -> None:
        """``agent``'s launch is over (started or refused): its line is the verbs' again."""
        self.launching.discard(agent)

    def origin_of(self, agent: str, repo: str) -> str:
        if self._door_url is None:
            raise RepoError("the git door is not open yet: Fleetwarden is still starting")
        return self._door_url(agent, repo)

    async def started(self, agent: AgentName, run_id: int) -> None:
        """Run ``run_id`` of ``agent`` works on its live line."""
        self.launched(agent)
        line = await self.stores.lines.live_line(agent)
        if line is not None:
            self.door.refusals.new_run(line.id)
            await self.stores.lines.line_ran(line.id, run_id)
            await add_run(self.line_repo(line), run_id)  # its commits may name this run

    async def finished(
        self, agent: AgentName, run_id: int, *, by: str | None = None
    ) -> Change | None:
        """Bring what run ``run_id`` left to its branch and record the change it made."""
        line = await self.stores.lines.live_line(agent)
        if line is None or line.last_run != run_id:
            return None
        before = line.head_sha or line.fork_sha  # the branch as the run found it
        async with self.lock(agent):
            await self.door.own_pull(line)
            got = await keep_end(self, line, run_id, by or line.co_author)
            # The hook's refusals of the wip push, counted as the door counts an agent's.
            hooked = await asyncio.to_thread(take_refusals, self.line_repo(line))
            await self.door.refused(agent, line.repo, hooked)
            if got.accepted and got.head_sha:
                await self.stores.lines.update_line(line.id, head_sha=got.head_sha)
            # Not kept for another reason than the door's (a locked checkout, say).
            self._unkept[line.id] = "" if got.accepted or hooked else got.words
            entry = self.entry(line.repo)
            asked, held = agent in self._push_at_end, ""
            self._push_at_end.discard(agent)
            if (entry.autopush or asked) and got.accepted:
                try:
                    await self.push_line(line, draft=True)
                except Unapproved as exc:  # its approval is of another commit: said so
                    held = str(exc)
                except RepoError as exc:
                    self.door.refusals.add(line.id, "", str(exc))
            # As the ledger has it now: what was just pushed (or its new head) counts.
            line = await self.stores.lines.live_line(agent) or line
            change = await self.change_of(line)
            tip = change.head_sha
            if tip not in (None, line.head_sha, line.fork_sha):  # its own pushes, its end refused
                await self.stores.lines.update_line(line.id, head_sha=tip)
        change = replace(change, arrived=tip is not None and tip != before, unpushed=held)
        await self.stores.lines.record_change(run_id, change_to_json(change))
        return change

    def push_at_end(self, agent: str) -> None:
        """Push ``agent``'s branch as its current run ends, as ``autopush`` does (a forge
        run said ``done ok``: its summary then says what the upstream has)."""
        self._push_at_end.add(agent)

    # -- facts ---------------------------------------------------------------------------

    async def live(self, agent: str) -> LineRecord:
        line = await self.stores.lines.live_line(agent)
        if line is None:
            raise NoLine(await self.no_branch(agent))
        return line

    async def no_branch(self, agent: str) -> str:
        """Why ``agent`` has no live branch (its last one merged or discarded, and when)
        and the ``spawn`` that cuts one."""
        return await why_no_branch(self.stores.lines, self.stores.agents, self.stores.forge, agent)

    async def change(self, agent: str) -> Change:
        return await self.change_of(await self.live(agent))

    async def change_of(self, line: LineRecord) -> Change:
        """``line``'s change now, against every other live line of its repository."""
        mirror = self.mirror(line.repo)
        others = [
            OtherLine(other.agent, other.branch, self.line_repo(other), other.head_sha)
            for other in await self.stores.lines.lines(repo=line.repo)
            if other.id != line.id and other.checkout
        ]
        change = await change_of(
            mirror.scratch,
            mirror.path,
            self.line_repo(line),
            repo=line.repo,
            agent=line.agent,
            branch=line.branch,
            base_ref=line.base_ref,
            fork_sha=line.fork_sha,
            others=others,
        )
        return replace(
            change,
            refused=self.door.refusals.shown(line.id),
            unkept=self._unkept.get(line.id, ""),
            secrets=self.door.refusals.verdict(line.id),
            copied=line.copied,
            not_copied=self._not_copied.get(line.id, ""),
            pushed=line.pushed_sha is not None and line.pushed_sha == change.head_sha,
            merged=line.state is LineState.MERGED,
            disk_bytes=await self._disk_bytes(line),
            fleetwarden=self.version,
        )

    async def _disk_bytes(self, line: LineRecord) -> int | None:
        if not line.checkout:
            return None
        if line.host != LOCAL_HOST:
            return await self.hosts().disk_bytes(line.host, line.checkout)
        return await disk_bytes(Path(line.checkout))

    async def remove_checkout(self, line: LineRecord) -> None:
        """Remove ``line``'s checkout, here or on its host (over the link)."""
        if not line.checkout:
            return
        if line.host != LOCAL_HOST:
            await self.hosts().remove(line.host, line.checkout)
        else:
            await asyncio.to_thread(remove_tree, Path(line.checkout))

    async def push_line(
        self, line: LineRecord, *, unreviewed: bool = False, draft: bool = False
    ) -> str:
        """Push ``line``'s branch upstream; the sha pushed. Every upstream push passes
        :attr:`hold` here (:meth:`ApprovalHold.may_push`): a head its review agent did not
        approve is not pushed (``unreviewed``: an admin's, pushed all the same), unless
        ``draft`` and its open pull request is made a draft first."""
        sha = await g.rev(self.line_repo(line), f"refs/heads/{line.branch}")
        if sha is None or sha == line.fork_sha:
            raise RepoError(f"{line.branch} has no commits of its own yet: nothing to push")
        if self.hold is not None and not unreviewed:
            await self.hold.may_push(line, sha, draft=draft)
        await push_line_branch(self.mirror(line.repo), self.line_repo(line), line, sha)
        await self.stores.lines.update_line(line.id, pushed_sha=sha)
        self._push_at_end.discard(line.agent)  # pushed now: its run's end need not be
        return sha

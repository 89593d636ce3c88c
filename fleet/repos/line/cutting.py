"""A new line for a run: cut from its base's tip upstream, fetched now — its number in the
ledger, its branch (its own name, or the one asked for, unless the upstream or an earlier
line has it: :mod:`fleet.repos.upstream.branches`), its door repo with the policy the hook
goes by (:mod:`fleet.repos.door.line_repo`), its checkout here or on its SSH host, and the
gitignored files the config names copied in (what of them is not there, said). A cut that
fails leaves its line discarded."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Protocol

from fleet.hosts.schema import LOCAL_HOST
from fleet.ledger.records.lines import LineState
from fleet.model import AgentSpec
from fleet.repos.desk import RepoError
from fleet.repos.door.line_repo import LineRules, create_line_repo
from fleet.repos.hook.policy import Issue
from fleet.repos.line.checkouts import NewBranch, copy_into, make_checkout, not_copied, remove_tree
from fleet.repos.line.identity import identity_of
from fleet.repos.line.ready import ReadyCheckouts
from fleet.repos.line.remote import HostCheckouts
from fleet.repos.line.review import ReviewCheckout
from fleet.repos.schema import RepoEntry
from fleet.repos.stores import RepoStores
from fleet.repos.upstream.branches import first_free
from fleet.repos.upstream.git_words import no_branch
from fleet.repos.upstream.mirror import Mirror

log = logging.getLogger(__name__)


class Repositories(Protocol):
    """What a cut asks of the repositories (:class:`fleet.repos.service.Repos`)."""

    @property
    def stores(self) -> RepoStores:
        """The ledger's stores the repositories keep their lines in."""
        ...

    @property
    def checkouts(self) -> Path:
        """Where local checkouts go: ``<repo>/<agent>-<line>`` under it."""
        ...

    @property
    def hooks(self) -> Path:
        """The hooks directory every door repo runs."""
        ...

    def entry(self, repo: str) -> RepoEntry: ...

    def mirror(self, repo: str) -> Mirror: ...

    @property
    def ready(self) -> ReadyCheckouts:
        """The checkouts made before a run asks (:mod:`fleet.repos.line.ready`)."""
        ...

    def hosts(self) -> HostCheckouts: ...

    def origin_of(self, agent: str, repo: str) -> str:
        """The git door's URL for ``agent``'s checkout of ``repo``."""
        ...


@dataclass(frozen=True, slots=True)
class Asked:
    """What a launch asks of its line besides its spec: a new one even when the agent has
    a live line (``fresh``; a ``branch`` name implies it), who asked for it (``NAME
    <EMAIL>``, its commits' co-author), the forge issue it works on (the only one its
    commits may name) and the branch's name. Said only to the cut that uses it.
    ``review_of``: a review agent's launch, which cuts no line but reads one's commit in a
    read-only checkout of its own (:meth:`fleet.repos.reviews.Reviews.checkout`)."""

    co_author: str | None = None
    issue: Issue | None = None
    branch: str | None = None
    fresh: bool = False
    review_of: ReviewCheckout | None = None

    @property
    def new_line(self) -> bool:
        """Whether the launch cuts a new line whatever the agent has."""
        return self.fresh or self.branch is not None


@dataclass(frozen=True, slots=True)
class Cut:
    """A line cut: its checkout, and the setup command to run in it first (a local one);
    its line's id, what of the config's ``copy`` was not there to copy in, and the commit
    it was cut from (its checkout's HEAD, nothing changed yet)."""

    checkout: Path
    setup: tuple[str, ...] = ()
    line_id: int = 0
    not_copied: str = ""
    fork_sha: str = ""


async def cut_line(repos: Repositories, spec: AgentSpec, take: Callable[[], Asked]) -> Cut:
    """A new line of ``repos`` for ``spec`` (which names a repository); ``take``: what its
    launch asked of it, taken once its base is found upstream."""
    if spec.repo is None:
        raise RepoError(f"{spec.name} works on no repository: no branch to cut")
    entry = repos.entry(spec.repo)
    mirror = repos.mirror(spec.repo)
    base = spec.repo_base or entry.default_branch
    # The fetch, and the names a new branch may not take asked now, side by side.
    upstream = await _fetched(mirror)
    fork = await mirror.tip(base)
    if fork is None:
        key = "--base" if spec.repo_base else "default_branch"
        said = no_branch(mirror.upstream, base, await mirror.branches(), key=key)
        raise RepoError(said.text)
    asked = take()
    co_author = asked.co_author
    identity = identity_of(spec.name, spec.host, spec.git_name, spec.git_email)
    line_id = await repos.stores.lines.add_line(
        repo=spec.repo,
        agent=spec.name,
        branch=f"(cutting {spec.name})",
        base_ref=base,
        fork_sha=fork,
        checkout="",
        co_author=co_author,
        host=spec.host,
    )
    wanted = asked.branch or entry.branch_for(spec.name, line_id)
    taken = {line.branch for line in await repos.stores.lines.lines(repo=spec.repo, state=None)}
    branch = first_free(wanted, {*upstream, *taken})
    checkout = repos.checkouts / spec.repo / f"{spec.name}-{line_id}"
    remote = spec.host != LOCAL_HOST
    if remote:  # on the host it runs on, fetched there from the door
        checkout = Path(repos.hosts().path_for(spec.host, spec.name, spec.repo, line_id))
    door_repo = create_line_repo(
        mirror.lines / spec.name / f"{line_id}.git",
        mirror.path,
        branch=branch,
        base_ref=base,
        start_sha=fork,
        agent=spec.name,
        repo=spec.repo,
        hooks_dir=repos.hooks,
        rules=LineRules(
            workflows=entry.workflows_allowed(),
            ci_paths=entry.ci_paths(),
            identity=identity,
            co_author=co_author,
            issue=asked.issue,
        ),
    )
    try:
        if remote:  # fetched there from the door repo, made first
            await door_repo
            await repos.hosts().make(
                spec.host,
                str(checkout),
                url=repos.origin_of(spec.name, spec.repo),
                base_ref=base,
                branch=branch,
                identity=identity,
                co_author=co_author,
            )
        else:  # the checkout needs nothing of the door repo: both made side by side
            here = make_checkout(
                mirror.path,
                checkout,
                NewBranch(
                    base_ref=base,
                    branch=branch,
                    origin_url=repos.origin_of(spec.name, spec.repo),
                    identity=identity,
                    start_sha=fork,
                    co_author=co_author,
                ),
                ready=partial(
                    repos.ready.take, spec.repo, base, fork, handed_over=spec.sandbox != "none"
                ),
            )
            await _both(door_repo, here, checkout)
        copied: list[str] = []
        missing = ""
        if entry.copy_from is not None and entry.copy_paths and not remote:
            source = Path(entry.copy_from)
            missing = await asyncio.to_thread(not_copied, source, entry.copy_paths)
            copied = await asyncio.to_thread(copy_into, checkout, source, entry.copy_paths)
    except Exception:
        await repos.stores.lines.update_line(line_id, state=LineState.DISCARDED)
        raise
    await repos.stores.lines.set_line_branch(line_id, branch, str(checkout), copied)
    log.info("%s works on %s of %s, cut from %s at %s", spec.name, branch, spec.repo, base, fork)
    if missing:
        log.warning("repository %s, %s's checkout: %s", spec.repo, spec.name, missing)
    return Cut(checkout, () if remote else entry.setup, line_id, missing, fork)


async def _fetched(mirror: Mirror) -> dict[str, str]:
    """``mirror`` fetched and the upstream's branches read, at once; the branches. The
    fetch's refusal is said first when both fail."""
    fetch, heads = await asyncio.gather(mirror.fetch(), mirror.heads(), return_exceptions=True)
    for failed in (fetch, heads):
        if isinstance(failed, BaseException):
            raise failed
    assert isinstance(heads, dict)
    return heads


async def _both(door_repo: Awaitable[object], here: Awaitable[None], checkout: Path) -> None:
    """The door repo and the checkout made side by side; a checkout made when the door
    repo failed is removed (the line is discarded)."""
    made = await asyncio.gather(door_repo, here, return_exceptions=True)
    failed = [m for m in made if isinstance(m, BaseException)]
    if failed:
        if not isinstance(made[1], FileExistsError):  # else not this line's to remove
            await asyncio.to_thread(remove_tree, checkout)
        raise failed[0]

"""What a run leaves on its branch when it ends: its uncommitted work committed (``wip``),
and its commits brought to its door repo through the same checks as a push.

In the checkout, in git's sandbox (:mod:`fleet.repos.line.lane_git`), once the lock files git
left there are gone (:mod:`fleet.repos.line.git_locks`): ``git add -A``, a commit of whatever
is staged — as the agent, with the run's trailers — and a bundle of ``HEAD`` past the
fork point, written to a file Fleetwarden opened. Outside, a throwaway bare repository
(borrowing the door repo's and the mirror's objects) fetches the bundle, every object
checked (``fetch.fsckObjects``), and pushes it to the door repo's branch as the agent's
own push would go: the pre-receive hook decides
(:mod:`fleet.repos.hook.receive`) — only a fast-forward, no secret, no workflow. What it
refuses stays in the checkout, committed, and the refusal is the run's to report; a stop
never loses work.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from fleet.hosts.schema import LOCAL_HOST
from fleet.ledger.records.lines import LineRecord
from fleet.private_files import private_dir
from fleet.repos import git as g
from fleet.repos.desk import RepoError
from fleet.repos.door.line_repo import line_identity
from fleet.repos.hook.policy import Identity
from fleet.repos.line.git_locks import clear_stale_locks, locked_words
from fleet.repos.line.identity import clean_co_author
from fleet.repos.line.lane_git import LaneGit, LaneGitFailed
from fleet.sandbox.git.git_probe import NO_SUBMODULE

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Harvested:
    """What the end of a run did to its branch."""

    head_sha: str | None  # the checkout's HEAD after the wip commit
    committed: bool  # a wip commit was made
    accepted: bool  # the door repo's branch now holds ``head_sha``
    words: str = ""  # why not, in git's (or the hook's) words


async def harvest(
    lane: LaneGit,
    checkout: Path,
    *,
    mirror: Path,
    line_repo: Path,
    branch: str,
    fork_sha: str,
    work_dir: Path,
    message: str,
    identity: Identity,
) -> Harvested:
    """Commit ``checkout``'s uncommitted work (as the agent's ``identity``: it is the
    agent's work) and bring its ``HEAD`` to ``line_repo``'s ``branch``; ``work_dir``:
    where the throwaway files go (Fleetwarden's own). Only once the run has ended: the
    lock files git left in the checkout are removed first (:mod:`fleet.repos.line.git_locks`)."""
    unlocked = await asyncio.to_thread(clear_stale_locks, checkout)
    if unlocked.removed:
        log.info("removed what git left locked in %s: %s", checkout, ", ".join(unlocked.removed))
    try:
        filters = await lane.filters(checkout)
        await lane.run(checkout, ["add", "-A"], filters=filters)
        staged = await lane.run(
            checkout,
            ["diff", "--cached", "--quiet", "--no-ext-diff", NO_SUBMODULE],
            filters=filters,
            ok=(0, 1),
        )
        committed = staged.code == 1
        if committed:
            await lane.run(
                checkout,
                ["commit", "-q", "--no-verify", "-m", message],
                filters=filters,
                env=identity.env(),
            )
        head = (await lane.run(checkout, ["rev-parse", "--verify", "-q", "HEAD"])).out.strip()
    except LaneGitFailed as exc:
        locked = locked_words(str(exc), str(checkout), unlocked.left)
        return Harvested(None, False, False, locked or f"the checkout could not be read: {exc}")
    if len(head) != 40:
        return Harvested(None, committed, False, "the checkout has no commit")
    known = await g.rev(line_repo, f"refs/heads/{branch}")
    if head in (known, fork_sha):
        return Harvested(head, committed, True)
    private_dir(work_dir)
    token = uuid.uuid4().hex
    bundle = work_dir / f"{token}.bundle"
    temporary = work_dir / f"{token}.git"
    try:
        if not await _bundle(lane, checkout, bundle, fork_sha):
            return Harvested(head, committed, False, "its commits could not be bundled")
        await g.git(None, ["init", "-q", "--bare", str(temporary)])
        info = temporary / "objects" / "info"
        info.mkdir(parents=True, exist_ok=True)
        (info / "alternates").write_text(
            f"{line_repo / 'objects'}\n{mirror / 'objects'}\n", encoding="utf-8"
        )
        try:
            await g.git(
                temporary,
                [
                    "-c",
                    "fetch.fsckObjects=true",
                    "fetch",
                    "-q",
                    "--no-tags",
                    "--",
                    str(bundle),
                    "HEAD:refs/harvest",
                ],
                what="reading the run's commits",
            )
        except g.GitFailed as exc:
            return Harvested(head, committed, False, _last(exc.stderr))
        pushed = await g.git(
            temporary,
            [
                "push",
                "-q",
                "--no-verify",
                "--",
                str(line_repo),
                f"refs/harvest:refs/heads/{branch}",
            ],
            ok=(0, 1),
            what="bringing the run's commits to its branch",
        )
        if pushed.code != 0:
            return Harvested(head, committed, False, _remote_words(pushed.err))
        return Harvested(head, committed, True)
    finally:
        with contextlib.suppress(OSError):
            bundle.unlink()
        shutil.rmtree(temporary, ignore_errors=True)


class _Stored(Protocol):
    @property
    def path(self) -> Path: ...


class HostEnds(Protocol):
    """Checkouts on SSH hosts, as the end of a run there needs them
    (:class:`fleet.repos.line.remote.HostCheckouts`)."""

    async def harvest(
        self,
        host: str,
        path: str,
        *,
        agent: str,
        url: str,
        branch: str,
        fork_sha: str,
        message: str,
        identity: Identity,
    ) -> Harvested: ...


class Lines(Protocol):
    """The repositories, as the end of a run needs them (:class:`fleet.repos.service.Repos`)."""

    lane: LaneGit
    work: Path

    def hosts(self) -> HostEnds: ...

    def origin_of(self, agent: str, repo: str) -> str: ...

    def mirror(self, repo: str) -> _Stored: ...

    def line_repo(self, line: LineRecord) -> Path: ...


async def keep_end(repos: Lines, line: LineRecord, run_id: int, by: str | None) -> Harvested:
    """Keep what run ``run_id`` left in ``line``'s checkout, here or on its host: a ``wip``
    commit (as the agent, naming the run, the agent and ``by``, who asked for it) brought
    to the branch through the door's checks."""
    checkout = Path(line.checkout)
    trailers = [f"Fleetwarden-Run: {run_id}", f"Fleetwarden-Agent: {line.agent}"]
    requester = clean_co_author(by)  # one line, or none at all: never a trailer of its own
    if requester:
        trailers.append(f"Co-authored-by: {requester}")
    message = f"wip: what run {run_id} of {line.agent} left uncommitted\n\n" + "\n".join(trailers)
    identity = await line_identity(repos.line_repo(line), line.agent, line.host)
    if line.host != LOCAL_HOST:  # committed and pushed through the door on its host
        try:
            on_hosts, origin = repos.hosts(), repos.origin_of(line.agent, line.repo)
        except RepoError as exc:
            return Harvested(None, False, False, str(exc))
        return await on_hosts.harvest(
            line.host,
            line.checkout,
            agent=line.agent,
            url=origin,
            branch=line.branch,
            fork_sha=line.fork_sha,
            message=message,
            identity=identity,
        )
    if not await asyncio.to_thread(checkout.is_dir) or not repos.lane.usable:
        return Harvested(
            None,
            False,
            False,
            "the checkout is gone"
            if repos.lane.usable
            else "git cannot run in a sandbox here: nothing was committed",
        )
    try:
        return await harvest(
            repos.lane,
            checkout,
            mirror=repos.mirror(line.repo).path,
            line_repo=repos.line_repo(line),
            branch=line.branch,
            fork_sha=line.fork_sha,
            work_dir=repos.work,
            identity=identity,
            message=message,
        )
    except (g.GitFailed, LaneGitFailed, OSError) as exc:
        log.warning("the end of a run on %s could not be kept: %s", line.branch, exc)
        return Harvested(None, False, False, str(exc))


async def _bundle(lane: LaneGit, checkout: Path, bundle: Path, fork_sha: str) -> bool:
    """Write a bundle of the checkout's ``HEAD`` past ``fork_sha`` (or whole, when the fork
    point is gone from it) to ``bundle``; whether it was written."""
    for args in (["HEAD", "--not", fork_sha], ["HEAD"]):
        with bundle.open("wb") as out:
            try:
                await lane.run(checkout, ["bundle", "create", "-", *args], stdout=out)
            except LaneGitFailed:
                continue
        return True
    return False


def _remote_words(err: str) -> str:
    """What the hook told the pusher (``remote:`` lines), else git's last line."""
    said = [line.removeprefix("remote:").strip() for line in err.splitlines()]
    remote = [
        line
        for line, raw in zip(said, err.splitlines(), strict=True)
        if raw.startswith("remote:") and line
    ]
    return "; ".join(remote)[:1000] if remote else _last(err)


def _last(err: str) -> str:
    lines = [line.strip() for line in err.splitlines() if line.strip()]
    return lines[-1][:300] if lines else "git failed"

"""Checkouts made ready before a run asks for one: a few per repository (its
``ready_checkouts``), each a clone of the mirror's default branch kept at its tip, so that a
new line's checkout is a rename and ``git checkout -b`` instead of writing every file.

An entry is made exactly as :func:`fleet.repos.line.checkouts.make_checkout` makes a
checkout — ``git clone --no-local --single-branch`` of the mirror, which holds the
upstream's content only — in the repository's own directory beside its mirror
(``<repos>/<name>/ready/``, Fleetwarden's own: no agent sees it), under a dotted name while
it is made or brought up to date, so that only a whole entry is ever handed out.
:meth:`ReadyCheckouts.take` renames one onto a run's checkout path (the state dir, one
filesystem), where it becomes that run's alone: an entry is never handed out twice and
never goes back to the pool. One whose commit is not the one the run starts from is brought
to it (a fetch from the mirror and a checkout, which writes only the files that differ) —
unless the base was forced past what it holds, or it is the clone of a branch that was the
default before: then it is set aside, never holding more than a checkout made at the start
would. Anything amiss — no entry, another filesystem, an entry git cannot read — and the
caller makes its checkout as it always did: a run never fails, and never waits, because of
the pool. Entries are made again in the background after each hand-over and brought up to
date after each fetch of the mirror (:meth:`ReadyCheckouts.stir`). When Fleetwarden runs as
root, an entry's work tree is given ahead to the uid its taker is likely to have, so that
the launch's hand-over of the tree to its agent finds it done: the uid the next agent new
to this host will be given (:meth:`fleet.sandbox.lanes.Lanes.next_uid`, known to the pool
as :attr:`ReadyCheckouts.next_uid`), until a checkout goes to an agent that had its uid
already — then the uid that one went to at its launch, for when the same agent takes the
next; its directory and
``.git`` stay Fleetwarden's until then, and the launch hands everything to whoever takes
it, as it does any workdir (a run whose launch hands nothing over, an agent without a
sandbox, gets it back as Fleetwarden's). No agent reaches an entry: they lie in
Fleetwarden's own directory, closed to every agent's user. A repository no longer
configured, or configured with none, has its entries removed at start. The pool is for
checkouts on this machine: a line on an SSH host is fetched there from the git door as
before.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import time
from collections.abc import Awaitable, Callable, Mapping
from functools import partial
from pathlib import Path
from typing import Final

from fleet.private_files import private_dir
from fleet.repos import git as g
from fleet.repos.line.checkouts import clone_base, remove_tree
from fleet.repos.upstream.mirror import Mirror

log = logging.getLogger(__name__)

READY: Final = "ready"
"""The directory of a repository's ready checkouts, beside its mirror."""
_MAKING: Final = ".making-"
_BUSY: Final = ".busy-"
_GONE: Final = ".gone-"


class ReadyCheckouts:
    """The ready checkouts of each of ``mirrors``' repositories (``<mirror dir>/ready/``),
    as many as its ``ready_checkouts`` says, at its default branch's tip."""

    def __init__(
        self, mirrors: Mapping[str, Mirror], next_uid: Callable[[], int | None] | None = None
    ) -> None:
        self._mirrors = dict(mirrors)
        self.next_uid = next_uid  # the uid an agent new to this host gets next, if known
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._again: set[str] = set()
        self._bringing: dict[str, asyncio.Event] = {}
        self._handed: dict[str, Path] = {}  # the last checkout handed over, by repository
        self._owners: dict[str, int] = {}  # the uid that one was given to at its launch
        self._given: dict[Path, int] = {}  # entries whose work tree is that uid's already
        self._unheld: dict[str, int | None] = {}  # next_uid when the last one was taken
        self._new: dict[str, bool] = {}  # whether the last checkout went to a new agent

    def where(self, repo: str) -> Path:
        """The directory of ``repo``'s ready checkouts."""
        return self._mirrors[repo].dir / READY

    def size(self, repo: str) -> int:
        """How many ready checkouts ``repo`` keeps (0: none, or no such repository)."""
        mirror = self._mirrors.get(repo)
        return 0 if mirror is None else mirror.entry.ready_checkouts

    def adopt(self, mirrors: Mapping[str, Mirror]) -> None:
        """Keep entries for ``mirrors``' repositories too (added by a reload), made now."""
        self._mirrors.update(mirrors)
        for repo in mirrors:
            self.stir(repo)

    def ready(self, repo: str) -> list[Path]:
        """``repo``'s whole entries, the oldest first (those being made or brought up to
        date are not among them)."""
        try:
            with os.scandir(self.where(repo)) as found:
                names = sorted(e.name for e in found if not e.name.startswith("."))
        except OSError:
            return []
        return [self.where(repo) / name for name in names]

    async def start(self, repos_dir: Path) -> None:
        """Remove what no configured repository keeps (under ``repos_dir``: a repository
        gone from the config, one with ``ready_checkouts: 0``, what a run of Fleetwarden
        that stopped left half made), then make each repository's entries in the
        background (its mirror fetched first when it never was)."""
        gone = await asyncio.to_thread(_unkept, repos_dir, set(self._mirrors))
        gone += [self.where(repo) for repo in self._mirrors if self.size(repo) == 0]
        for where in gone:
            await asyncio.to_thread(remove_tree, where)
        for repo in self._mirrors:
            await asyncio.to_thread(_sweep, self.where(repo))
            self.stir(repo)

    async def stop(self) -> None:
        """Stop making entries (what was half made is removed at the next start)."""
        tasks = list(self._tasks.values())
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks.clear()

    def stir(self, repo: str) -> None:
        """Bring ``repo``'s entries to its mirror's base and make the missing ones, in the
        background (once more after the current round, when one is under way)."""
        if self.size(repo) <= 0:
            return
        task = self._tasks.get(repo)
        if task is not None and not task.done():
            self._again.add(repo)
            return
        self._tasks[repo] = asyncio.get_running_loop().create_task(
            self._keep(repo), name=f"ready checkouts of {repo}"
        )

    async def settled(self, repo: str) -> None:
        """Wait for ``repo``'s background work under way, if any, to end."""
        while (task := self._tasks.get(repo)) is not None and not task.done():
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await asyncio.shield(task)

    async def _keep(self, repo: str) -> None:
        while True:
            self._again.discard(repo)
            try:
                await self._round(repo)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the runs make their checkouts as before meanwhile
                log.warning("the ready checkouts of %s could not be made: %s", repo, exc)
                return
            if repo not in self._again:
                return

    async def _round(self, repo: str) -> None:
        mirror = self._mirrors[repo]
        base, size = mirror.entry.default_branch, self.size(repo)
        tip = await mirror.tip(base)
        if tip is None and (mirror.path / "HEAD").exists():
            await mirror.fetch()  # never fetched yet; a fetch stirs again
            tip = await mirror.tip(base)
        if tip is None:
            return
        where = private_dir(self.where(repo))
        entries = self.ready(repo)
        for extra in entries[size:]:
            _set_aside(extra)
        for entry in entries[:size]:
            if not await _of_base(entry, base):  # a default branch configured before
                _set_aside(entry)
            elif await _head(entry) != tip:
                await self._bring(repo, entry, tip)
        while len(self.ready(repo)) < size:
            making = where / f"{_MAKING}{secrets.token_hex(4)}"
            await clone_base(mirror.path, making, base)
            os.rename(making, where / _entry_name())
            log.info("a checkout of %s is ready at %s", repo, tip[:12])
        uid = self._owner_of(repo)
        ungiven = [e for e in self.ready(repo) if uid is not None and self._given.get(e) != uid]
        for entry in ungiven:
            assert uid is not None
            if await self._aside(repo, entry, partial(_give, uid=uid)):
                self._given[entry] = uid
        await asyncio.to_thread(_sweep, where)

    def _owner_of(self, repo: str) -> int | None:
        """The uid to give the entries to ahead: the one the next agent new to this host
        will get (:attr:`next_uid`) unless the last checkout handed over went to an agent
        that had its uid already — then that agent's (the uid it was given at its launch),
        which takes the next one when the same agent does; ``None`` when there is none to
        go by (not root)."""
        handed = self._handed.get(repo)
        if handed is not None:
            with contextlib.suppress(OSError):
                uid = handed.stat().st_uid
                if uid != os.geteuid():
                    self._owners[repo] = uid
                    self._new[repo] = uid == self._unheld.get(repo)
                    del self._handed[repo]  # learned once
        guess = self._next_uid() if self._new.get(repo, True) else None
        return guess if guess is not None else self._owners.get(repo)

    def _next_uid(self) -> int | None:
        if self.next_uid is None:
            return None
        try:
            return self.next_uid()
        except OSError:
            return None

    async def _bring(self, repo: str, entry: Path, tip: str) -> None:
        """``entry`` brought to ``tip`` (what it had given ahead is its owner's again at
        the next round)."""
        mirror = self._mirrors[repo]
        base = mirror.entry.default_branch
        work = partial(_brought, mirror=mirror.path, base=base, sha=tip)
        if await self._aside(repo, entry, work):
            self._given.pop(entry, None)

    async def _aside(self, repo: str, entry: Path, work: Callable[[Path], Awaitable[None]]) -> bool:
        """``work`` done on ``entry`` out of reach of :meth:`take` (which waits for it when
        it is the only one: it is less than a checkout made anew); whether it was done.
        An entry it fails on is set aside."""
        aside = entry.with_name(f"{_BUSY}{entry.name}")
        try:
            os.rename(entry, aside)
        except OSError:
            return False  # taken meanwhile
        self._bringing[repo] = done = asyncio.Event()
        try:
            await work(aside)
            os.rename(aside, entry)
        except (g.GitFailed, OSError) as exc:
            log.warning("a ready checkout of %s could not be kept: %s", repo, exc)
            _set_aside(aside)
            return False
        finally:
            del self._bringing[repo]
            done.set()
        return True

    async def take(
        self, repo: str, base: str, start: str, dest: Path, *, handed_over: bool = True
    ) -> bool:
        """Rename one of ``repo``'s entries onto ``dest`` (which must not exist) with
        ``base`` checked out at ``start``; whether one was. ``False``: nothing is at
        ``dest`` and the caller makes the checkout as it would without the pool.
        ``handed_over``: whether the run's launch hands its checkout to its agent's uid;
        when it does not (an agent without a sandbox), what was given ahead to another
        agent's uid is Fleetwarden's again, as a checkout made anew would be."""
        mirror = self._mirrors.get(repo)
        if mirror is None or mirror.entry.default_branch != base or self.size(repo) <= 0:
            return False
        entries = self.ready(repo)
        if not entries and (bringing := self._bringing.get(repo)) is not None:
            await bringing.wait()
            entries = self.ready(repo)
        if not entries:
            self.stir(repo)
            return False
        try:
            os.rename(entries[0], dest)
        except OSError as exc:  # another filesystem, say: made as before
            log.warning("a ready checkout of %s could not be handed over: %s", repo, exc)
            return False
        if not await _of_base(dest, base):  # made when another branch was the default
            log.warning("a ready checkout of %s is no clone of %s, made anew", repo, base)
            _set_aside(dest, self.where(repo))
            self.stir(repo)
            return False
        self._given.pop(entries[0], None)
        self._handed[repo] = dest  # whose uid its launch gives it to, the next one's
        self._unheld[repo] = self._next_uid()  # that uid, if its agent is new to this host
        self.stir(repo)
        try:
            if not handed_over and os.geteuid() == 0:  # given ahead only as root
                await asyncio.to_thread(_take_back, dest)
            if await _head(dest) != start:
                await bring_to(dest, mirror.path, base, start)
        except (g.GitFailed, OSError) as exc:
            log.warning("a ready checkout of %s was not usable, made anew: %s", repo, exc)
            _set_aside(dest, self.where(repo))
            self.stir(repo)  # and removed by the next round
            return False
        return True


async def bring_to(checkout: Path, mirror: Path, base: str, sha: str) -> None:
    """``checkout`` (a clone of ``mirror``'s ``base``) on ``base`` at ``sha``: what the
    mirror has of ``base`` fetched, then checked out — only the files that differ are
    written. :class:`~fleet.repos.git.GitFailed` when the base was forced past what the
    checkout had (its commits, in its reflogs, are no longer the base's: a checkout made
    now would not hold them)."""
    remote = f"refs/remotes/origin/{base}"
    had = {r for r in (await g.rev(checkout, "HEAD"), await g.rev(checkout, remote)) if r}
    await g.git(
        checkout,
        ["fetch", "-q", "--no-tags", "--", str(mirror), f"+refs/heads/{base}:{remote}"],
        what="bringing a ready checkout up to date",
    )
    for old in sorted(had):
        kept = await g.git(checkout, ["merge-base", "--is-ancestor", old, remote], ok=(0, 1))
        if kept.code != 0:
            raise g.GitFailed("bringing a ready checkout up to date", None,
                              f"{base} no longer reaches {old}: it was forced past it")  # fmt: skip
    await g.git(checkout, ["checkout", "-q", "-f", "-B", base, sha], what="checking out the base")


async def _brought(entry: Path, *, mirror: Path, base: str, sha: str) -> None:
    await bring_to(entry, mirror, base, sha)


def _give_tree(entry: Path, uid: int) -> None:
    """``entry``'s work tree made ``uid``'s (uid and gid), ahead of its hand-over — not
    the entry's directory nor its ``.git``: Fleetwarden's git reads it until then, and
    git refuses a repository another user owns. The launch hands the whole tree over as
    it does any workdir (:func:`fleet.lane_files.hand_over`), then finding most of it
    done. Nothing of an agent's is in it: symlinks are not followed all the same."""
    for top, dirs, files, dir_fd in os.fwalk(entry, follow_symlinks=False):
        if top == str(entry) and ".git" in dirs:
            dirs.remove(".git")
        for name in (*dirs, *files):
            os.chown(name, uid, uid, dir_fd=dir_fd, follow_symlinks=False)


def _take_back(entry: Path) -> None:
    """What of ``entry``'s work tree was given ahead to another uid made Fleetwarden's
    again (uid and gid), never following a symlink."""
    uid, gid = os.geteuid(), os.getegid()
    for top, dirs, files, dir_fd in os.fwalk(entry, follow_symlinks=False):
        if top == str(entry) and ".git" in dirs:
            dirs.remove(".git")
        for name in (*dirs, *files):
            found = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
            if (found.st_uid, found.st_gid) != (uid, gid):
                os.chown(name, uid, gid, dir_fd=dir_fd, follow_symlinks=False)


async def _give(entry: Path, *, uid: int) -> None:
    await asyncio.to_thread(_give_tree, entry, uid)


async def _of_base(entry: Path, base: str) -> bool:
    """Whether ``entry`` is a clone of ``base`` alone, as :func:`clone_base` makes one
    (its fetch refspec, its branches): one made when another branch was the repository's
    default is not, however far it was brought."""
    if not (entry / ".git" / "config").is_file():
        return False
    try:
        found = await g.git(entry, ["config", "--get-all", "remote.origin.fetch"], ok=(0, 1, 128))
    except g.GitFailed:
        return False
    return found.code == 0 and found.text.split() == [
        f"+refs/heads/{base}:refs/remotes/origin/{base}"
    ]


async def _head(entry: Path) -> str | None:
    if not (entry / ".git" / "HEAD").is_file():
        return None
    return await g.rev(entry, "HEAD")


def _entry_name() -> str:
    """A new entry's name: its time of making first, so the oldest sorts first."""
    return f"{time.time_ns():020d}-{secrets.token_hex(4)}"


def _set_aside(entry: Path, where: Path | None = None) -> None:
    """``entry`` renamed out of reach, removed by the next round (never in a run's way)."""
    home = where or entry.parent
    try:
        os.rename(entry, home / f"{_GONE}{secrets.token_hex(4)}")
    except OSError:
        remove_tree(entry)


def _sweep(where: Path) -> None:
    """Every set-aside entry in ``where`` removed (and, at start, every half-made one)."""
    if not where.is_dir():
        return
    for entry in where.iterdir():
        if entry.name.startswith(_GONE) or entry.name.startswith((_MAKING, _BUSY)):
            try:
                remove_tree(entry)
            except FileNotFoundError:  # gone meanwhile (a making that ended): swept as well
                continue


def _unkept(repos_dir: Path, configured: set[str]) -> list[Path]:
    """The ready directories of repositories no longer configured."""
    if not repos_dir.is_dir():
        return []
    return [
        repo / READY
        for repo in repos_dir.iterdir()
        if repo.name not in configured and (repo / READY).is_dir() and not repo.is_symlink()
    ]

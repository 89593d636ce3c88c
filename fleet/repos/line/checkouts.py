"""A run's checkout: made by Fleetwarden from the mirror before its agent ever sees it, with a
``.git`` of its own, on the run's branch, its ``origin`` the git door.

The checkout is a clone of the mirror through git's own transport (``--no-local``: a pack
of what the base branch reaches, never a copy of the mirror's store, which holds every
upstream branch; nothing is linked, so handing the tree to the agent's uid changes no file
of the mirror), of the base branch only. The mirror holds the upstream's content only, so
no object another run made is in it. Its config names the agent's identity, which the door
holds every pushed commit to, and — when someone asked for the run — a
``prepare-commit-msg`` hook adds them to each commit as ``Co-authored-by:`` (the agent's
own git runs it; Fleetwarden's git in the checkout never runs a hook). A line whose checkout
is made again (it was lost) gets its branch from its door repo. Gitignored files the
repository's config names (``copy``) are copied in from the operator's directory, symlinks
as symlinks. Everything here happens before the agent has the directory: afterwards, git
there runs only in :mod:`fleet.repos.line.lane_git` — as when a kept checkout's ``origin`` is
pointed at the door with its next run's token (:func:`repoint`: a token lives as long as
its run).
"""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from fleet.private_files import private_dir
from fleet.repos import git as g
from fleet.repos.desk import RepoError
from fleet.repos.hook.policy import Identity
from fleet.repos.line.lane_git import LaneGit, LaneGitFailed

log = logging.getLogger(__name__)

DISK_WALK_CAP = 500_000  # entries walked to measure a checkout; past it the size is "at least"
CO_AUTHOR_HOOK: Final = """#!/bin/sh
# Written by Fleetwarden: each commit of this run names who asked for it as its co-author
# (the git door takes this Co-authored-by: line, and no other).
case "$2" in merge|squash) exit 0 ;; esac
who=$(git config --get fleetwarden.coauthor) || exit 0
exec git interpret-trailers --in-place --if-exists addIfDifferent \\
  --trailer "Co-authored-by: $who" "$1"
"""
"""The checkout's ``prepare-commit-msg`` hook when a run has a requester: it reads who from
the checkout's config (``fleetwarden.coauthor``), never from its own text."""

ReadyTake = Callable[[Path], Awaitable[bool]]
"""Puts a ready clone of the base at the path given, at the run's start; whether it did."""


@dataclass(frozen=True, slots=True)
class NewBranch:
    """The line a new checkout is cut on: a new ``branch`` from ``base_ref`` at
    ``start_sha`` (default: the base's tip; a commit only in ``line_repo`` is fetched from
    it), with ``origin`` at ``origin_url`` and ``identity`` as its committer; with
    ``co_author`` (``NAME <EMAIL>``, checked), a hook that names them in each commit's
    ``Co-authored-by:`` (:data:`CO_AUTHOR_HOOK`)."""

    base_ref: str
    branch: str
    origin_url: str
    identity: Identity | None = None
    line_repo: Path | None = None
    start_sha: str | None = None
    co_author: str | None = None


async def make_checkout(
    mirror: Path, dest: Path, cut: NewBranch, *, ready: ReadyTake | None = None
) -> None:
    """Make ``dest`` a checkout of ``mirror``'s base, cut as ``cut`` says. ``dest`` must not
    exist. It holds only what its base reaches (and its line): the clone goes through git's
    transport, never a copy of the mirror's whole store. ``ready``: a clone of the base made
    before, renamed onto ``dest`` (:meth:`fleet.repos.line.ready.ReadyCheckouts.take`), when
    it has one."""
    if _in_the_way(dest):
        raise FileExistsError(f"{dest} is in the way of a new checkout")
    if ready is not None and await ready(dest):
        try:
            await _cut(dest, cut)
            return
        except g.GitFailed as exc:  # made as if there were no ready one
            log.warning("a ready checkout could not be cut, made anew: %s", exc)
            await asyncio.to_thread(remove_tree, dest)
    await clone_base(mirror, dest, cut.base_ref)
    await _cut(dest, cut)


async def repoint(lane: LaneGit, checkout: Path, origin_url: str) -> None:
    """Point the kept ``checkout``'s ``origin`` at ``origin_url``: the git door with the new
    run's token (the last run's was revoked with it). The agent wrote the checkout, so git
    runs there in its sandbox, as its owner; without bubblewrap (no agent is sandboxed, nor
    runs as another user) as Fleetwarden's. :class:`RepoError` saying why it could not."""
    args = ["config", "remote.origin.url", origin_url]
    try:
        if lane.usable:
            await lane.run(checkout, args)
        else:
            await g.git(checkout, args)
    except (LaneGitFailed, g.GitFailed) as exc:
        raise RepoError(
            f"the checkout {checkout} could not be pointed at this run's git door ({exc}): "
            "`discard` its branch, or spawn with --fresh"
        ) from None


async def _cut(dest: Path, cut: NewBranch) -> None:
    """The fresh clone ``dest`` on ``cut``'s branch with its origin, identity and hook."""
    branch, target, line_repo = cut.branch, cut.start_sha or "HEAD", cut.line_repo
    if line_repo is not None and cut.start_sha and await g.rev(dest, cut.start_sha) is None:
        await g.git(
            dest,
            ["fetch", "-q", "--no-tags", "--", str(line_repo), f"refs/heads/{branch}"],
            what="bringing the branch back",
        )
        target = "FETCH_HEAD"
    await _branch(dest, branch, target)
    await g.git(dest, ["config", "remote.origin.url", cut.origin_url])
    await g.add_config(dest / ".git" / "config", _settings(branch, cut.identity, cut.co_author))
    if cut.co_author:
        await asyncio.to_thread(_write_hook, dest / ".git" / "hooks")


async def _branch(dest: Path, branch: str, target: str) -> None:
    """``dest`` on a new ``branch`` at ``target``. At the commit it is on already (a
    fresh clone, a ready checkout), the branch is made and HEAD moved to it — what
    ``git checkout -b`` leaves, without its pass over every file of the tree."""
    here = await g.rev(dest, "HEAD")
    if here is None or (target not in ("HEAD", here) and await g.rev(dest, target) != here):
        await g.git(dest, ["checkout", "-q", "-b", branch, target], what="cutting the branch")
        return
    ref = f"refs/heads/{branch}"
    said = f"branch: Created from {here}"
    await g.git(dest, ["update-ref", "-m", said, ref, here, g.ZERO], what="cutting the branch")
    moved = f"checkout: moving to {branch}"
    await g.git(dest, ["symbolic-ref", "-m", moved, "HEAD", ref], what="cutting the branch")


def _settings(
    branch: str, identity: Identity | None, co_author: str | None
) -> list[tuple[str, str]]:
    """A fresh clone's settings for its run besides its origin's URL (its base's fetch
    refspec is the clone's own)."""
    found = [
        ("remote.origin.fetch", f"+refs/heads/{branch}:refs/remotes/origin/{branch}"),
        (f"branch.{branch}.remote", "origin"),
        (f"branch.{branch}.merge", f"refs/heads/{branch}"),
        ("push.default", "upstream"),
    ]
    if identity is not None:
        found += [("user.name", identity.name), ("user.email", identity.email)]
    if co_author:
        found.append(("fleetwarden.coauthor", co_author))
    return found


async def clone_base(mirror: Path, dest: Path, base_ref: str) -> None:
    """``dest`` a clone of ``mirror``'s ``base_ref`` alone, through git's transport."""
    await g.git(
        None,
        [
            "clone",
            "-q",
            "--no-local",
            "--single-branch",
            "--no-tags",
            "--branch",
            base_ref,
            "--",
            str(mirror),
            str(dest),
        ],
        what="making the checkout",
    )


def _write_hook(hooks: Path) -> None:
    """The co-author hook in a fresh checkout (nothing of the agent's is there yet)."""
    hooks.mkdir(mode=0o755, exist_ok=True)
    hook = hooks / "prepare-commit-msg"
    hook.write_text(CO_AUTHOR_HOOK, encoding="utf-8")
    hook.chmod(0o755)


def _in_the_way(dest: Path) -> bool:
    private_dir(dest.parent)
    return dest.exists() or dest.is_symlink()


def copy_into(dest: Path, source: Path, paths: Sequence[str]) -> list[str]:
    """Copy ``paths`` (relative, checked by the config) from ``source`` into the fresh
    checkout ``dest``; the ones copied. Only into places the checkout does not have: a
    path already there (tracked) is left alone, and a path reached through a symlink in
    the checkout — its content is the upstream's, which an agent may have written — is
    skipped, never written through. Symlinks in ``source`` are copied as symlinks."""
    copied = []
    root = source.resolve()
    for rel in paths:
        src = root / rel
        if not src.resolve().is_relative_to(root) and not src.is_symlink():
            continue
        if ".git" in Path(rel).parts or not (src.exists() or src.is_symlink()):
            continue
        target = dest / rel
        if not _free(dest, Path(rel)):
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        if src.is_dir() and not src.is_symlink():
            shutil.copytree(src, target, symlinks=True)
        else:
            shutil.copy2(src, target, follow_symlinks=False)
        copied.append(rel)
    return copied


def not_copied(source: Path, paths: Sequence[str]) -> str:
    """What of ``copy`` could not be copied from ``source`` because it is not there, in
    words for the run's summary (``""``: nothing missing)."""
    if not source.is_dir():
        return (
            f"copy_from {source} is not a directory on this machine, so none of "
            f"{', '.join(paths)} was copied in: set copy_from to the directory they are in"
        )
    missing = [rel for rel in paths if not ((source / rel).exists() or (source / rel).is_symlink())]
    if not missing:
        return ""
    return f"{', '.join(missing)} not found in copy_from {source}, so not copied in"


def _free(dest: Path, rel: Path) -> bool:
    """Whether ``rel`` is missing from ``dest`` with no symlink (nor file) on its way."""
    here = dest
    for part in rel.parts[:-1]:
        here = here / part
        if here.is_symlink() or (here.exists() and not here.is_dir()):
            return False
    final = dest / rel
    return not (final.exists() or final.is_symlink())


async def disk_bytes(path: Path) -> int | None:
    """The bytes ``path`` takes on disk (its links not followed); ``None`` when unreadable."""
    return await asyncio.to_thread(_disk_bytes, path)


def _disk_bytes(path: Path) -> int | None:
    total, seen = 0, 0
    stack = [str(path)]
    try:
        while stack and seen < DISK_WALK_CAP:
            with os.scandir(stack.pop()) as entries:
                for entry in entries:
                    seen += 1
                    info = entry.stat(follow_symlinks=False)
                    total += info.st_blocks * 512
                    if entry.is_dir(follow_symlinks=False):
                        stack.append(entry.path)
    except OSError:
        return None if seen == 0 else total
    return total


def remove_tree(path: Path) -> None:
    """Remove a checkout (never following a symlink out of it)."""
    if path.is_symlink():
        path.unlink()
        return
    if path.exists():
        shutil.rmtree(path)

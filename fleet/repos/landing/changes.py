"""The facts of a line's change, computed in the scratch repo: its commits, its files with
their ``+/−``, how far the base has moved, whether it applies to the base and which other
live lines it clashes with; also its diff and how many of its commits are on no upstream
branch.

Nothing here touches a checkout or moves a ref. Git runs in ``scratch.git`` (bare, its
alternates naming the mirror's objects) with the line repos' objects added for the one
command (``GIT_ALTERNATE_OBJECT_DIRECTORIES``); the objects the dry-run merges write go to a
throwaway object directory, so asking costs the scratch repo nothing. Every file name,
subject and diff line here is the agent's text: parsed from NUL-separated output, never
interpreted, escaped by whoever shows it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shutil
import tempfile
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from fleet.repos import git as g
from fleet.repos.facts import Change, Clash, CommitLine, FileStat

log = logging.getLogger(__name__)
COMMITS_SHOWN: Final = 20
FILES_SHOWN: Final = 50
DIFF_CAP: Final = 4 * 1024 * 1024
CLASH_CHECKS_AT_ONCE: Final = 4
_CACHE_SIZE: Final = 1024
# (base tip, line tip) → the files the line changes since it left the base: content
# addressed, so it never goes stale; bounded, oldest dropped first.
_CHANGED: OrderedDict[tuple[str, str], frozenset[str]] = OrderedDict()


@dataclass(frozen=True, slots=True)
class OtherLine:
    """Another live line of the same repository, to check clashes against."""

    agent: str
    branch: str
    line_repo: Path
    head_sha: str | None = None  # None: read from the line repo


@dataclass(frozen=True, slots=True)
class Merged:
    """What a dry-run ``git merge-tree --write-tree`` of two commits found."""

    tree: str
    clean: bool
    conflicts: tuple[str, ...]  # the files git names as conflicting


def objects_env(
    scratch: Path, mirror: Path, *lines: Path, into: Path | None = None
) -> dict[str, str]:
    """The environment that lets git in ``scratch`` read the mirror's and ``lines``' objects,
    writing new ones to ``into`` (a throwaway directory) when given."""
    env = {
        "GIT_ALTERNATE_OBJECT_DIRECTORIES": ":".join(
            str(r / "objects") for r in (*((scratch,) if into else ()), mirror, *lines)
        )
    }
    if into is not None:
        env["GIT_OBJECT_DIRECTORY"] = str(into)
    return env


async def merge_tree(repo: Path, ours: str, theirs: str, env: dict[str, str]) -> Merged:
    """Merge ``ours`` and ``theirs`` without a work tree (their merge base computed):
    the tree it made and the files that conflict."""
    ran = await g.git(
        repo,
        ["merge-tree", "--write-tree", "-z", "--name-only", "--no-messages", ours, theirs],
        env=env,
        ok=(0, 1),
        what="git merge-tree",
    )
    parts = ran.out.split(b"\0")
    tree = parts[0].decode("ascii", errors="replace").strip()
    names = [_name(p) for p in parts[1:] if p] if ran.code == 1 else []
    return Merged(tree, ran.code == 0, tuple(dict.fromkeys(names)))


async def change_of(
    scratch: Path,
    mirror: Path,
    line_repo: Path,
    *,
    repo: str,
    agent: str,
    branch: str,
    base_ref: str,
    fork_sha: str,
    others: Sequence[OtherLine] = (),
) -> Change:
    """The line on ``branch`` (in ``line_repo``) against ``base_ref`` of the mirror now."""
    tip, base = await asyncio.gather(
        g.rev(line_repo, f"refs/heads/{branch}"), g.rev(mirror, f"refs/heads/{base_ref}")
    )
    if base is None:
        raise g.GitFailed("reading the base", None, f"the mirror has no branch {base_ref}")
    env = objects_env(scratch, mirror, line_repo)
    head = tip or fork_sha
    moved, (commits, more), (files, changed) = await asyncio.gather(
        _count(scratch, [base, f"^{fork_sha}"], env),
        _commits(scratch, head, (fork_sha, base), env),
        _files(scratch, base, head, env),
    )
    _remember(base, head, changed)
    applies = True
    conflicts: tuple[str, ...] = ()
    clashes: tuple[Clash, ...] = ()
    if tip is not None and changed:
        with _throwaway_objects(scratch) as into:
            onto_base = merge_tree(
                scratch, base, tip, objects_env(scratch, mirror, line_repo, into=into)
            )
            against = _clashes(scratch, mirror, line_repo, tip, base, changed, others, into)
            merged, clashes = await asyncio.gather(onto_base, against)
        applies, conflicts = merged.clean, merged.conflicts
    return Change(
        repo=repo,
        agent=agent,
        branch=branch,
        base_ref=base_ref,
        fork_sha=fork_sha,
        base_sha=base,
        head_sha=tip,
        base_moved=moved,
        commits=commits,
        more_commits=more,
        files=tuple(files[:FILES_SHOWN]),
        more_files=max(0, len(files) - FILES_SHOWN),
        applies=applies,
        conflicts=conflicts,
        clashes=clashes,
    )


async def diff_of(
    scratch: Path,
    mirror: Path,
    line_repo: Path,
    *,
    branch: str,
    base_ref: str,
    path: str | None = None,
) -> str:
    """The diff of ``branch`` against where it left ``base_ref`` (one file's when ``path``),
    cut at :data:`DIFF_CAP` with a line saying so; empty when the branch holds nothing."""
    tip, base = await asyncio.gather(
        g.rev(line_repo, f"refs/heads/{branch}"), g.rev(mirror, f"refs/heads/{base_ref}")
    )
    if tip is None or base is None:
        return ""
    env = objects_env(scratch, mirror, line_repo)
    fork = await _merge_base(scratch, base, tip, env)
    args = ["diff", "--no-color", "--no-ext-diff", "--no-textconv", "-M", fork, tip]
    if path is not None:
        args += ["--", f":(literal){path}"]
    out = (await g.git(scratch, args, env=env, what="git diff")).out
    if len(out) <= DIFF_CAP:
        return out.decode("utf-8", errors="replace")
    cut = out.rfind(b"\n", 0, DIFF_CAP) + 1 or DIFF_CAP
    shown = out[:cut].decode("utf-8", errors="replace")
    return f"{shown}\n[diff cut after {cut:,} of {len(out):,} bytes]\n"


async def unpushed_count(scratch: Path, mirror: Path, line_repo: Path, branch: str) -> int:
    """Commits of ``branch`` that no upstream branch (the mirror's ``refs/heads/*``) holds.

    The tip's commits live in the line repo, the upstream's refs and objects in the mirror:
    the count runs in the mirror, reading the line's objects through the environment for
    this one read-only command, so the mirror gains nothing (``scratch`` is not needed)."""
    del scratch
    tip = await g.rev(line_repo, f"refs/heads/{branch}")
    if tip is None:
        return 0
    ran = await g.git(
        mirror,
        ["rev-list", "--count", tip, "--not", "--branches"],
        env=g.alternates(line_repo),
        what="git rev-list",
    )
    return int(ran.text.strip() or 0)


def forget() -> None:
    """Drop every remembered set of changed files (tests)."""
    _CHANGED.clear()


async def _count(repo: Path, revs: Sequence[str], env: dict[str, str]) -> int:
    out = await g.text(repo, ["rev-list", "--count", *revs], env=env)
    return int(out or 0)


async def _merge_base(repo: Path, one: str, two: str, env: dict[str, str]) -> str:
    return await g.text(repo, ["merge-base", one, two], env=env, what="git merge-base")


async def _commits(
    repo: Path, tip: str, exclude: Sequence[str], env: dict[str, str]
) -> tuple[tuple[CommitLine, ...], int]:
    """The newest :data:`COMMITS_SHOWN` commits on ``tip`` and none of ``exclude``, and how
    many more there are."""
    revs = [tip, *(f"^{x}" for x in exclude)]
    log = g.git(
        repo,
        ["log", "-z", f"--max-count={COMMITS_SHOWN}", "--format=%H %s", *revs, "--"],
        env=env,
        what="git log",
    )
    ran, total = await asyncio.gather(log, _count(repo, revs, env))
    shown = tuple(
        CommitLine(rec[:12].decode("ascii"), _name(rec[41:]))
        for rec in ran.out.split(b"\0")
        if len(rec) >= 40
    )
    return shown, max(0, total - len(shown))


async def _files(
    repo: Path, base: str, tip: str, env: dict[str, str]
) -> tuple[list[FileStat], frozenset[str]]:
    """What ``tip`` changes since it left ``base``, file by file, and every path it touches
    (both names of a rename)."""
    if tip == base:
        return [], frozenset()
    fork = await _merge_base(repo, base, tip, env)
    if fork == tip:
        return [], frozenset()
    ran = await g.git(
        repo,
        ["diff", "--raw", "--numstat", "-z", "-M", "--no-ext-diff", "--no-textconv", fork, tip],
        env=env,
        what="git diff --numstat",
    )
    return _parse_stat(ran.out.split(b"\0"))


def _parse_stat(tokens: list[bytes]) -> tuple[list[FileStat], frozenset[str]]:
    """Parse ``git diff --raw --numstat -z``: the raw records (status, names) come first,
    then the numstat records in the same order."""
    raw: list[tuple[str, str]] = []
    touched: set[str] = set()
    i = 0
    while i < len(tokens) and tokens[i].startswith(b":"):
        status = tokens[i].rsplit(b" ", 1)[-1][:1].decode("ascii", errors="replace")
        names = 2 if status in ("R", "C") else 1
        paths = [_name(t) for t in tokens[i + 1 : i + 1 + names]]
        touched.update(paths)
        raw.append((status, paths[-1] if paths else "?"))
        i += 1 + names
    counts: list[tuple[int | None, int | None]] = []
    while i < len(tokens) and tokens[i]:
        fields = tokens[i].split(b"\t", 2)
        if len(fields) < 3:
            break
        counts.append((_number(fields[0]), _number(fields[1])))
        i += 1 if fields[2] else 3
    files = [
        FileStat(path, *(counts[n] if n < len(counts) else (None, None)), status=status)
        for n, (status, path) in enumerate(raw)
    ]
    return files, frozenset(touched)


def _number(field: bytes) -> int | None:
    return int(field) if field.isdigit() else None


def _name(raw: bytes) -> str:
    return raw.decode("utf-8", errors="replace")


def _remember(base: str, tip: str, changed: frozenset[str]) -> None:
    _CHANGED[(base, tip)] = changed
    _CHANGED.move_to_end((base, tip))
    while len(_CHANGED) > _CACHE_SIZE:
        _CHANGED.popitem(last=False)


async def _changed_files(scratch: Path, base: str, tip: str, env: dict[str, str]) -> frozenset[str]:
    """Every path ``tip`` touches since it left ``base`` (remembered by the two commits)."""
    known = _CHANGED.get((base, tip))
    if known is not None:
        _CHANGED.move_to_end((base, tip))
        return known
    ran = await g.git(
        scratch,
        ["diff", "--name-only", "-z", "--no-renames", f"{base}...{tip}"],
        env=env,
        what="git diff --name-only",
    )
    changed = frozenset(_name(p) for p in ran.out.split(b"\0") if p)
    _remember(base, tip, changed)
    return changed


async def _clashes(
    scratch: Path,
    mirror: Path,
    line_repo: Path,
    tip: str,
    base: str,
    changed: frozenset[str],
    others: Sequence[OtherLine],
    into: Path,
) -> tuple[Clash, ...]:
    """The other lines whose changes conflict with this one's, naming the files both
    changed. Only lines that touch a file this one touches are merged; a conflict in a
    file only one of them changed is the base's, not a clash (it is in ``conflicts``)."""
    gate = asyncio.Semaphore(CLASH_CHECKS_AT_ONCE)

    async def check(other: OtherLine) -> Clash | None:
        async with gate:
            theirs = other.head_sha or await g.rev(other.line_repo, f"refs/heads/{other.branch}")
            if theirs is None or theirs == tip:
                return None
            env = objects_env(scratch, mirror, other.line_repo)
            both = changed & await _changed_files(scratch, base, theirs, env)
            if not both:
                return None
            env = objects_env(scratch, mirror, line_repo, other.line_repo, into=into)
            try:
                merged = await merge_tree(scratch, tip, theirs, env)
            except g.GitFailed as exc:
                log.warning("clash check of %s against %s failed: %s", tip, theirs, exc)
                return None
            files = tuple(f for f in merged.conflicts if f in both)
            return Clash(other.agent, other.branch, files) if files else None

    found = await asyncio.gather(*(check(o) for o in others if o.line_repo != line_repo))
    return tuple(c for c in found if c is not None)


@contextlib.contextmanager
def _throwaway_objects(scratch: Path) -> Iterator[Path]:
    """A temporary object directory inside ``scratch`` for what dry-run merges write."""
    tmp = Path(tempfile.mkdtemp(prefix="dry-", dir=scratch))
    try:
        yield tmp
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

"""Branches on the upstream that are not Fleetwarden's stay someone else's.

A fresh state dir on an upstream that already has ``fw/coder/1`` (an earlier Fleetwarden's,
a teammate's) would cut ``fw/coder/1`` again and then push onto it. So a new line's branch
is named after asking the upstream which branches it has now (``git ls-remote``,
:meth:`fleet.repos.upstream.mirror.Mirror.heads`): :func:`first_free` skips every name it or an
earlier line has (``-2``, ``-3``, … after it).
And a line's first push (:func:`push_line_branch`) refuses a branch the upstream has at a
commit that is none of the line's own, in Fleetwarden's words
(:func:`fleet.repos.upstream.git_words.branch_not_ours`); a push the upstream refuses as not a
fast-forward is said by :mod:`fleet.repos.upstream.git_words` too.
"""

from __future__ import annotations

from collections.abc import Collection
from pathlib import Path
from typing import Final

from fleet.ledger.records.lines import LineRecord
from fleet.repos import git as g
from fleet.repos.desk import RepoError
from fleet.repos.upstream.git_words import branch_not_ours
from fleet.repos.upstream.mirror import Mirror

OWN_COMMITS: Final = 100_000
"""A line's own commits read at most when telling whether an upstream tip is one of them."""


def first_free(wanted: str, taken: Collection[str]) -> str:
    """``wanted``, or the first of ``wanted-2``, ``wanted-3``, … not in ``taken``."""
    name, n = wanted, 1
    while name in taken:
        n += 1
        name = f"{wanted}-{n}"
    return name


async def push_line_branch(mirror: Mirror, line_repo: Path, line: LineRecord, sha: str) -> None:
    """Push ``sha`` to ``line``'s branch upstream. Before its first push, a branch the
    upstream already has at a commit that is not one of the line's own is refused: it is
    not Fleetwarden's to take over."""
    ref = f"refs/heads/{line.branch}"
    if line.pushed_sha is None:
        there = (await mirror.heads()).get(line.branch)
        if there is not None and there not in await _own_commits(line_repo, sha, line.fork_sha):
            raise RepoError(branch_not_ours(mirror.upstream, line.branch, line.agent))
    await mirror.push(sha, ref, objects=[line_repo], agent=line.agent)


async def _own_commits(line_repo: Path, sha: str, fork: str) -> set[str]:
    """The commits ``sha`` has that ``fork`` has not: the line's own."""
    ran = await g.git(
        line_repo,
        ["rev-list", f"--max-count={OWN_COMMITS}", sha, f"^{fork}", "--"],
        what="git rev-list (a line's commits)",
    )
    return set(ran.text.split())

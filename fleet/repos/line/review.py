"""A review agent's view of a line: the change of the line's base to one of its commits
(:func:`line_diff`, capped), and the reviewer's own checkout of that commit
(:func:`make_review_checkout`): a clone of the line's door repo, detached at the commit,
with no ``origin`` — nothing of it is ever harvested or pushed, and its sandbox shows it
read-only (:attr:`fleet.sandbox.policy.Layout.workdir_writable`). The reviewer's run ended,
its checkout is removed (:func:`remove_review_checkout`).

The line's own ``.gitattributes`` is the author's, and could hide its change from the
reviewer: ``-diff`` or ``binary`` shows a file's change as "Binary files differ", a
``diff=DRIVER`` whose textconv some config defines shows what the driver prints instead,
``export-ignore`` leaves a file out of an archive, ``working-tree-encoding`` checks a file
out re-encoded. So the change is read with attributes off (:data:`ATTRIBUTES_OFF`: no
textconv, no external diff, every file as text, no attributes file, and a git that reads
attributes from a tree — ``--attr-source``, ``attr.tree`` — pointed at the empty one), and
the checkout is made, and read by the reviewer's own git, under :data:`NO_ATTRIBUTES` in
its ``info/attributes``, which outranks every ``.gitattributes`` of the tree."""

from __future__ import annotations

import asyncio
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from fleet.repos import git as g

DIFF_CAP: Final = 200 * 1024
"""Bytes of a line's change a review prompt quotes at most."""
_SHA: Final = re.compile(r"[0-9a-f]{7,64}")
REVIEW_MARK: Final = ".review-"
"""Between a review agent's name and its round's id in its checkout's name."""
NO_ATTRIBUTES: Final = (
    "* !diff !merge !text !eol !crlf !filter !ident !working-tree-encoding"
    " !export-ignore !export-subst !whitespace\n"
)
"""A review checkout's ``info/attributes``: every attribute that changes what a file's
checkout, diff or archive shows, back to git's own default for every path."""
ATTRIBUTES_OFF: Final = ("-c", "core.attributesFile=/dev/null")
"""Git's options that leave out every attributes file but the tree's own."""
DIFF_AS_IS: Final = ("--no-color", "--no-ext-diff", "--no-textconv", "--text")
"""``git diff``'s options that show each file's change as its bytes, whatever its
attributes say."""


@dataclass(frozen=True, slots=True)
class ReviewCheckout:
    """What a review agent's launch asks of its checkout: line ``line_id`` of ``repo``,
    detached at ``commit``, for round of review ``review_id``."""

    repo: str
    line_id: int
    commit: str
    review_id: int

    def __post_init__(self) -> None:
        if not _SHA.fullmatch(self.commit):
            raise ValueError(f"a review checks out a commit's id, not {self.commit!r}")

    def path_under(self, checkouts: Path, reviewer: str) -> Path:
        """Where ``reviewer``'s checkout of it lies under ``checkouts``: named with a dot,
        which no agent's name has, so it is never an agent's own checkout
        (``NAME-LINE``, e.g. agent ``rev-review``'s ``rev-review-4``)."""
        return checkouts / self.repo / f"{reviewer}{REVIEW_MARK}{self.review_id}"


@dataclass(frozen=True, slots=True)
class LineDiff:
    """A line's change as a review prompt quotes it: its ``text`` and, when it was cut at
    :data:`DIFF_CAP`, how many bytes the whole had (``0``: not cut)."""

    text: str
    whole: int = 0


async def line_diff(line_repo: Path, base: str, commit: str, cap: int = DIFF_CAP) -> LineDiff:
    """The change from ``base`` to ``commit`` in ``line_repo`` (a line's door repo): its
    files' summary, then the patch, cut at ``cap`` bytes."""
    for sha in (base, commit):
        if not _SHA.fullmatch(sha):
            raise ValueError(f"a line's change is between commit ids, not {sha!r}")
    env = await _empty_attributes(line_repo)
    stat = await g.git(
        line_repo, [*ATTRIBUTES_OFF, "diff", "--stat", *DIFF_AS_IS, base, commit, "--"],
        env=env, keep=cap,
    )  # fmt: skip
    patch = await g.git(
        line_repo, [*ATTRIBUTES_OFF, "diff", *DIFF_AS_IS, base, commit, "--"], env=env, keep=cap
    )  # never held whole: a file that packs small can diff to gigabytes
    shown = stat.out + b"\n" + patch.out
    whole = len(shown) + stat.more + patch.more
    if whole <= cap:
        return LineDiff(shown.decode(errors="replace"))
    return LineDiff(shown[:cap].decode(errors="ignore"), whole)


async def make_review_checkout(line_repo: Path, dest: Path, commit: str) -> Path:
    """``dest``, a checkout of ``line_repo`` detached at ``commit`` with no remote (made
    again when a lost run left one there)."""
    if not _SHA.fullmatch(commit):
        raise ValueError(f"a review checks out a commit's id, not {commit!r}")
    await asyncio.to_thread(_clear, dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    clone = ["clone", "-q", "--no-local", "--no-checkout", "--no-tags", "--", str(line_repo)]
    await g.git(None, [*clone, str(dest)], what="making the review checkout")
    info = dest / ".git" / "info"  # before the checkout: every file checked out as it is
    await asyncio.to_thread(info.mkdir, parents=True, exist_ok=True)
    await asyncio.to_thread((info / "attributes").write_text, NO_ATTRIBUTES)
    checkout = ["-c", "advice.detachedHead=false", "checkout", "-q", "--detach", commit]
    await g.git(dest, [*ATTRIBUTES_OFF, *checkout], env=await _empty_attributes(dest))
    await g.git(dest, ["remote", "remove", "origin"])
    return dest


async def _empty_attributes(repo: Path) -> dict[str, str]:
    """The environment and config that make a git which reads attributes from a tree
    (2.40's ``GIT_ATTR_SOURCE``, 2.42's ``attr.tree``; older ones read none in a bare
    repository) read them from the empty tree, written into ``repo`` so it is there."""
    empty = await g.text(repo, ["hash-object", "-w", "-t", "tree", "/dev/null"])
    return {
        "GIT_ATTR_SOURCE": empty,
        "GIT_CONFIG_COUNT": "1",
        "GIT_CONFIG_KEY_0": "attr.tree",
        "GIT_CONFIG_VALUE_0": empty,
    }


async def remove_review_checkout(dest: Path) -> None:
    """``dest`` gone (it may be already)."""
    await asyncio.to_thread(_clear, dest)


def _clear(dest: Path) -> None:
    if dest.is_symlink() or dest.is_file():
        dest.unlink()
    elif dest.exists():
        shutil.rmtree(dest)

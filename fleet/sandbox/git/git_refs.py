"""A repository's HEAD read in Python, running nothing: for hosts where git cannot run in
a sandbox (:mod:`fleet.sandbox.git.git_probe`), and where a linked worktree's git directories
are, for that sandbox to show.

``<workdir>/.git`` is a directory of its own, or a file naming the git directory of a
linked worktree (``gitdir: …``, whose ``commondir`` names the main one); a ``.git``
symlink is not followed. ``HEAD``, a loose ref under ``refs/`` and ``packed-refs`` are read
through :mod:`fleet.lane_files`: never through a symlink, only regular files, each
size-capped, so a FIFO or a huge file the agent left cannot stall or swamp Fleetwarden.
"""

from __future__ import annotations

import os
import re
import stat
from pathlib import Path
from typing import Final

from fleet.lane_files import read_lane_file

SMALL_CAP: Final = 4096
PACKED_CAP: Final = 64 * 1024 * 1024
MAX_DEPTH: Final = 5  # symbolic refs followed at most

_OBJECT = re.compile(r"[0-9a-f]{40}|[0-9a-f]{64}")
_REF = re.compile(r"refs/[A-Za-z0-9._/+@-]{1,240}")


def repo_root(workdir: Path) -> Path | None:
    """``workdir`` when it is a repository's top (it has a ``.git``), else ``None``. A
    directory inside another repository is not one of its own: that repository's HEAD is
    not the run's (a state dir under a clone of Fleetwarden, a workdir below a project)."""
    if workdir == Path(workdir.anchor):
        return None
    return workdir if os.path.lexists(workdir / ".git") else None


def git_dirs(workdir: Path) -> tuple[Path, Path] | None:
    """The git directory of ``workdir`` and its common one (the same but for a linked
    worktree), or ``None`` when it has neither a ``.git`` directory nor a ``.git`` file
    naming one."""
    dot = workdir / ".git"
    try:
        kind = stat.S_IFMT(os.lstat(dot).st_mode)
    except OSError:
        return None
    if kind == stat.S_IFDIR:
        return dot, dot
    text = _small(workdir, dot) if kind == stat.S_IFREG else None
    if not text or not text.startswith("gitdir:"):
        return None
    own = Path(os.path.normpath(workdir / text.removeprefix("gitdir:").strip()))
    common = _small(workdir, own / "commondir") or "."
    return own, Path(os.path.normpath(own / common))


def read_head(workdir: Path) -> str | None:
    """The object id HEAD names in the repository at ``workdir`` (full hex), or ``None`` when
    it is no repository's top, HEAD is unborn, or something on the way is not a plain
    file."""
    root = repo_root(workdir)
    found = git_dirs(root) if root is not None else None
    if root is None or found is None:
        return None
    own, common = found
    workdir = root
    name = "HEAD"
    for _ in range(MAX_DEPTH):
        text = _small(workdir, (own if name == "HEAD" else common) / name)
        if text is None and name != "HEAD":
            return _packed(workdir, common / "packed-refs", name)
        if text is None:
            return None
        if _OBJECT.fullmatch(text):
            return text
        target = text.removeprefix("ref:").strip() if text.startswith("ref:") else ""
        if not _REF.fullmatch(target) or ".." in target or "//" in target:
            return None
        name = target
    return None


def _small(workdir: Path, path: Path) -> str | None:
    """A small file's text; ``None`` if it is missing, ``""`` if it is there but no plain
    file of its own. Below ``workdir`` (the agent's), no symlink on the way is followed."""
    root = workdir if path.is_relative_to(workdir) else path.parent
    try:
        data = read_lane_file(root, path.relative_to(root).as_posix(), SMALL_CAP)
    except OSError:
        return ""
    return data.decode("utf-8", errors="replace").strip() if data is not None else None


def _packed(workdir: Path, path: Path, ref: str) -> str | None:
    root = workdir if path.is_relative_to(workdir) else path.parent
    try:
        data = read_lane_file(root, path.relative_to(root).as_posix(), PACKED_CAP)
    except OSError:
        return None
    wanted = (" " + ref).encode()
    for line in (data or b"").splitlines():
        if line.endswith(wanted):
            object_id = line[: -len(wanted)].decode("ascii", errors="replace")
            return object_id if _OBJECT.fullmatch(object_id) else None
    return None

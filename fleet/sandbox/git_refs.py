"""A repository's HEAD read in Python, running nothing: for hosts where git cannot run in
a sandbox (:mod:`fleet.sandbox.git_probe`).

Only ``<workdir>/.git`` as a directory of its own is read — a ``.git`` file (a linked
worktree, a submodule) or symlink points elsewhere and is not followed. ``HEAD``, a loose
ref under ``refs/`` and ``packed-refs`` are read through :mod:`fleet.lane_files`: never
through a symlink, only regular files, each size-capped, so a FIFO or a huge file the
agent left cannot stall or swamp Fleetwarden.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Final

from fleet.lane_files import read_lane_file

SMALL_CAP: Final = 4096
PACKED_CAP: Final = 64 * 1024 * 1024
MAX_DEPTH: Final = 5  # symbolic refs followed at most

_OBJECT = re.compile(r"[0-9a-f]{40}|[0-9a-f]{64}")
_REF = re.compile(r"refs/[A-Za-z0-9._/+@-]{1,240}")


def read_head(workdir: Path) -> str | None:
    """The object id HEAD names in ``workdir/.git`` (full hex), or ``None`` when there is
    no such repository, HEAD is unborn, or something on the way is not a plain file."""
    name = "HEAD"
    for _ in range(MAX_DEPTH):
        text = _small(workdir, name)
        if text is None and name != "HEAD":
            return _packed(workdir, name)
        if text is None:
            return None
        if _OBJECT.fullmatch(text):
            return text
        target = text.removeprefix("ref:").strip() if text.startswith("ref:") else ""
        if not _REF.fullmatch(target) or ".." in target or "//" in target:
            return None
        name = target
    return None


def _small(workdir: Path, name: str) -> str | None:
    try:
        data = read_lane_file(workdir, f".git/{name}", SMALL_CAP)
    except OSError:
        return ""  # there, but no plain file of its own: read as no ref at all
    return data.decode("ascii", errors="replace").strip() if data is not None else None


def _packed(workdir: Path, ref: str) -> str | None:
    try:
        data = read_lane_file(workdir, ".git/packed-refs", PACKED_CAP)
    except OSError:
        return None
    wanted = (" " + ref).encode()
    for line in (data or b"").splitlines():
        if line.endswith(wanted):
            object_id = line[: -len(wanted)].decode("ascii", errors="replace")
            return object_id if _OBJECT.fullmatch(object_id) else None
    return None

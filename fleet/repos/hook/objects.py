"""Every object a push asks the line to take, as the git door's hook reads them: each tree
and blob (and commit) the new tip reaches that the line's own branches (its base and its
branch) do not, with the path it is found at.

Two rules rest on this list. **A push carries what it adds**: an object the line never had
must be in the push itself (git's quarantine), never taken from the mirror's store the
door repo borrows — else a commit could name another upstream branch's tree, or a blob of
it, that the run was never given. And **every path is read**: a file's or a folder's name
is the agent's text as much as its content, so the secret scan reads the names too.
"""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from fleet.repos.hook.scan import (
    GIT_TIMEOUT,
    Added,
    TooBig,
    fed,
    git_argv,
    run_git,
    without_quarantine,
)
from fleet.repos.hook.thin import borrowed_bases

MAX_OBJECTS: Final = 1_000_000
"""New objects one push may bring; past it the push is refused."""
MAX_LISTING_BYTES: Final = 256 * 1024 * 1024
_RECORD: Final = re.compile(rb"([0-9a-f]{40})(?: (.*))?\Z", re.DOTALL)


@dataclass(frozen=True, slots=True)
class NewObject:
    """An object the push's tip reaches that the line's branches do not."""

    sha: str
    path: str  # where the tip's trees hold it ("" for a commit or the root tree)


def new_objects(new: str) -> list[NewObject]:
    """The objects ``new`` reaches beyond this repository's branches
    (:class:`TooBig` past :data:`MAX_OBJECTS`). A path holding a newline spans lines of
    git's listing: it is joined back to its record."""
    proc = subprocess.Popen(
        git_argv("rev-list", "--objects", new, "--not", "--branches"),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
    )
    lines: list[bytes] = []
    try:
        assert proc.stdout is not None
        size = 0
        for raw in proc.stdout:
            lines.append(raw.rstrip(b"\n"))
            size += len(raw)
            if len(lines) > MAX_OBJECTS or size > MAX_LISTING_BYTES:
                raise TooBig(f"it brings more than {MAX_OBJECTS:,} new files and folders")
        proc.wait(timeout=GIT_TIMEOUT)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
    if proc.returncode != 0:
        raise RuntimeError(f"git rev-list exited {proc.returncode}")
    found: list[NewObject] = []
    for raw in lines:
        match = _RECORD.fullmatch(raw)
        if match is None:
            if found and raw:
                last = found[-1]
                found[-1] = NewObject(last.sha, last.path + "\n" + _text(raw))
            continue
        found.append(NewObject(match[1].decode(), _text(match[2] or b"")))
    return found


def not_carried(objects: Sequence[NewObject]) -> list[NewObject]:
    """Those of ``objects`` the push did not carry — missing from its quarantine (all of
    them when it brought none) — and what it built on content it was never given: the base
    of each of its thin pack's deltas that the line's branches do not reach (:mod:`.thin`:
    git copies such a base into the quarantine whole from the store the door repo borrows,
    and a delta against it makes a new file of another branch's content). Of the missing,
    what the line's own branches reach after all is let be. A file the push sends whole is
    its own, even when another branch holds the same content."""
    quarantine = os.environ.get("GIT_QUARANTINE_PATH", "")
    borrowed = borrowed_bases(quarantine)
    if not objects and not borrowed:
        return []
    if quarantine:
        inside_env = without_quarantine()
        inside_env["GIT_OBJECT_DIRECTORY"] = quarantine
        inside = _present(objects, inside_env)
    else:
        inside = set()
    if borrowed:  # only what the store outside the push holds can have been copied in
        borrowed &= _present([NewObject(sha, "") for sha in borrowed], without_quarantine())
    suspect = {o.sha for o in objects if o.sha not in inside} | borrowed
    if suspect:  # git's listing may name what an older commit of the line holds
        suspect -= _on_the_line(suspect)
    found = [o for o in objects if o.sha in suspect]
    named = {o.sha for o in found}
    found += [NewObject(sha, f"(a delta's base, {sha[:12]})") for sha in sorted(suspect - named)]
    return found


def _present(objects: Sequence[NewObject], env: dict[str, str]) -> set[str]:
    """The shas of ``objects`` git finds with ``env``."""
    out = fed(("cat-file", "--batch-check=%(objectname)"), [o.sha for o in objects], env)
    lines = out.decode("ascii", errors="replace").splitlines()
    return {line.strip() for line in lines if not line.endswith(" missing")}


def tree_names(objects: Sequence[NewObject], commit: str) -> list[Added]:
    """Every name in every new tree of the push (a file or folder renamed onto an old
    object, a name with a newline in it), read from the tree objects themselves, as text
    the secret scan reads (each once); and the paths git listed them at."""
    types = fed(("cat-file", "--batch-check=%(objectname) %(objecttype)"), [o.sha for o in objects])
    trees = [
        line.split()[0]
        for line in types.decode("ascii", errors="replace").splitlines()
        if line.endswith(" tree")
    ]
    names: dict[str, None] = dict.fromkeys(o.path for o in objects if o.path)
    if trees:
        names.update(dict.fromkeys(_entry_names(fed(("cat-file", "--batch"), trees), len(trees))))
    return [Added(commit, "(file name)", n, name) for n, name in enumerate(names, start=1)]


def _entry_names(out: bytes, count: int) -> list[str]:
    """The entry names of ``count`` tree objects as ``cat-file --batch`` prints them."""
    names: list[str] = []
    at = 0
    for _ in range(count):
        end = out.index(b"\n", at)
        size = int(out[at:end].split()[2])
        body, at = out[end + 1 : end + 1 + size], end + 1 + size + 1
        pos = 0
        while pos < len(body):
            space = body.index(b" ", pos)
            nul = body.index(b"\0", space)
            names.append(_text(body[space + 1 : nul]))
            pos = nul + 1 + 20
    return names


def _on_the_line(shas: set[str]) -> set[str]:
    """Those of ``shas`` the line's branches reach after all: ``rev-list --objects A --not
    B`` leaves out only what B's edge reaches, not every tree of B's history. The tips'
    trees first (a file or a tree put back as the base has it), then the whole history,
    stopping once every one is found."""
    found: set[str] = set()
    _, refs = run_git("for-each-ref", "--format=%(objectname)", "refs/heads/")
    for tip in refs.split():
        _, listing = run_git("ls-tree", "-r", "-t", "-z", "--full-tree", "--object-only", tip)
        _, root = run_git("rev-parse", f"{tip}^{{tree}}")
        found |= shas & {root.strip(), *listing.split("\0")}
    left = shas - found
    if not left:
        return found
    proc = subprocess.Popen(
        git_argv("rev-list", "--objects", "--branches"),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
    )
    try:
        assert proc.stdout is not None
        for raw in proc.stdout:
            sha = raw[:40].decode("ascii", errors="replace")
            if sha in left:
                left.discard(sha)
                found.add(sha)
                if not left:
                    break
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
    return found


def _text(raw: bytes) -> str:
    return raw.decode("utf-8", errors="replace")

"""Whether a folder or file Fleetwarden trusts is its own: no user but Fleetwarden's (or
root) may change what it holds.

A place is its own when Fleetwarden's uid or root owns it and neither its group nor others
may write it: whoever else could would swap the config it reads, or plant a link where it
writes. Every directory the kernel passes through to reach the place is held to the same
rule — those a symbolic link leads through too, as the path resolves — but one that others
may write is a safe way through when its sticky bit is set and root or Fleetwarden's uid
owns it (``/tmp``): there no one may rename or remove another's entry. A sticky directory
another user owns is not: its owner may. A symbolic link on the way is trusted only when
root or Fleetwarden's uid owns it and its directory is one only they may write: in a
sticky directory the link's owner may re-point it whenever they like, after it was judged.

:func:`not_ours` reads the file system; :func:`stat_problem` is the rule itself.
"""

from __future__ import annotations

import errno
import os
import pwd
import shlex
import stat
from dataclasses import dataclass
from pathlib import Path

from fleet.errors import FleetwardenError

_MAX_LINKS = 40  # as the kernel's own bound on links followed in one path


class NotOurs(FleetwardenError):
    """A place Fleetwarden would trust that another user owns or may write; the message
    says which, and how to make it Fleetwarden's own."""

    def __init__(self, path: Path, why: str, fix: str) -> None:
        super().__init__(f"{path} {why}")
        self.path = path
        self.why = why
        self.fix = fix
        """A command that makes ``path`` Fleetwarden's own (``chown …`` / ``chmod go-w …``)."""


@dataclass(frozen=True, slots=True)
class Passed:
    """A directory on the way to a place, or the place itself, as found."""

    path: Path
    info: os.stat_result
    within: os.stat_result | None = None
    """For a symbolic link: the directory holding it (``info`` is the link's own)."""


def stat_problem(
    info: os.stat_result, uid: int, *, passage: bool, owner_only: bool
) -> tuple[str, str] | None:
    """Why a place of ``info`` at ``PATH`` is not uid ``uid``'s own, and the commands that
    make it so (with ``PATH`` to fill in), or ``None``. ``passage``: a directory only passed
    through (sticky and writable by others is safe when root or ``uid`` owns it);
    ``owner_only``: root owning it is not enough (a state dir)."""
    why, fix = [], []
    owners = (uid,) if owner_only else (uid, 0)
    if info.st_uid not in owners:
        why.append(f"is owned by {_who(info.st_uid)}, not by Fleetwarden's user {_who(uid)}")
        fix.append(f"chown {uid} PATH")
    writable = info.st_mode & (stat.S_IWGRP | stat.S_IWOTH)
    sticky = stat.S_ISDIR(info.st_mode) and info.st_mode & stat.S_ISVTX
    if writable and not (passage and sticky and info.st_uid in (uid, 0)):
        by = {
            stat.S_IWGRP: "its group",
            stat.S_IWOTH: "others",
            stat.S_IWGRP | stat.S_IWOTH: "its group and others",
        }[writable]
        why.append(f"may be written by {by} (mode {stat.S_IMODE(info.st_mode):04o})")
        fix.append("chmod go-w PATH")
    if not why:
        return None
    return ", and ".join(why), " && ".join(fix)


def passed(path: Path) -> tuple[list[Passed], bool]:
    """Every directory the kernel passes through to reach ``path`` (those a link leads
    through included), then ``path`` itself when it exists; and whether it does. Raises
    ``OSError`` (``ELOOP`` past 40 links)."""
    full = path if path.is_absolute() else Path.cwd() / path  # ".." kept: links decide it
    pending = list(reversed(full.parts[1:]))
    here, links = Path("/"), 0
    found = [Passed(here, os.stat(here))]
    while pending:
        name = pending.pop()
        if name in ("", "."):
            continue
        if name == "..":
            here = here.parent
            continue
        step = here / name
        try:
            info = os.lstat(step)
        except (FileNotFoundError, NotADirectoryError):
            return found, False
        if stat.S_ISLNK(info.st_mode):
            links += 1
            if links > _MAX_LINKS:
                raise OSError(errno.ELOOP, os.strerror(errno.ELOOP), str(path))
            found.append(Passed(step, info, os.stat(here)))
            target = Path(os.readlink(step))
            if target.is_absolute():
                here = Path("/")
            pending.extend(reversed(target.parts[1:] if target.is_absolute() else target.parts))
            continue
        here = step
        found.append(Passed(here, info))
    return found, True


def not_ours(path: Path, *, uid: int | None = None, owner_only: bool = False) -> NotOurs | None:
    """What makes ``path`` (or, when it does not exist yet, the directory it would be made
    in) not Fleetwarden's own, or ``None``. ``uid``: Fleetwarden's (default: this process's
    effective uid); ``owner_only``: ``path`` itself must be that uid's, root's is not
    enough. Raises ``OSError`` when the path cannot be read."""
    me = os.geteuid() if uid is None else uid
    found, exists = passed(path)
    for index, place in enumerate(found):
        if place.within is not None:
            if (link := _link_problem(place.path, place.info, place.within, me)) is not None:
                return link
            continue
        last = exists and index == len(found) - 1
        problem = stat_problem(place.info, me, passage=not last, owner_only=owner_only and last)
        if problem is not None:
            why, fix = problem
            return NotOurs(place.path, why, fix.replace("PATH", shlex.quote(str(place.path))))
    return None


def _link_problem(
    path: Path, info: os.stat_result, within: os.stat_result, uid: int
) -> NotOurs | None:
    """Why the symbolic link at ``path`` (``info``, in a directory of ``within``) is no
    safe way through, or ``None``."""
    held = within.st_mode & (stat.S_IWGRP | stat.S_IWOTH)
    if info.st_uid in (uid, 0) and not held:
        return None
    why = "is a link"
    if info.st_uid not in (uid, 0):
        why += f" owned by {_who(info.st_uid)}"
    if held:
        why += f" in a folder others may write (mode {stat.S_IMODE(within.st_mode):04o})"
    why += ", which may be re-pointed after it was checked; give the real path instead"
    return NotOurs(path, why, f"realpath {shlex.quote(str(path))}")


def _who(uid: int) -> str:
    try:
        return f"{pwd.getpwuid(uid).pw_name} (uid {uid})"
    except KeyError:
        return f"uid {uid}"

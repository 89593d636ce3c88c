"""Where a sandbox's mounts go on this host's files, as the user bubblewrap runs as walks
them — so the sandbox is built for any layout an operator may choose.

bubblewrap makes every mount of a sandbox as the user it runs as (an agent's own uid when
Fleetwarden is root), and that user walks the host's directories with its own rights. A
mount point below a directory it may not enter — a 0700 ``/srv/fleet`` holding the
config's directory, the state dir and the workdirs — can be neither looked up nor made
(``Can't mkdir /srv/fleet/cfg: Permission denied``); and an absolute symlink on the way is
followed from the sandbox's own root, where its target is not. So:

* every path the sandbox hides, binds or binds back is given at the place it really lies
  (its symlinks resolved);
* a directory on the way to one of them that the user cannot enter is **closed**: the
  sandbox hides it whole (an empty tmpfs over it — the user saw nothing in it anyway),
  and what the agent needs below it (its workdir and HOME, Fleetwarden's Python) is bound
  back as it would be below any hidden path;
* a path the agent needs (its program's install, a PATH directory) is bound back only
  if the way to it never enters the agent's own workdir or HOME: what lies there, or
  behind a symlink there, the agent chose, and it sees its own places anyway;
* a path the agent was given by another name — through a symlink the sandbox hides,
  because the link lies in a hidden or closed directory — is bound at that name too, so
  its HOME and workdir answer to the names in its environment.

What no sandbox can be built around is :class:`Unreachable`: ``/`` itself closed to the
user. :func:`closed_on_way` says, for ``check-config``, which directories agents' users
cannot enter on the way to the places they need.
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Collection, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from fleet.sandbox.policy import Bind

BASE_COVERED = (Path("/tmp"), Path("/run"), Path("/dev"), Path("/proc"))
"""What every sandbox mounts afresh: paths below these are made inside the sandbox."""
_MAX_LINKS = 40  # as the kernel: more symlinks than this on one way is a loop


class Unreachable(OSError):
    """A layout no sandbox can be built for here; the message names the directory and
    the fix."""


@dataclass(frozen=True, slots=True)
class Walker:
    """The user bubblewrap runs as: its uid and its groups."""

    uid: int
    gids: frozenset[int]

    @classmethod
    def of(cls, uid: int | None) -> Walker:
        """An agent's own ``uid`` (gid the same, no other groups), or this process's user."""
        if uid is None:
            return cls(os.getuid(), frozenset({os.getgid(), *os.getgroups()}))
        return cls(uid, frozenset({uid}))

    def enters(self, info: os.stat_result) -> bool:
        """Whether this user may search (enter) the directory ``info`` describes."""
        if self.uid == 0:
            return True
        if info.st_uid == self.uid:
            return bool(info.st_mode & stat.S_IXUSR)
        if info.st_gid in self.gids:
            return bool(info.st_mode & stat.S_IXGRP)
        return bool(info.st_mode & stat.S_IXOTH)


@dataclass(frozen=True, slots=True)
class Arranged:
    """A sandbox's paths as bubblewrap is to be given them."""

    hidden: tuple[Path, ...]  # real paths, and the closed directories
    own: tuple[Path, ...]  # the real workdir and HOME, in the order given
    needed: tuple[Path, ...]  # real paths
    aliases: tuple[Bind, ...]  # own and needed paths bound at the names they were given
    closed: tuple[Path, ...]  # directories the user cannot enter, hidden whole


def _under(path: Path, roots: Collection[Path]) -> bool:
    """Whether ``path`` is one of ``roots`` or lies below one (by their parts, as
    :meth:`~pathlib.PurePath.is_relative_to`): its own few ancestors looked up, as the
    roots hide every other agent's places and are as many as the agents."""
    if not isinstance(roots, (set, frozenset)):
        roots = frozenset(roots)
    return path in roots or not roots.isdisjoint(path.parents)


def _way(path: Path) -> Iterator[tuple[Path, list[str]]]:
    """Each directory the kernel passes on its way to ``path`` (absolute), symlinks
    followed, with the names still to walk from it; the last has none left. Raises
    ``OSError`` (``ELOOP``) on a symlink loop."""
    todo = [part for part in path.parts[1:] if part not in ("", ".")]
    at, links = Path("/"), 0
    while todo:
        yield at, todo
        name = todo.pop(0)
        if name == "..":
            at = at.parent
            continue
        step = at / name
        try:
            target = os.readlink(step)
        except OSError:  # no symlink (or not there)
            at = step
            continue
        links += 1
        if links > _MAX_LINKS:
            raise OSError(errno.ELOOP, f"too many symlinks on the way to {path}")
        target_path = Path(target)
        if target_path.is_absolute():
            at = Path("/")
        todo = [p for p in target_path.parts if p not in ("/", "", ".")] + todo
    yield at, todo


def walk(path: Path, who: Walker, covered: Collection[Path]) -> tuple[Path, Path | None]:
    """Where ``path`` (absolute) lies in the sandbox's tree, and the first directory on the
    way that ``who`` cannot enter (``None``: none). Symlinks are followed as the kernel
    follows them until the way reaches a ``covered`` directory (one the sandbox mounts
    afresh: the rest is made there as plain directories) or a closed one; below it, the
    rest of ``path`` is kept as named."""
    for at, todo in _way(path):
        if not todo or _under(at, covered):
            return at.joinpath(*todo), None
        try:
            info = os.stat(at)
        except OSError:
            return at.joinpath(*todo), None  # not there: the rest as named
        if not who.enters(info):
            return at.joinpath(*todo), at
    raise AssertionError("a way always ends")  # _way's last step has nothing left


def reaches_into(path: Path, places: Collection[Path]) -> bool:
    """Whether the way to ``path`` (absolute), its symlinks followed as the kernel follows
    them, enters one of ``places`` (an agent's workdir and HOME, which it can write): then
    what lies at the end is the agent's choice — its own file, or wherever a symlink it
    put there points — and never a reason to bind anything back."""
    try:
        return any(_under(at, places) for at, _ in _way(path))
    except OSError:
        return True  # a loop: nothing of it is bound


def closed_on_way(paths: Iterable[Path], who: Walker) -> list[Path]:
    """The directories ``who`` cannot enter on the way to ``paths`` (each once, in order)."""
    found: list[Path] = []
    for path in paths:
        _, closed = walk(path, who, BASE_COVERED)
        if closed is not None and closed not in found:
            found.append(closed)
    return found


def _real(path: Path) -> Path:
    return Path(os.path.realpath(path))


def arrange(
    hidden: Sequence[Path],
    own: Sequence[Path],
    needed: Sequence[Path],
    who: Walker,
    covered: Sequence[Path] = BASE_COVERED,
) -> Arranged:
    """The sandbox's ``hidden``, ``own`` (workdir, HOME) and ``needed`` paths as the user
    ``who`` can have them mounted (see the module's doc). Raises :class:`Unreachable`
    when ``/`` is closed to it."""
    hidden_real = list(dict.fromkeys(_real(p) for p in hidden if p != Path("/")))
    own_real = [_real(p) for p in own]
    # What the agent can write is shown with its places; a way through them is its own.
    needed = [p for p in needed if not reaches_into(p, (*own, *own_real))]
    needed_real = list(dict.fromkeys(_real(p) for p in needed))
    closed: list[Path] = []

    cover = {*covered, *hidden_real}  # and each closed directory, once found

    def note(path: Path) -> None:
        while True:  # once a closed directory is hidden, the way below it is the sandbox's
            _, shut = walk(path, who, cover)
            if shut is None:
                return
            if shut == Path("/"):
                raise Unreachable(
                    errno.EACCES,
                    f"the agent's user (uid {who.uid}) cannot enter / itself: "
                    "`chmod o+x /` (a sandbox is built below it)",
                )
            closed.append(shut)
            cover.add(shut)

    for path in (*hidden_real, *own_real, *needed_real, *own, *needed):
        note(path)
    aliases: list[Bind] = []
    for given, real, writable in (
        *((g, r, True) for g, r in zip(own, own_real, strict=True)),
        *((n, _real(n), False) for n in needed),
    ):
        dest, _ = walk(given, who, cover)
        if dest != real and _under(dest, cover) and all(b.dest != dest for b in aliases):
            aliases.append(Bind(real, dest, writable))
    return Arranged(
        hidden=(*hidden_real, *closed),
        own=tuple(own_real),
        needed=tuple(needed_real),
        aliases=tuple(aliases),
        closed=tuple(closed),
    )

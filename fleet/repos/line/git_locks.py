"""The lock files git leaves in a checkout's ``.git`` — a git killed mid-commit leaves its
``index.lock``, an agent may plant one — removed once the run has ended, so that what the
run left can still be committed; and git's "locked" refusal in plain words.

Only when the run is over (its processes gone: no git of its own can hold a lock any
more) and only in the checkout's own ``.git`` directory: not one a ``.git`` file or a
symlink names elsewhere. Every step goes through a directory descriptor and never follows
a symlink: the ``*.lock`` entries at the top of ``.git`` (``index.lock``, ``HEAD.lock``,
``config.lock``, ``packed-refs.lock`` …) and below ``.git/refs``. Only a regular file is
removed; anything else by such a name (a symlink, a directory) is left where it is and
named, and git's refusal then says which (:func:`locked_words`).

The same rules run on SSH hosts inside :data:`fleet.repos.line.host_git.HARVEST`.
"""

from __future__ import annotations

import os
import re
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

LOCKED_PREFIX: Final = "git in the checkout is locked: "
MAX_ENTRIES: Final = 100_000
"""Entries looked at below ``.git/refs`` at most: a tree an agent grew is not walked whole."""
_DIR_FLAGS: Final = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_REFUSED: Final = (  # git's words (LC_ALL=C); the lock's path, or the config file's
    (re.compile(r"Unable to create '([^']+\.lock)': File exists"), ""),
    (re.compile(r"could not lock config file (\S+): File exists"), ".lock"),
)


@dataclass(frozen=True, slots=True)
class Unlocked:
    """What was found in a checkout's ``.git``, by path from the checkout (``.git/…``)."""

    removed: tuple[str, ...] = ()
    left: dict[str, str] = field(default_factory=dict)  # name → what it is, why it stays


def clear_stale_locks(checkout: Path) -> Unlocked:
    """Remove the lock files git left in ``checkout``'s own ``.git`` (see the module's doc);
    call it only once the run that used the checkout has ended."""
    try:
        top = os.open(checkout, _DIR_FLAGS)
    except OSError:
        return Unlocked()
    removed: list[str] = []
    left: dict[str, str] = {}
    try:
        try:
            git = os.open(".git", _DIR_FLAGS, dir_fd=top)
        except OSError:  # no .git directory of its own: nothing here is ours to remove
            return Unlocked()
        try:
            _clear_in(git, ".git", removed, left)
            _clear_refs(git, removed, left)
        finally:
            os.close(git)
    finally:
        os.close(top)
    return Unlocked(tuple(removed), left)


def _clear_refs(git: int, removed: list[str], left: dict[str, str]) -> None:
    """The lock files below ``.git/refs`` (a symlinked ``refs`` or directory not entered)."""
    seen = 0
    try:
        for where, dirs, files, fd in os.fwalk("refs", dir_fd=git):
            seen += len(dirs) + len(files)
            if seen > MAX_ENTRIES:
                return
            _clear_in(fd, f".git/{where}", removed, left, files)
    except OSError:  # no refs directory (or one gone meanwhile): nothing below it
        return


def _clear_in(
    fd: int,
    where: str,
    removed: list[str],
    left: dict[str, str],
    names: list[str] | None = None,
) -> None:
    """Remove the ``*.lock`` regular files in the directory open at ``fd`` (``where``)."""
    if names is None:
        with os.scandir(fd) as entries:
            names = [entry.name for entry in entries]
    for name in names:
        if not name.endswith(".lock"):
            continue
        shown = f"{where}/{name}"
        try:
            info = os.stat(name, dir_fd=fd, follow_symlinks=False)
        except OSError:
            continue
        if not stat.S_ISREG(info.st_mode):
            left[shown] = _kind(info.st_mode)
            continue
        try:
            os.unlink(name, dir_fd=fd)
        except FileNotFoundError:
            continue
        except OSError as exc:
            left[shown] = f"a file that could not be removed ({exc.strerror})"
            continue
        removed.append(shown)


def _kind(mode: int) -> str:
    if stat.S_ISLNK(mode):
        return "a symlink"
    if stat.S_ISDIR(mode):
        return "a directory"
    return "not a regular file"


def locked_words(err: str, checkout: str, left: dict[str, str]) -> str | None:
    """What git's ``err`` means when a lock file stopped it, in plain words (``None``: no
    lock stopped it); ``left``: what :func:`clear_stale_locks` left, by name."""
    for refused, suffix in _REFUSED:
        found = refused.search(err)
        if found is None:
            continue
        name = found.group(1) + suffix
        if name.startswith(checkout.rstrip("/") + "/"):
            name = name[len(checkout.rstrip("/")) + 1 :]
        kind = left.get(name)
        if kind is not None:
            why = f"{name} is {kind}, which is never removed for git (only a lock file is)"
        else:
            why = f"{name} is there and stops every commit"
        return f"{LOCKED_PREFIX}{why}; nothing was committed"
    return None

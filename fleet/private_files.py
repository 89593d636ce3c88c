"""Files only Fleetwarden's own user may read: written whole or not at all.

Secrets at rest (the proxy's per-agent keys, a ChatGPT login) live in the state dir. Each
write goes to a temporary file created with mode 0600 in the same directory, is flushed to
disk, and replaces the old file in one ``rename``: a reader sees the old contents or the
new, never half of either, and a crash mid-write leaves the old file in place.

A link found where a file or directory is made or opened is never followed: each is opened
``O_NOFOLLOW`` from its directory's descriptor, so a link planted there (by a user who once
could write the directory, or an agent in a folder handed to it) neither redirects a write
nor has its target's mode changed.
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
from pathlib import Path


def write_private(path: Path, text: str) -> None:
    """Replace ``path`` with ``text`` atomically, readable by its owner only (0600); its
    directory is created 0700 when missing. Raises ``OSError``."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    replace_whole(path, text.encode("utf-8"))


def replace_whole(path: Path, data: bytes, mode: int = 0o600) -> None:
    """Replace ``path`` with ``data`` atomically, as a file of ``mode``: a temporary file
    in the same directory, synced, renamed over it. Raises ``OSError``."""
    directory = open_dir(path.parent)
    try:
        temporary, fd = _temporary(directory, path.name)
        try:
            with os.fdopen(fd, "wb") as file:
                file.write(data)
                file.flush()
                os.fchmod(file.fileno(), mode)
                os.fsync(file.fileno())
            os.replace(temporary, path.name, src_dir_fd=directory, dst_dir_fd=directory)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(temporary, dir_fd=directory)
            raise
    finally:
        os.close(directory)


def create_whole(directory: int, name: str, data: bytes, mode: int) -> None:
    """``name`` made in the directory of descriptor ``directory`` holding ``data``, as a file
    of ``mode``, whole or not at all; never over anything already there, a link included
    (``FileExistsError``). Raises ``OSError``."""
    temporary, fd = _temporary(directory, name)
    try:
        with os.fdopen(fd, "wb") as file:
            file.write(data)
            file.flush()
            os.fchmod(file.fileno(), mode)
            os.fsync(file.fileno())
        os.link(temporary, name, src_dir_fd=directory, dst_dir_fd=directory, follow_symlinks=False)
    finally:
        with contextlib.suppress(OSError):
            os.unlink(temporary, dir_fd=directory)


def _temporary(directory: int, name: str) -> tuple[str, int]:
    """A new file ``.NAME.XXXX.tmp`` in ``directory``, made 0600: its name and descriptor."""
    for _ in range(100):
        temporary = f".{name}.{secrets.token_hex(4)}.tmp"
        try:
            fd = os.open(temporary, _NEW | os.O_WRONLY, 0o600, dir_fd=directory)
        except FileExistsError:
            continue
        return temporary, fd
    raise FileExistsError(errno.EEXIST, "no free temporary name", name)


def open_dir(path: Path) -> int:
    """A descriptor of directory ``path``, not followed if it is itself a link. Raises
    ``OSError`` (``ELOOP`` or ``ENOTDIR`` for a link or a file there)."""
    return os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)


def private_dir(path: Path) -> Path:
    """``path`` as a directory only its owner may enter (0700): the missing levels are
    created so, and ``path`` itself is closed if it was open. Returns ``path``. Raises
    ``OSError``, ``ELOOP`` when ``path`` is a link."""
    missing = [level for level in (path, *path.parents) if not level.exists()]
    for level in reversed(missing):
        with contextlib.suppress(FileExistsError):
            level.mkdir(mode=0o700)
    fd = open_dir(path)
    try:
        os.fchmod(fd, 0o700)
    finally:
        os.close(fd)
    return path


def private_file(path: Path) -> Path:
    """``path`` as a file only its owner may read (0600): created empty so if missing,
    closed if it was open. Returns ``path``. Raises ``OSError``, ``ELOOP`` for a link."""
    fd = open_private(path, os.O_WRONLY)
    try:
        os.fchmod(fd, 0o600)
    finally:
        os.close(fd)
    return path


def open_private(path: Path, flags: int) -> int:
    """``os.open`` of ``path`` with ``flags``, a new file created 0600, a link there not
    followed (``ELOOP``); a file descriptor."""
    return os.open(path, flags | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)


_NEW = os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC


# An agent's private HOME and working directory hold what its tools put there, executables
# included: their modes are the agent's business.
_AGENT_OWN = frozenset({"home", "work"})


_REPOSITORIES = ("checkouts", "repos")
"""Top-level directories of the state dir that hold runs' checkouts and git's own."""


def close_state_dir(state_dir: Path) -> None:
    """Close what an older version left readable in ``state_dir``: every directory 0700
    and every file 0600, but inside agents' homes and working directories — runs'
    checkouts among them, whose scripts keep their modes —, the homes of the stdio MCP
    servers confined per agent (``mcp/SERVER/AGENT/home``: the server's own install, npx's
    cache among it, whose programs must stay executable), and the repositories' git
    directories, made private when they are made (their hooks run)."""
    if not state_dir.is_dir():
        return
    os.chmod(state_dir, 0o700)
    for root, dirs, files in os.walk(state_dir):
        here = Path(root)
        keep = [
            d
            for d in dirs
            if not (here.parent == state_dir / "agents" and d in _AGENT_OWN)
            and not (here.parent.parent == state_dir / "mcp" and d == "home")
            and not (here == state_dir and d in _REPOSITORIES)
        ]
        dirs[:] = keep
        for name in keep:
            _chmod(here / name, 0o700)
        for name in files:
            _chmod(here / name, 0o600)


def _chmod(path: Path, mode: int) -> None:
    with contextlib.suppress(OSError):  # gone meanwhile, or a socket of tmux's
        if not path.is_symlink():
            os.chmod(path, mode)

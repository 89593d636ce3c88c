"""Files only Fleetwarden's own user may read: written whole or not at all.

Secrets at rest (the proxy's per-agent keys, a ChatGPT login) live in the state dir. Each
write goes to a temporary file created with mode 0600 in the same directory, is flushed to
disk, and replaces the old file in one ``rename``: a reader sees the old contents or the
new, never half of either, and a crash mid-write leaves the old file in place.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path


def write_private(path: Path, text: str) -> None:
    """Replace ``path`` with ``text`` atomically, readable by its owner only (0600); its
    directory is created 0700 when missing. Raises ``OSError``."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    replace_whole(path, text.encode("utf-8"))


def replace_whole(path: Path, data: bytes, mode: int = 0o600) -> None:
    """Replace ``path`` with ``data`` atomically, as a file of ``mode``: a temporary file
    in the same directory, synced, renamed over it. Raises ``OSError``."""
    # mkstemp creates the file with mode 0600, and os.replace keeps the mode it has.
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as file:
            file.write(data)
            file.flush()
            if mode != 0o600:
                os.fchmod(file.fileno(), mode)
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise


def private_dir(path: Path) -> Path:
    """``path`` as a directory only its owner may enter (0700): the missing levels are
    created so, and ``path`` itself is closed if it was open. Returns ``path``."""
    missing = [level for level in (path, *path.parents) if not level.exists()]
    for level in reversed(missing):
        with contextlib.suppress(FileExistsError):
            level.mkdir(mode=0o700)
    os.chmod(path, 0o700)
    return path


def private_file(path: Path) -> Path:
    """``path`` as a file only its owner may read (0600): created empty so if missing,
    closed if it was open. Returns ``path``."""
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o600))
    os.chmod(path, 0o600)
    return path


def open_private(path: Path, flags: int) -> int:
    """``os.open`` of ``path`` with ``flags``, a new file created 0600; a file descriptor."""
    return os.open(path, flags | os.O_CREAT | os.O_CLOEXEC, 0o600)


# An agent's private HOME and working directory hold what its tools put there, executables
# included: their modes are the agent's business.
_AGENT_OWN = frozenset({"home", "work"})


_REPOSITORIES = ("checkouts", "repos")
"""Top-level directories of the state dir that hold runs' checkouts and git's own."""


def close_state_dir(state_dir: Path) -> None:
    """Close what an older version left readable in ``state_dir``: every directory 0700
    and every file 0600, but inside agents' homes and working directories — runs'
    checkouts among them, whose scripts keep their modes — and the repositories' git
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

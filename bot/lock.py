"""One Fleetwarden per state directory: an advisory lock held for the process's life."""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from fleet.errors import FleetwardenError
from fleet.private_files import close_state_dir, private_dir


class AlreadyRunning(FleetwardenError):
    """Another Fleetwarden holds the state directory."""


class StateDirLock:
    """``flock`` on ``<state_dir>/fleetwarden.lock``; released by the kernel if we die."""

    def __init__(self, state_dir: Path) -> None:
        self.path = state_dir / "fleetwarden.lock"
        self._fd: int | None = None

    def acquire(self) -> None:
        private_dir(self.path.parent)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 32).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            raise AlreadyRunning(
                f"another fleetwarden (pid {holder}) is already running on state dir "
                f"{self.path.parent}; stop it first, or give this one its own state_dir"
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        self._fd = fd
        # Ours now: close what an older version left readable.
        os.fchmod(fd, 0o600)
        close_state_dir(self.path.parent)

    def release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

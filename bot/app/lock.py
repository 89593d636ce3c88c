"""One Fleetwarden per state directory and per ledger: advisory locks held for the
process's life."""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from fleet.errors import FleetwardenError
from fleet.private_files import close_state_dir, private_dir


class AlreadyRunning(FleetwardenError):
    """Another Fleetwarden holds the state directory or the ledger."""


class StateDirLock:
    """``flock`` on ``<state_dir>/fleetwarden.lock`` and, when ``ledger`` is given, on
    ``<ledger>.lock`` beside it — so two Fleetwardens with their own state dirs cannot
    share one ledger configured outside them; released by the kernel if we die."""

    def __init__(self, state_dir: Path, *, ledger: Path | None = None) -> None:
        self.path = state_dir / "fleetwarden.lock"
        self.ledger_path = None if ledger is None else ledger.with_name(ledger.name + ".lock")
        self._fds: list[int] = []

    def acquire(self) -> None:
        private_dir(self.path.parent)
        self._fds.append(
            _take(
                self.path,
                f"state dir {self.path.parent}; stop it first, or give this one its own state_dir",
            )
        )
        if self.ledger_path is not None:
            if not self.ledger_path.parent.exists():
                private_dir(self.ledger_path.parent)
            ledger = self.ledger_path.with_suffix("")
            try:
                self._fds.append(
                    _take(
                        self.ledger_path,
                        f"ledger {ledger}; stop it first, or give this one its own ledger",
                    )
                )
            except BaseException:
                self.release()
                raise
        # Ours now: close what an older version left readable.
        close_state_dir(self.path.parent)

    def release(self) -> None:
        while self._fds:
            fd = self._fds.pop()
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)


def _take(path: Path, what: str) -> int:
    """An open descriptor of ``path`` holding its lock, with our pid written in it."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.read(fd, 32).decode(errors="replace").strip() or "unknown"
        os.close(fd)
        raise AlreadyRunning(
            f"another fleetwarden (pid {holder}) is already running on {what}"
        ) from None
    except BaseException:
        os.close(fd)
        raise
    os.fchmod(fd, 0o600)
    os.ftruncate(fd, 0)
    os.write(fd, str(os.getpid()).encode())
    return fd

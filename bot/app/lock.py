"""One Fleetwarden per state directory and per ledger: advisory locks held for the
process's life, taken only in folders that are Fleetwarden's own.

The state dir must be this user's alone (:mod:`fleet.owned_places`): one another user owns
or may write is refused with the fix before anything is made in it, as that user could
rename, remove or plant files in it — a link where the lock is, to have Fleetwarden make its
target 0600 and write a pid into it. Each lock is opened from its directory's descriptor
without following a link, and must be a plain file of Fleetwarden's own.
"""

from __future__ import annotations

import fcntl
import os
import stat
from pathlib import Path

from fleet.errors import FleetwardenError
from fleet.owned_places import not_ours
from fleet.private_files import close_state_dir, open_dir, private_dir


class AlreadyRunning(FleetwardenError):
    """Another Fleetwarden holds the state directory or the ledger."""


class StateDirNotOurs(FleetwardenError):
    """The state dir, the ledger's folder or a lock in them is not Fleetwarden's own."""


class StateDirLock:
    """``flock`` on ``<state_dir>/fleetwarden.lock`` and, when ``ledger`` is given, on
    ``<ledger>.lock`` beside it — so two Fleetwardens with their own state dirs cannot
    share one ledger configured outside them; released by the kernel if we die."""

    def __init__(self, state_dir: Path, *, ledger: Path | None = None) -> None:
        self.path = state_dir / "fleetwarden.lock"
        self.ledger_path = None if ledger is None else ledger.with_name(ledger.name + ".lock")
        self._fds: list[int] = []

    def acquire(self) -> None:
        """Take both locks. Raises :class:`AlreadyRunning`, :class:`StateDirNotOurs` or
        ``OSError``."""
        own_state_dir(self.path.parent)
        private_dir(self.path.parent)
        self._fds.append(
            _take(
                self.path,
                f"state dir {self.path.parent}; stop it first, or give this one its own state_dir",
            )
        )
        if self.ledger_path is not None:
            ledger = self.ledger_path.with_suffix("")
            try:
                _own_ledger_dir(self.ledger_path.parent)
                if not self.ledger_path.parent.exists():
                    private_dir(self.ledger_path.parent)
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


def own_state_dir(state_dir: Path) -> None:
    """Raise :class:`StateDirNotOurs` unless ``state_dir`` (when it exists) is this user's
    alone and every folder above it Fleetwarden's own or root's."""
    found = not_ours(state_dir, owner_only=True)
    if found is None:
        return
    what = "The state dir" if found.path == state_dir else f"A folder above state dir {state_dir}"
    raise StateDirNotOurs(
        f"{what}: {found}. Another user could rename, remove or plant files in it (a link "
        "where Fleetwarden writes); nothing was started. Give this fleet a state_dir of its "
        f"own that no one else may write, or make it Fleetwarden's: `{found.fix}`"
    )


def _own_ledger_dir(directory: Path) -> None:
    found = not_ours(directory)
    if found is not None:
        raise StateDirNotOurs(
            f"The ledger's folder: {found}. Another user could swap the ledger or its lock; "
            f"nothing was started. Put the ledger in a folder of Fleetwarden's own, or "
            f"`{found.fix}`"
        )


def _take(path: Path, what: str) -> int:
    """An open descriptor of ``path`` holding its lock, with our pid written in it."""
    directory = open_dir(path.parent)
    try:
        fd = os.open(
            path.name,
            os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC,
            0o600,
            dir_fd=directory,
        )
    except OSError as exc:
        if not os.path.islink(path):
            raise
        raise StateDirNotOurs(
            f"{path} is a link (to {os.readlink(path)}), not Fleetwarden's lock: nothing was "
            f"started and its target is untouched. Remove it (`rm {path}`) and start again"
        ) from exc
    finally:
        os.close(directory)
    try:
        _plain_and_ours(fd, path)
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


def _plain_and_ours(fd: int, path: Path) -> None:
    """Refuse a lock that is not a plain file of this user's with one name: another's, or a
    hard link to a file elsewhere, whose contents the pid would replace."""
    info = os.fstat(fd)
    if stat.S_ISREG(info.st_mode) and info.st_uid == os.geteuid() and info.st_nlink == 1:
        return
    raise StateDirNotOurs(
        f"{path} is not a plain file of Fleetwarden's own (owner uid {info.st_uid}, "
        f"{info.st_nlink} names): nothing was started and it is untouched. Remove it "
        f"(`rm {path}`) and start again"
    )

"""Tests for bot.app.lock: one Fleetwarden per state directory."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.app.lock import AlreadyRunning, StateDirLock

OTHER_PID = "4242"  # stands for another process's pid in the lock file

# Another process holding a state dir's lock as Fleetwarden does: flock, then its pid.
HOLDER = """
import fcntl, os, sys
fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT, 0o600)
fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
os.write(fd, str(os.getpid()).encode())
print("held", flush=True)
sys.stdin.read()
"""


@pytest.fixture
def held(tmp_path: Path) -> Iterator[StateDirLock]:
    lock = StateDirLock(tmp_path / "state")
    lock.acquire()
    yield lock
    lock.release()


def refused(state_dir: Path, *, ledger: Path | None = None) -> AlreadyRunning:
    """The AlreadyRunning a fresh lock on ``state_dir`` meets (fails if it acquires)."""
    with pytest.raises(AlreadyRunning) as caught:
        StateDirLock(state_dir, ledger=ledger).acquire()
    return caught.value


def test_acquire_creates_the_state_dir_and_records_our_pid(tmp_path: Path) -> None:
    """Acquiring creates the state dir if needed and writes this process's pid to the lock file."""
    state = tmp_path / "new" / "state"
    lock = StateDirLock(state)
    lock.acquire()
    try:
        assert state.is_dir() and stat.S_IMODE(state.stat().st_mode) == 0o700
        assert lock.path.parent == state
        assert lock.path.read_text() == str(os.getpid())
    finally:
        lock.release()


def test_second_acquire_raises_already_running_naming_the_holder(
    held: StateDirLock, tmp_path: Path
) -> None:
    """A second lock on the same dir is refused with AlreadyRunning naming the holder's pid."""
    held.path.write_text(OTHER_PID)  # as another process holding it would have written
    error = refused(tmp_path / "state")
    assert f"(pid {OTHER_PID})" in str(error)
    assert str(tmp_path / "state") in str(error)


def test_a_refused_acquire_leaves_the_holder_in_place(held: StateDirLock, tmp_path: Path) -> None:
    """A refused acquire neither steals the lock nor rewrites the holder's pid."""
    held.path.write_text(OTHER_PID)
    refused(tmp_path / "state")
    assert held.path.read_text() == OTHER_PID  # not truncated, not rewritten
    error = refused(tmp_path / "state")  # still held: the first refusal took nothing
    assert f"(pid {OTHER_PID})" in str(error)


def test_release_lets_a_new_lock_acquire(tmp_path: Path) -> None:
    """After release, another lock on the same dir acquires without error."""
    first = StateDirLock(tmp_path)
    first.acquire()
    refused(tmp_path)  # while held, it would not
    first.release()
    second = StateDirLock(tmp_path)
    second.acquire()
    try:
        assert second.path.read_text() == str(os.getpid())
        refused(tmp_path)  # and now the second one holds it
    finally:
        second.release()


def test_locks_on_different_dirs_do_not_conflict(held: StateDirLock, tmp_path: Path) -> None:
    """A lock on another state dir is independent of the held one."""
    other = StateDirLock(tmp_path / "other")
    other.acquire()
    try:
        refused(tmp_path / "state")  # the held one is still held
        refused(tmp_path / "other")  # and the other one is held too
    finally:
        other.release()
    refused(tmp_path / "state")  # releasing the other freed only the other
    StateDirLock(tmp_path / "other").acquire()


def test_release_is_idempotent(held: StateDirLock, tmp_path: Path) -> None:
    """Releasing twice, or without acquiring, does nothing."""
    never = StateDirLock(tmp_path / "state")
    never.release()  # without acquiring: no error, and the holder keeps its lock
    refused(tmp_path / "state")
    lock = StateDirLock(tmp_path / "own")
    lock.acquire()
    lock.release()
    lock.release()  # twice: no error
    again = StateDirLock(tmp_path / "own")
    again.acquire()
    again.release()


def test_a_dead_holders_lock_is_free(tmp_path: Path) -> None:
    """A lock held by another process names that process, and is free once it dies."""
    lock_file = StateDirLock(tmp_path).path
    with subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(lock_file)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    ) as child:
        try:
            assert child.stdout is not None and child.stdout.readline() == "held\n"
            assert f"(pid {child.pid})" in str(refused(tmp_path))
        finally:
            child.kill()
    lock = StateDirLock(tmp_path)
    lock.acquire()
    lock.release()


def test_two_state_dirs_sharing_one_ledger_are_refused(tmp_path: Path) -> None:
    """The lock covers the ledger too: a second Fleetwarden with its own state dir but the
    same ledger file is refused, naming the ledger and the holder's pid."""
    ledger = tmp_path / "shared" / "ledger.db"
    first = StateDirLock(tmp_path / "a", ledger=ledger)
    first.acquire()
    try:
        assert first.ledger_path is not None
        first.ledger_path.write_text(OTHER_PID)
        error = refused(tmp_path / "b", ledger=ledger)
        assert f"(pid {OTHER_PID})" in str(error) and str(ledger) in str(error)
        # Refused whole: its own state dir is not left locked.
        third = StateDirLock(tmp_path / "b")
        third.acquire()
        third.release()
    finally:
        first.release()
    again = StateDirLock(tmp_path / "b", ledger=ledger)
    again.acquire()
    again.release()

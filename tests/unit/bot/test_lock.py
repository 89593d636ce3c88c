"""Tests for bot.lock: one Fleetwarden per state directory."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.lock import AlreadyRunning, StateDirLock


@pytest.fixture
def held(tmp_path: Path) -> Iterator[StateDirLock]:
    lock = StateDirLock(tmp_path / "state")
    lock.acquire()
    yield lock
    lock.release()


def test_acquire_creates_the_state_dir_and_records_our_pid(tmp_path: Path) -> None:
    """Acquiring creates the state dir if needed and writes this process's pid to the lock file."""
    lock = StateDirLock(tmp_path / "new" / "state")
    lock.acquire()
    try:
        assert lock.path.read_text() == str(os.getpid())
    finally:
        lock.release()


def test_second_acquire_raises_already_running_naming_the_holder(
    held: StateDirLock, tmp_path: Path
) -> None:
    """A second lock on the same dir is refused with AlreadyRunning naming the holder's pid."""
    second = StateDirLock(tmp_path / "state")
    with pytest.raises(AlreadyRunning, match=rf"\(pid {os.getpid()}\)") as caught:
        second.acquire()
    assert str(tmp_path / "state") in str(caught.value)


def test_a_refused_acquire_leaves_the_holder_in_place(held: StateDirLock, tmp_path: Path) -> None:
    """A refused acquire neither steals the lock nor rewrites the holder's pid."""
    with pytest.raises(AlreadyRunning):
        StateDirLock(tmp_path / "state").acquire()
    with pytest.raises(AlreadyRunning):
        StateDirLock(tmp_path / "state").acquire()
    assert held.path.read_text() == str(os.getpid())


def test_release_lets_a_new_lock_acquire(tmp_path: Path) -> None:
    """After release, another lock on the same dir acquires without error."""
    first = StateDirLock(tmp_path)
    first.acquire()
    first.release()
    second = StateDirLock(tmp_path)
    second.acquire()
    second.release()


def test_locks_on_different_dirs_do_not_conflict(held: StateDirLock, tmp_path: Path) -> None:
    """A lock on another state dir is independent of the held one."""
    other = StateDirLock(tmp_path / "other")
    other.acquire()
    other.release()


def test_release_is_idempotent(tmp_path: Path) -> None:
    """Releasing twice, or without acquiring, does nothing."""
    lock = StateDirLock(tmp_path)
    lock.release()
    lock.acquire()
    lock.release()
    lock.release()


def test_two_state_dirs_sharing_one_ledger_are_refused(tmp_path: Path) -> None:
    """The lock covers the ledger too: a second Fleetwarden with its own state dir but the
    same ledger file is refused, naming the ledger and the holder's pid."""
    ledger = tmp_path / "shared" / "ledger.db"
    first = StateDirLock(tmp_path / "a", ledger=ledger)
    first.acquire()
    try:
        second = StateDirLock(tmp_path / "b", ledger=ledger)
        with pytest.raises(AlreadyRunning, match=rf"\(pid {os.getpid()}\)") as caught:
            second.acquire()
        assert str(ledger) in str(caught.value)
        # Refused whole: its own state dir is not left locked.
        third = StateDirLock(tmp_path / "b")
        third.acquire()
        third.release()
    finally:
        first.release()
    again = StateDirLock(tmp_path / "b", ledger=ledger)
    again.acquire()
    again.release()

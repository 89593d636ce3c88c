"""Tests for fleet.repos.line.git_locks: the lock files git left in a checkout's own ``.git``
are removed — regular files only, at its top and below ``refs`` — and nothing is followed
out of it; git's "locked" refusal reads in plain words."""

from __future__ import annotations

import os
from pathlib import Path

from fleet.repos.line.git_locks import LOCKED_PREFIX, clear_stale_locks, locked_words


def checkout(tmp_path: Path) -> Path:
    """A directory laid out as a checkout's ``.git`` is (no git needed to clear locks)."""
    work = tmp_path / "work"
    (work / ".git" / "refs" / "heads" / "fw" / "coder").mkdir(parents=True)
    (work / ".git" / "HEAD").write_text("ref: refs/heads/fw/coder/1\n")
    return work


def test_the_locks_git_left_at_the_top_and_below_refs_are_removed(tmp_path: Path) -> None:
    """index.lock, HEAD.lock, config.lock and a branch's lock go; nothing else does."""
    work = checkout(tmp_path)
    git = work / ".git"
    planted = [
        git / "index.lock",
        git / "HEAD.lock",
        git / "config.lock",
        git / "refs" / "heads" / "fw" / "coder" / "1.lock",
    ]
    for lock in planted:
        lock.write_text("")
    (work / "notes.lock").write_text("the agent's own file\n")  # in the work tree: kept
    (git / "objects").mkdir()
    unlocked = clear_stale_locks(work)
    assert sorted(unlocked.removed) == sorted(str(p.relative_to(work)) for p in planted)
    assert unlocked.left == {}
    assert not any(p.exists() for p in planted)
    assert (work / "notes.lock").exists() and (git / "HEAD").exists()


def test_a_symlink_named_as_a_lock_is_neither_followed_nor_removed(tmp_path: Path) -> None:
    """A symlink ``index.lock`` to a file outside, and a directory ``HEAD.lock``, stay as
    they are and are named; the file outside is untouched."""
    work = checkout(tmp_path)
    outside = tmp_path / "outside.txt"
    outside.write_text("not the agent's\n")
    (work / ".git" / "index.lock").symlink_to(outside)
    (work / ".git" / "HEAD.lock").mkdir()
    unlocked = clear_stale_locks(work)
    assert unlocked.removed == ()
    assert unlocked.left == {".git/index.lock": "a symlink", ".git/HEAD.lock": "a directory"}
    assert (work / ".git" / "index.lock").is_symlink()
    assert outside.read_text() == "not the agent's\n"


def test_nothing_outside_the_checkouts_own_git_directory_is_touched(tmp_path: Path) -> None:
    """A ``.git`` that is a symlink, a ``.git`` file naming another directory, a ``refs``
    that is a symlink, and a checkout path that is itself a symlink: no lock there goes."""
    elsewhere = tmp_path / "elsewhere"
    (elsewhere / "refs" / "heads").mkdir(parents=True)
    locks = [elsewhere / "index.lock", elsewhere / "refs" / "heads" / "main.lock"]
    for lock in locks:
        lock.write_text("")

    linked = tmp_path / "linked"
    linked.mkdir()
    (linked / ".git").symlink_to(elsewhere)
    named = tmp_path / "named"
    named.mkdir()
    (named / ".git").write_text(f"gitdir: {elsewhere}\n")
    refs = checkout(tmp_path)
    os.rename(refs / ".git" / "refs", tmp_path / "own-refs")
    (refs / ".git" / "refs").symlink_to(elsewhere / "refs")
    real = tmp_path / "real"
    (real / ".git").mkdir(parents=True)
    locks.append(real / ".git" / "index.lock")
    locks[-1].write_text("")
    (tmp_path / "via").symlink_to(real)

    for work in (linked, named, refs, tmp_path / "via", tmp_path / "gone"):
        assert clear_stale_locks(work).removed == ()
    assert all(lock.exists() for lock in locks)


def test_gits_locked_refusals_read_in_plain_words() -> None:
    """Git's index, ref and config refusals name the lock from the checkout; one left
    because it is not a lock file says what it is; other failures are no lock's."""
    where = "/state/checkouts/app/coder-1"
    index = (
        f"fatal: Unable to create '{where}/.git/index.lock': File exists.\n\n"
        "Another git process seems to be running in this repository, e.g.\n"
    )
    words = locked_words(index, where, {".git/index.lock": "a symlink"})
    assert words is not None and words.startswith(LOCKED_PREFIX + ".git/index.lock is a symlink")
    assert "nothing was committed" in words
    ref = f"fatal: cannot lock ref 'HEAD': Unable to create '{where}/.git/HEAD.lock': File exists."
    assert locked_words(ref, where, {}) == (
        f"{LOCKED_PREFIX}.git/HEAD.lock is there and stops every commit; nothing was committed"
    )
    config = "error: could not lock config file .git/config: File exists"
    assert (locked_words(config, where, {}) or "").startswith(LOCKED_PREFIX + ".git/config.lock")
    assert locked_words("fatal: not a git repository", where, {}) is None

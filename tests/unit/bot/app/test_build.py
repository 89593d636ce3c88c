"""The build: the commit is read only from a git checkout whose top holds Fleetwarden's own
``pyproject.toml`` (never from a wheel's site-packages, a subdirectory of some other
repository or another project's checkout), and the build says its version alone without
one."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from bot import build
from bot.build import Build, checkout_commit

OURS = '[project]\nname = "fleetwarden"\nversion = "9.9.9"\n'


def _git(cwd: Path, *args: str) -> str:
    env = {"PATH": os.environ["PATH"], "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.org"}
    env |= {"GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.org", "HOME": str(cwd)}
    done = subprocess.run(
        ["git", *args], cwd=cwd, env=env, capture_output=True, text=True, check=True
    )
    return done.stdout.strip()


def _repo(top: Path, pyproject: str | None) -> Path:
    top.mkdir(parents=True)
    _git(top, "init", "-q")
    if pyproject is not None:
        (top / "pyproject.toml").write_text(pyproject)
    (top / "README").write_text("x\n")
    _git(top, "add", "-A")
    _git(top, "commit", "-qm", "first")
    return top


def test_the_commit_of_a_checkout_of_fleetwarden(tmp_path: Path) -> None:
    """A git checkout whose top holds Fleetwarden's pyproject: its short HEAD."""
    top = _repo(tmp_path / "fleetwarden", OURS)
    assert checkout_commit(top) == _git(top, "rev-parse", "--short", "HEAD")


def test_no_commit_where_it_is_not_fleetwardens_checkout(tmp_path: Path) -> None:
    """No commit for: a directory with no git (site-packages), another project's checkout,
    or Fleetwarden's pyproject in a subdirectory of another repository."""
    plain = tmp_path / "site-packages"
    plain.mkdir()
    (plain / "pyproject.toml").write_text(OURS)
    assert checkout_commit(plain) is None
    other = _repo(tmp_path / "other", '[project]\nname = "not-fleetwarden"\n')
    assert checkout_commit(other) is None
    outer = _repo(tmp_path / "outer", None)
    inner = outer / "vendored"
    inner.mkdir()
    (inner / "pyproject.toml").write_text(OURS)
    assert checkout_commit(inner) is None


def test_the_build_in_words() -> None:
    """With a commit: `VERSION (commit C)`; without: the version alone; read once."""
    assert Build("0.2.0", "1a2b3c4").words == "0.2.0 (commit 1a2b3c4)"
    assert Build("0.2.0").words == "0.2.0"
    assert Build("0.2.0").as_json() == {"version": "0.2.0", "commit": None}
    assert build.current() is build.current()

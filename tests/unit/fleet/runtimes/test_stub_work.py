"""The stub agent's `commit TEXT` and `review` lines, run as Fleetwarden runs it (the
script, `python -I -S`, its input on stdin) against real git: a commit as the checkout's
own identity, a clear word where there is no checkout, and its rule for a review prompt."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from fleet.runtimes.stub import STUB_AGENT
from fleet.runtimes.stub_agent import REVIEW_ASKED


def _stub(cwd: Path, lines: str) -> str:
    done = subprocess.run(
        [sys.executable, "-I", "-S", str(STUB_AGENT), "--step-delay", "0"],
        cwd=cwd, input=lines, capture_output=True, text=True, timeout=60, check=True,
        env={"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": str(cwd)},
    )  # fmt: skip
    return done.stdout


def _git(repo: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(repo), *args], capture_output=True, text=True, check=True, timeout=30
    ).stdout


def test_commit_is_made_as_the_checkouts_own_identity(tmp_path: Path) -> None:
    """`commit TEXT` adds TEXT to NOTES.md and commits it, authored as the checkout says."""
    _git(tmp_path, "init", "-q", "-b", "main")
    _git(tmp_path, "config", "user.name", "coder")
    _git(tmp_path, "config", "user.email", "coder@local.fleetwarden.invalid")
    said = _stub(tmp_path, "commit add a README\nexit\n")
    assert "stub: committed " in said and "coder <coder@local.fleetwarden.invalid>" in said
    assert _git(tmp_path, "log", "-1", "--format=%s|%an|%ae") == (
        "add a README|coder|coder@local.fleetwarden.invalid\n"
    )
    assert (tmp_path / "NOTES.md").read_text() == "add a README\n"
    assert _git(tmp_path, "status", "--porcelain") == ""


def test_commit_outside_a_checkout_says_so_and_writes_nothing(tmp_path: Path) -> None:
    """No git checkout: the stub says where it is and why, and leaves no file behind."""
    said = _stub(tmp_path, "commit add a README\nexit\n")
    assert f"stub: cannot commit: {tmp_path} is not a git checkout" in said, said
    assert "give the agent a repo" in said
    assert not (tmp_path / "NOTES.md").exists()
    assert "stub: bye" in said


def test_a_review_prompt_is_answered_by_its_rule(tmp_path: Path) -> None:
    """A review prompt quoting a change is approved; without fw-msg the stub says so."""
    prompt = f'Answer once, with one of:\n  {REVIEW_ASKED} "why"\n| +hello\n| +world\n'
    done = subprocess.run(
        [sys.executable, "-I", "-S", str(STUB_AGENT), "--step-delay", "0", f"--prompt={prompt}"],
        cwd=tmp_path, input="", capture_output=True, text=True, timeout=60, check=True,
        env={"PATH": str(tmp_path), "HOME": str(tmp_path)},
    )  # fmt: skip
    assert "stub: reviewing the change it was asked to review" in done.stdout
    assert "stub: review approve: fw-msg cannot run here" in done.stdout, done.stdout
    assert "stub: bye" in done.stdout  # its run ends once it has answered

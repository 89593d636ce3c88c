"""The end of a run over a checkout git was left locked in, against real git and the real
bubblewrap: the lock files a killed git leaves (``index.lock``, ``HEAD.lock``, a branch's
lock) are removed and the work is kept on the branch, here through
:class:`~fleet.repos.service.Repos` and on a host through the HARVEST program; a symlink
named ``index.lock`` pointing outside is neither followed nor removed, nothing is
committed, and the summary says git in the checkout is locked — not that the door refused."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from bot.render.work.changes import change_block
from fleet.repos.hook.policy import agent_identity
from fleet.repos.line.git_locks import LOCKED_PREFIX, MAX_ENTRIES, locked_words
from fleet.repos.line.host_git import HARVEST
from fleet.repos.line.lane_git import _STAGER
from fleet.sandbox.git.git_probe import SAFE_CONFIG, git_env
from tests import sandbox_need
from tests.integration.repos.test_repo_lines import Rig, agent_git
from tests.integration.repos.test_repo_lines import lines_rig as lines_rig

pytestmark = [pytest.mark.integration, sandbox_need.BWRAP]


def plant_locks(checkout: Path, branch: str) -> list[Path]:
    """The lock files a git killed mid-commit (or an agent) leaves, as regular files."""
    git = checkout / ".git"
    locks = [git / "index.lock", git / "HEAD.lock", git / "refs" / "heads" / f"{branch}.lock"]
    for lock in locks:
        lock.write_text("")
    return locks


async def test_a_checkout_left_locked_is_harvested_and_its_work_kept(lines_rig: Rig) -> None:
    """index.lock, HEAD.lock and the branch's lock left behind: the run's end removes them,
    commits the work as wip and brings it to the branch; nothing is said to be unkept."""
    checkout = await lines_rig.spawn("coder")
    line = await lines_rig.repos.line_of("coder")
    assert line is not None
    (checkout / "src" / "main.py").write_text("print('locked in')\n")
    locks = plant_locks(checkout, line.branch)
    await lines_rig.run_ended("coder", 3)
    line = await lines_rig.repos.line_of("coder")
    assert line is not None and line.head_sha is not None
    assert not any(lock.exists() for lock in locks)
    log = (await agent_git(checkout, "log", "-1", "--format=%H %s")).stdout
    assert log.startswith(line.head_sha) and "wip" in log
    change = await lines_rig.verbs.change("coder")
    assert change.unkept == "" and change.refused == ()
    assert "+print('locked in')" in await lines_rig.verbs.diff("coder")


async def test_a_symlink_named_index_lock_is_not_followed_and_the_summary_says_locked(
    lines_rig: Rig, tmp_path: Path
) -> None:
    """A symlink ``index.lock`` to a file outside: left in place, its target untouched,
    the work still uncommitted in the checkout, and the summary says git in the checkout
    is locked and why — no door refusal, nothing counted as one."""
    checkout = await lines_rig.spawn("coder")
    outside = tmp_path / "outside.txt"
    outside.write_text("Fleetwarden's, not the agent's\n")
    (checkout / "src" / "main.py").write_text("print('stuck')\n")
    (checkout / ".git" / "index.lock").symlink_to(outside)
    await lines_rig.run_ended("coder", 4)
    assert (checkout / ".git" / "index.lock").is_symlink()
    assert outside.read_text() == "Fleetwarden's, not the agent's\n"
    line = await lines_rig.repos.line_of("coder")
    assert line is not None and line.head_sha is None
    (checkout / ".git" / "index.lock").unlink()
    status = (await agent_git(checkout, "status", "--porcelain")).stdout
    assert "src/main.py" in status  # still there, uncommitted
    change = await lines_rig.verbs.change("coder")
    assert change.refused == ()
    assert change.unkept.startswith(f"{LOCKED_PREFIX}.git/index.lock is a symlink")
    block = change_block(change)
    assert "The run's end was not kept: git in the checkout is locked" in block
    assert "The git door refused" not in block
    assert await lines_rig.ledger.refusals.refusals("coder") == []


def run_harvest_program(checkout: Path, work: Path) -> dict[str, object]:
    """The HARVEST program as an SSH host runs it (here, as this user), with a door that
    answers nothing: what it did in the checkout is all there is to see."""
    env = {**git_env(), **agent_identity("coder", "box2").env()}
    env.pop("GIT_OPTIONAL_LOCKS", None)
    data = {
        "dir": str(checkout),
        "url": "http://coder:token@127.0.0.1:9/git/coder/app.git",
        "branch": "fw/coder/1",
        "fork": "0" * 40,
        "message": "wip: what run 1 of coder left uncommitted",
        "env": env,
        "safe": [*SAFE_CONFIG, "commit.gpgSign=false", "core.autocrlf=false"],
        "work": str(work),
        "uid": None,
        "stager": _STAGER,
        "shim": str(Path(__file__).resolve().parents[3] / "fleet" / "backends"),
        "max_entries": MAX_ENTRIES,
    }
    done = subprocess.run(
        [sys.executable, "-I", "-S", "-c", HARVEST],
        input=json.dumps(data),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    got: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
    return got


def host_checkout(tmp_path: Path) -> Path:
    checkout = tmp_path / "agents" / "coder" / "work" / "app-1"
    checkout.mkdir(parents=True)
    plain = {**git_env(), **agent_identity("coder", "box2").env()}
    plain.pop("GIT_OPTIONAL_LOCKS", None)
    for args in (
        ["init", "-q", "-b", "fw/coder/1"],
        ["commit", "-q", "--allow-empty", "-m", "base"],
    ):
        subprocess.run(["git", "-C", str(checkout), *args], env=plain, check=True)
    (checkout / "left.txt").write_text("left behind\n")
    return checkout


def test_on_a_host_the_harvest_program_removes_the_locks_and_commits(tmp_path: Path) -> None:
    """The locks a killed git left are removed and named; the wip commit is made."""
    checkout = host_checkout(tmp_path)
    locks = plant_locks(checkout, "fw/coder/1")
    got = run_harvest_program(checkout, tmp_path / "repos-work")
    assert got["committed"] is True and isinstance(got["head"], str), got
    unlocked = got["unlocked"]
    assert isinstance(unlocked, list)
    assert sorted(unlocked) == sorted(str(lock.relative_to(checkout)) for lock in locks)
    assert not any(lock.exists() for lock in locks)
    assert (
        "wip"
        in subprocess.run(
            ["git", "-C", str(checkout), "log", "-1", "--format=%s"],
            capture_output=True,
            text=True,
            check=True,
            env={"PATH": "/usr/bin:/bin", "HOME": "/nonexistent", "GIT_CONFIG_NOSYSTEM": "1"},
        ).stdout
    )


def test_on_a_host_a_symlinked_index_lock_is_left_and_reads_as_locked(tmp_path: Path) -> None:
    """A symlink ``index.lock`` to a file outside is not followed or removed there either;
    nothing is committed and the words are the locked checkout's."""
    checkout = host_checkout(tmp_path)
    outside = tmp_path / "outside.txt"
    outside.write_text("the host's\n")
    os.symlink(outside, checkout / ".git" / "index.lock")
    got = run_harvest_program(checkout, tmp_path / "repos-work")
    assert got["committed"] is False and got["head"] is None, got
    assert got["left"] == {".git/index.lock": "a symlink"}
    assert (checkout / ".git" / "index.lock").is_symlink()
    assert outside.read_text() == "the host's\n"
    words = locked_words(str(got["git_err"]), str(checkout), {".git/index.lock": "a symlink"})
    assert words is not None and words.startswith(f"{LOCKED_PREFIX}.git/index.lock is a symlink")

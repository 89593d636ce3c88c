"""What Fleetwarden runs in an agent's workdir, against the real bubblewrap and the real
``fleetwarden run``: an agent that plants programs in its repository's git config (a
fsmonitor, hooks, filters, an external diff, includes) gets none of them run, at its run's
end or its next launch, while the run's report still records the HEAD; and the sandbox
git runs in sees nothing but the system and the workdir, as nobody in particular."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from fleet.sandbox.git.git_probe import DIRTY, SANDBOX_UID, UNCHECKED, GitProbe, sandbox_argv
from tests import sandbox_need
from tests.fakes.agents import hostile_git
from tests.fakes.agents.hostile_git import init_repo, leftovers, plant
from tests.integration.console_bot import ROSTER_HEAD, ConsoleBot, clean_env, wait_until

pytestmark = [
    pytest.mark.integration,
    sandbox_need.BWRAP,
]

ROSTER = (
    ROSTER_HEAD
    + """\
  - name: gitty
    runtime: command
    argv: [{python}, -I, hostile_git.py, {markers}, {tag}]
    workdir: ./work
"""
)


def reports(state: Path) -> list[tuple[str | None, str | None, str | None]]:
    """(git_before, git_after, outcome) of every run of the agent, oldest first."""
    db = state / "ledger.db"
    if not db.exists():
        return []
    with contextlib.closing(sqlite3.connect(db, timeout=5)) as conn:
        rows = conn.execute(
            "SELECT git_before, git_after, outcome FROM run_reports ORDER BY run_id"
        ).fetchall()
    return [(row[0], row[1], row[2]) for row in rows]


def test_git_config_an_agent_plants_runs_nothing_and_its_head_is_still_recorded(
    tmp_path: Path, tag: str
) -> None:
    """A command agent plants a fsmonitor, hooks, clean filters (one through an include),
    an external diff, a textconv, a pager and an ssh command in its repository, changes
    one file and touches another, and ends; it is launched again over that config. No
    planted program ever runs (no marker, no process left behind), and both runs' reports
    hold the HEAD, with the changed file seen as an uncommitted change."""
    work, markers = tmp_path / "work", tmp_path / "markers"
    markers.mkdir()
    head = init_repo(work)[:12]
    shutil.copy(hostile_git.__file__, work / "hostile_git.py")
    config = tmp_path / "fleetwarden.yaml"
    config.write_text(ROSTER.format(python=sys.executable, markers=markers, tag=tag))
    state = tmp_path / "state"
    bot = ConsoleBot(tmp_path, "--config", str(config), env=clean_env())

    bot.command("spawn gitty", r"Agent gitty started")
    assert wait_until(lambda: [r[2] is not None for r in reports(state)] == [True], timeout=30)
    log = (state / "agents" / "gitty" / "output.log").read_text()
    assert "planted" in log, log
    bot.command("spawn gitty", r"Agent gitty started")
    assert wait_until(lambda: [r[2] is not None for r in reports(state)] == [True] * 2, 30)
    assert bot.close() == 0

    first, second = reports(state)
    assert first[:2] == (head, head + DIRTY), first
    assert second[:2] == (head + DIRTY, head + DIRTY), second
    assert os.listdir(markers) == []
    assert leftovers(tag) == []


async def test_git_in_its_sandbox_reads_the_planted_repository_without_running_it(
    tmp_path: Path, tag: str
) -> None:
    """The probe itself, in bubblewrap: the HEAD and the one real change are read from a
    planted repository, and nothing planted runs."""
    repo, markers = tmp_path / "repo", tmp_path / "markers"
    markers.mkdir()
    head = init_repo(repo)
    plant(repo, markers, tag)
    probe = GitProbe()
    assert await probe.sandboxed()
    assert await probe.head(repo) == head[:12] + DIRTY
    assert await probe.head(tmp_path / "nowhere") is None
    assert os.listdir(markers) == [] and leftovers(tag) == []


SEEN = """\
grep -E '^(Uid|CapEff|CapBnd)' /proc/self/status
cat /proc/self/uid_map
ls {owned} >/dev/null 2>&1 && echo owned-visible
for p in /etc/passwd /etc/shadow /root /home /var /srv; do
  ls $p >/dev/null 2>&1 && echo host-visible $p
done
touch {work}/written 2>/dev/null && echo workdir-writable
ls {work}/a.txt >/dev/null 2>&1 && echo workdir-readable
unshare -U true 2>/dev/null && echo userns-allowed
ps -e -o pid= | wc -l
"""


def test_the_git_sandbox_sees_only_the_system_and_the_workdir_read_only(tmp_path: Path) -> None:
    """Inside the git sandbox: an unprivileged uid, no capability at all, no new user
    namespace, the workdir readable but not writable, and nothing else of the host's
    files (not the test's own directory, /etc, /root or /home) nor its processes."""
    work, owned = tmp_path / "work", tmp_path / "owned"
    work.mkdir()
    owned.mkdir()
    (work / "a.txt").write_text("x\n")
    script = SEEN.format(owned=owned, work=work)
    argv = sandbox_argv("bwrap", [work], ["/bin/sh", "-c", script])
    done = subprocess.run(argv, capture_output=True, timeout=30, check=False, env={})
    out = done.stdout.decode()
    assert done.returncode == 0, done.stderr
    assert f"Uid:\t{SANDBOX_UID}\t{SANDBOX_UID}" in out, out
    assert "CapEff:\t0000000000000000" in out and "CapBnd:\t0000000000000000" in out, out
    assert f"{SANDBOX_UID} {os.getuid()} 1" in " ".join(out.split()), out
    assert "workdir-readable" in out and "workdir-writable" not in out, out
    assert "owned-visible" not in out and "host-visible" not in out, out
    assert "userns-allowed" not in out, out
    assert int(out.strip().splitlines()[-1]) <= 4, out  # bwrap's init, sh, ps, wc
    assert not (work / "written").exists()


async def test_a_linked_worktree_reports_its_head_and_a_subdirectory_none(
    tmp_path: Path,
) -> None:
    """The sandbox shows a linked worktree's git directories (outside it): it reports its
    HEAD; a workdir below a repository's top is no repository of its own: none."""
    repo, linked = tmp_path / "repo", tmp_path / "linked"
    head = init_repo(repo)[:12]
    add = ["git", "-C", str(repo), "worktree", "add", "-q", "-b", "side", str(linked)]
    await asyncio.to_thread(subprocess.run, add, check=True, timeout=30, capture_output=True)
    (linked / "b.txt").write_text("changed\n")
    (repo / "sub").mkdir()
    probe = GitProbe()
    assert await probe.head(linked) == head + DIRTY
    assert await probe.head(repo / "sub") is None


async def test_a_head_git_cannot_read_is_still_recorded_unchecked(tmp_path: Path) -> None:
    """When git in its sandbox cannot give the HEAD (here: it names an object the
    repository lacks), the HEAD read without git is recorded, marked unchecked."""
    repo = tmp_path / "repo"
    init_repo(repo)
    (repo / ".git" / "HEAD").write_text("ab" * 20 + "\n")
    assert await GitProbe().head(repo) == "ab" * 6 + UNCHECKED

"""Reading a workdir's git HEAD without running what the agent wrote: git's own switches
keep every config-driven program off, and where git cannot be sandboxed the HEAD is read
in Python, through no symlink or FIFO."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from fleet.sandbox.git.git_probe import (
    DIRTY,
    NO_SUBMODULE,
    UNCHECKED,
    GitProbe,
    filter_names,
    git_argv,
    git_env,
)
from fleet.sandbox.git.git_refs import read_head
from tests import sandbox_need
from tests.fakes.agents.hostile_git import init_repo, leftovers, plant


@pytest.fixture
def markers(tmp_path: Path) -> Path:
    where = tmp_path / "markers"
    where.mkdir()
    return where


def git(repo: Path, args: list[str], filters: list[str] | None = None) -> str:
    done = subprocess.run(
        git_argv("git", repo, args, filters or ()),
        env=git_env(),
        capture_output=True,
        timeout=30,
        check=False,
    )
    return done.stdout.decode()


def settle(tag: str, expected: int) -> None:
    """Kill the processes plain git's planted programs left (``expected`` of them, or
    more), until none has shown for a second (ten seconds at the most)."""
    deadline = time.monotonic() + 10
    killed: set[int] = set()
    quiet_since = time.monotonic()
    while time.monotonic() < deadline:
        fresh = [pid for pid in leftovers(tag) if pid not in killed]
        for pid in fresh:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        killed.update(fresh)
        if fresh:
            quiet_since = time.monotonic()
        elif len(killed) >= expected and time.monotonic() - quiet_since > 1.0:
            break
        time.sleep(0.02)
    while leftovers(tag) and time.monotonic() < deadline:  # the killed, still in /proc
        time.sleep(0.02)


def test_filter_names_are_read_from_config_keys() -> None:
    """Every driver named in ``filter.<name>.<key>`` keys, once, dots in names kept."""
    keys = "filter.lfs.clean\nfilter.lfs.smudge\nfilter.a.b.process\ncore.bare\n"
    assert filter_names(keys) == ["lfs", "a.b"]


def test_nothing_the_repository_config_names_runs_even_outside_a_sandbox(
    tmp_path: Path, markers: Path, tag: str
) -> None:
    """With the probe's switches, git reads HEAD, lists the filter drivers (included ones
    too) and tells the changed file from the merely touched one without running any
    planted fsmonitor, hook, filter, pager or diff program — which plain git does run."""
    repo = tmp_path / "repo"
    head = init_repo(repo)
    plant(repo, markers, tag)
    plain = ["git", "-C", str(repo), "status", "--porcelain"]
    subprocess.run(plain, capture_output=True, timeout=30, check=False, env=git_env())
    ran = list(markers.iterdir())
    assert ran, "the planted programs did not run under plain git"
    for marker in ran:
        marker.unlink()
    # Each run leaves one process, forked before its marker is gone but perhaps not yet
    # holding the tag (its exec may lag, the more on a loaded machine): kill them as they
    # show, until none has shown for a second, before the probe's git runs.
    settle(tag, len(ran))

    assert git(repo, ["rev-parse", "--verify", "-q", "HEAD"]).strip() == head
    names = filter_names(git(repo, ["config", "--name-only", "--get-regexp", r"^filter\."]))
    assert sorted(names) == ["evil", "included"]
    status = ["status", "--porcelain", "--untracked-files=no", "--no-renames"]
    assert git(repo, status, names) == " M b.txt\n"
    assert list(markers.iterdir()) == []
    assert leftovers(tag) == []


def test_head_is_read_in_python_through_loose_and_packed_refs(tmp_path: Path) -> None:
    """A branch's loose ref, a packed one, a detached HEAD; no repository, an unborn
    branch, a symlinked HEAD or ``.git``, and a FIFO for HEAD read as no HEAD, at once."""
    repo = tmp_path / "repo"
    head = init_repo(repo)
    assert read_head(repo) == head
    dot_git = repo / ".git"
    subprocess.run(["git", "-C", str(repo), "pack-refs", "--all"], check=True, timeout=30)
    assert not list((dot_git / "refs" / "heads").iterdir())
    assert read_head(repo) == head
    (dot_git / "HEAD").write_text(head + "\n")
    assert read_head(repo) == head
    (dot_git / "HEAD").write_text("ref: refs/heads/unborn\n")
    assert read_head(repo) is None
    (dot_git / "HEAD").write_text("ref: refs/heads/../../../etc/passwd\n")
    assert read_head(repo) is None
    (dot_git / "HEAD").unlink()
    (dot_git / "HEAD").symlink_to(tmp_path / "elsewhere")
    (tmp_path / "elsewhere").write_text(head + "\n")
    assert read_head(repo) is None
    (dot_git / "HEAD").unlink()
    os.mkfifo(dot_git / "HEAD")
    assert read_head(repo) is None
    assert read_head(tmp_path / "nowhere") is None
    linked = tmp_path / "linked"
    linked.mkdir()
    (linked / ".git").symlink_to(dot_git)
    assert read_head(linked) is None


async def test_without_bubblewrap_git_never_runs_and_changes_are_not_checked(
    tmp_path: Path, markers: Path, tag: str
) -> None:
    """Where git cannot be sandboxed, the HEAD is still recorded, marked as not checked
    for changes, and nothing planted in the repository runs."""
    repo = tmp_path / "repo"
    head = init_repo(repo)
    plant(repo, markers, tag)
    probe = GitProbe(bwrap="/nonexistent/bwrap")
    assert await probe.head(repo) == head[:12] + UNCHECKED
    assert await probe.head(tmp_path / "nowhere") is None
    assert os.listdir(markers) == [] and leftovers(tag) == []


def test_head_of_a_linked_worktree_is_read_in_python_and_a_subdirectory_has_none(
    tmp_path: Path,
) -> None:
    """A linked worktree's HEAD is read from its own git directory and its branch from the
    main repository's refs; a subdirectory of a repository is no repository of its own:
    the enclosing one's HEAD is not the run's."""
    repo = tmp_path / "repo"
    head = init_repo(repo)
    linked = tmp_path / "linked"
    add = ["git", "-C", str(repo), "worktree", "add", "-q", "-b", "side", str(linked)]
    subprocess.run(add, check=True, timeout=30, capture_output=True)
    assert (linked / ".git").is_file()
    assert read_head(linked) == head
    (repo / "sub").mkdir()
    assert read_head(repo / "sub") is None


async def test_a_workdir_inside_another_repository_reports_no_head(tmp_path: Path) -> None:
    """A workdir below some other repository's top (a state dir in a clone, say) gets no
    HEAD, sandboxed or read in Python; its own repository there gets its own."""
    outer = tmp_path / "outer"
    init_repo(outer)
    workdir = outer / "state" / "agents" / "coder" / "work"
    workdir.mkdir(parents=True)
    for probe in (GitProbe(), GitProbe(bwrap="/nonexistent/bwrap")):
        assert await probe.head(workdir) is None
    head = init_repo(workdir)
    assert (await GitProbe(bwrap="/nonexistent/bwrap").head(workdir) or "").startswith(head[:12])
    sandboxed = GitProbe()
    if await sandboxed.sandboxed():
        assert await sandboxed.head(workdir) == head[:12]


def test_a_submodules_own_filter_does_not_run(tmp_path: Path, markers: Path, tag: str) -> None:
    """A clean filter planted in a submodule's own config (which the superproject's listing
    of drivers does not see), on a file whose stat changed, runs under the probe's other
    switches — and not with the probe's status, which does not look into submodules."""
    inner, outer = tmp_path / "inner", tmp_path / "outer"
    init_repo(inner)
    init_repo(outer)
    add = ["submodule", "add", "-q", str(inner), "inner"]
    subprocess.run(
        ["git", "-c", "protocol.file.allow=always", "-C", str(outer), *add],
        check=True,
        timeout=30,
        capture_output=True,
        env={**git_env(), "GIT_CONFIG_GLOBAL": "/dev/null"},
    )
    plant(outer / "inner", markers, tag)
    status = ["status", "--porcelain", "--untracked-files=no", "--no-renames"]
    listed = filter_names(git(outer, ["config", "--name-only", "--get-regexp", r"^filter\."]))
    assert listed == []
    git(outer, status, listed)
    assert os.listdir(markers), "the submodule's filter did not run without the switch"
    for marker in markers.iterdir():
        marker.unlink()
    git(outer, [*status, NO_SUBMODULE], listed)
    assert os.listdir(markers) == []


@sandbox_need.root("handing a workdir to another uid needs root")
async def test_a_workdir_handed_to_an_agents_uid_is_still_read_by_git() -> None:
    """As root, a workdir closed (0700) to all but the agent's own uid is read by git's
    sandbox run as that uid: its changes are still checked."""
    top = Path(tempfile.mkdtemp(prefix="fw-git-owner-"))
    try:
        os.chmod(top, 0o755)  # the way there stays open, as to /srv/repos/app
        repo = top / "repo"
        head = init_repo(repo)[:12]
        (repo / "a.txt").write_text("changed\n")
        agent = 1_600_999
        for where, dirs, files in os.walk(repo):
            for name in (*dirs, *files):
                os.chown(os.path.join(where, name), agent, agent, follow_symlinks=False)
        os.chown(repo, agent, agent)
        os.chmod(repo, 0o700)
        probe = GitProbe()
        if not await probe.sandboxed():
            sandbox_need.missing("git cannot be sandboxed here")
        assert await probe.head(repo) == head + DIRTY
    finally:
        shutil.rmtree(top)

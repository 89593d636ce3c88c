"""Tests for the agents' lanes: bubblewrap's user, capability and lane flags, the uid
allocation, handing a tree over to an agent's uid, and what the host enforces."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from fleet.sandbox.host import cgroups
from fleet.sandbox.lanes import FIRST_UID, Lanes, enforcement, hand_over, hand_over_lane
from fleet.sandbox.policy import Layout, bwrap_argv
from tests import sandbox_need

STATE = Path("/srv/fw/state")
WORK = Path("/srv/fw/work")
HOME = STATE / "agents" / "coder" / "home"


def pairs(argv: list[str], option: str) -> list[str]:
    return [argv[i + 1] for i, arg in enumerate(argv[:-1]) if arg == option]


def test_every_sandbox_is_an_unprivileged_user_without_capabilities() -> None:
    """A user namespace always, no nested one, every capability dropped, the layout's
    uid and gid inside — and never uid 0."""
    argv = bwrap_argv(
        Layout(WORK, HOME, hidden=(STATE,), uid=1600003), ["x"], bwrap="b", python="p"
    )
    for flag in ("--unshare-user", "--disable-userns"):
        assert flag in argv[: argv.index("--")]
    assert pairs(argv, "--cap-drop") == ["ALL"]
    assert pairs(argv, "--uid") == ["1600003"] and pairs(argv, "--gid") == ["1600003"]
    with pytest.raises(ValueError, match="never runs as root"):
        bwrap_argv(Layout(WORK, HOME, hidden=(STATE,), uid=0), ["x"], bwrap="b", python="p")


def test_another_agents_workdir_inside_this_ones_stays_hidden_and_secrets_show_empty() -> None:
    """A hidden path under the agent's own workdir is covered again after the workdir's
    bind; each masked file is /dev/null, read-only."""
    other = WORK / "vendor" / "other-agent"
    layout = Layout(WORK, HOME, hidden=(STATE, other), masked=(Path("/etc/shadow"),))
    argv = bwrap_argv(layout, ["x"], bwrap="b", python="p")
    tmpfs = [i for i, arg in enumerate(argv[:-1]) if arg == "--tmpfs" and argv[i + 1] == str(other)]
    bind = next(
        i for i, arg in enumerate(argv[:-1]) if arg == "--bind" and argv[i + 1] == str(WORK)
    )
    assert any(i > bind for i in tmpfs), "the other agent's workdir shows through the bind"
    at = argv.index("/etc/shadow")
    assert argv[at - 2 : at] == ["--ro-bind", "/dev/null"]


def lanes_of(tmp_path: Path) -> Lanes:
    """Lanes as root whose range is held in a register of the test's own."""
    return Lanes(
        tmp_path, root=True, register=tmp_path / "register", running=lambda uids, own: None
    )


def test_each_agent_keeps_a_uid_of_its_own_across_restarts(tmp_path: Path) -> None:
    """As root: distinct uids from the lane range, the same one after a restart (read back
    from the state dir); as an ordinary user: none (agents share Fleetwarden's)."""
    lanes = lanes_of(tmp_path)
    first, second = lanes.uid_for("coder"), lanes.uid_for("reviewer")
    assert first == FIRST_UID and second == FIRST_UID + 1
    lanes.release()
    again = lanes_of(tmp_path)
    assert again.uid_for("coder") == first
    again.release()
    assert json.loads((tmp_path / "uids.json").read_text()) == {"coder": first, "reviewer": second}
    assert (tmp_path / "uids.json").stat().st_mode & 0o777 == 0o600
    assert Lanes(tmp_path / "other", root=False).uid_for("coder") is None


def test_the_next_uid_is_the_one_the_next_new_agent_gets(tmp_path: Path) -> None:
    """The lowest free uid of the range, as the next agent without one is given it (a
    hole left by a removed agent first); none when agents share Fleetwarden's uid."""
    lanes = lanes_of(tmp_path)
    assert lanes.next_uid() == FIRST_UID == lanes.uid_for("coder")
    assert lanes.next_uid() == FIRST_UID + 1
    (tmp_path / "uids.json").write_text(json.dumps({"coder": FIRST_UID + 1}))
    assert lanes.next_uid() == FIRST_UID == lanes.uid_for("reviewer")
    assert lanes.next_uid() == FIRST_UID + 2
    lanes.release()
    assert Lanes(tmp_path / "other", root=False).next_uid() is None


def test_a_broken_uid_file_is_named_with_the_fix(tmp_path: Path) -> None:
    """An unreadable uids.json fails the launch saying which file and what to do."""
    (tmp_path / "uids.json").write_text("{not json")
    with pytest.raises(OSError, match=r"uids\.json is unreadable .* remove it"):
        lanes_of(tmp_path).uid_for("coder")


@sandbox_need.root("chown to another uid needs root")
def test_a_tree_is_handed_over_without_following_links_or_touching_shared_files(
    tmp_path: Path,
) -> None:
    """Every directory and file becomes the agent's; a symlink's target and a file with a
    second hard link (its other name may be outside the lane) stay root's."""
    outside = tmp_path / "outside.txt"
    outside.write_text("root's\n")
    lane = tmp_path / "lane"
    (lane / "src").mkdir(parents=True)
    (lane / "src" / "main.py").write_text("print()\n")
    (lane / "link").symlink_to(outside)
    os.link(outside, lane / "hard")
    uid = FIRST_UID + 7
    assert hand_over(lane, uid) == 4  # lane, src, main.py and the link itself
    assert (lane / "src" / "main.py").stat().st_uid == uid and lane.stat().st_gid == uid
    assert os.lstat(lane / "link").st_uid == uid
    assert outside.stat().st_uid == 0  # neither through the link nor the hard link
    assert hand_over(lane, uid) == 0  # nothing left to change


def test_a_workdir_next_to_root_is_never_handed_to_an_agent(tmp_path: Path) -> None:
    """`/srv` or `/` as a workdir is refused, naming the fix, before anything is chowned."""
    for workdir in (Path("/srv"), Path("/")):
        with pytest.raises(ValueError, match=r"too near / .* a directory of its own"):
            hand_over_lane(tmp_path, workdir, FIRST_UID)


def test_the_log_at_start_says_what_is_enforced_here(tmp_path: Path) -> None:
    """Distinct uids or shared, the rlimits, and why cgroup caps are not enforced."""
    assert cgroups.problem(tmp_path) == (
        f"no cgroup hierarchy with memory and pids controllers at {tmp_path}"
    )
    (tmp_path / "cgroup.controllers").write_text("cpu io hugetlb\n")
    assert cgroups.problem(tmp_path) == "cgroup v2 has no memory or pids controller here"
    assert cgroups.prepare("coder", tmp_path) is None
    lines = enforcement(Lanes(tmp_path, root=False), tmp_path).lines()
    assert "not root, like the unprivileged unit" in lines[0]
    assert "share Fleetwarden's uid" in lines[1] and "NPROC=4096" in lines[2]
    assert "NOT enforced (cgroup v2 has no memory or pids controller here)" in lines[3]
    as_root = enforcement(Lanes(tmp_path, root=True), tmp_path).lines()
    assert "runs as root, like the root unit" in as_root[0]
    assert "a host uid of its own" in as_root[1]


@sandbox_need.root("a writable hierarchy here needs root")
def test_caps_are_written_in_the_layout_each_cgroup_version_has(tmp_path: Path) -> None:
    """v2: memory.max and pids.max in fleetwarden/<agent>, the controllers enabled on the
    way down; v1: memory.limit_in_bytes and pids.max in each hierarchy's group."""
    v2 = tmp_path / "v2"
    v2.mkdir()
    (v2 / "cgroup.controllers").write_text("cpu memory pids\n")
    (v2 / "cgroup.subtree_control").write_text("")
    caps = cgroups.prepare("coder", v2, memory=1 << 30)
    assert caps is not None and caps.dirs == (v2 / "fleetwarden" / "coder",)
    assert (v2 / "fleetwarden" / "coder" / "memory.max").read_text() == str(1 << 30)
    assert (v2 / "fleetwarden" / "coder" / "pids.max").read_text() == str(cgroups.PIDS_MAX)
    assert (v2 / "fleetwarden" / "cgroup.subtree_control").read_text() == "+memory +pids"
    v1 = tmp_path / "v1"
    for name in ("memory", "pids"):
        (v1 / name).mkdir(parents=True)
    caps = cgroups.prepare("coder", v1, memory=1 << 30)
    assert caps is not None and [d.parts[-3] for d in caps.dirs] == ["memory", "pids"]
    assert (v1 / "memory" / "fleetwarden" / "coder" / "memory.limit_in_bytes").read_text() == str(
        1 << 30
    )
    assert "enforced (cgroup v1: at most" in cgroups.describe(v1)


def test_a_run_that_ends_removes_only_its_own_groups(tmp_path: Path) -> None:
    """Removing an ended agent's groups leaves another agent's empty ones — a launch that
    has made its groups but not joined them yet — and so the Fleetwarden's group too."""
    root = tmp_path / "v1"
    for name in ("memory", "pids"):
        (root / name).mkdir(parents=True)
    cgroups.prepare("ended", root, memory=1 << 30)
    cgroups.prepare("starting", root, memory=1 << 30)
    for name in ("memory", "pids"):  # a plain directory tree holds no control files
        for agent in ("ended", "starting"):
            for leftover in (root / name / "fleetwarden" / agent).iterdir():
                leftover.unlink()
    assert cgroups.remove("ended", root) is False
    for name in ("memory", "pids"):
        assert not (root / name / "fleetwarden" / "ended").exists()
        assert (root / name / "fleetwarden" / "starting").is_dir()
    assert cgroups.remove("starting", root) is False
    assert not (root / "memory" / "fleetwarden").exists()

"""Where a sandbox's mounts go, as the agent's user walks the host's files: a directory it
cannot enter is hidden whole and what the agent needs inside bound back; symlinks are
resolved (bubblewrap follows an absolute one from the sandbox's own root); a name given
through a hidden symlink is bound too; and the layouts no sandbox can serve are named with
the fix. Real directories, no bubblewrap (tests/integration/sandbox/test_sandbox_layouts.py runs
the sandboxes)."""

from __future__ import annotations

import itertools
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from fleet.sandbox.host.layout_check import Mount, handover_problem, mount_of, mounts, report
from fleet.sandbox.host.reach import Unreachable, Walker, arrange, reaches_into, walk
from fleet.sandbox.policy import Bind, Layout, bwrap_argv

AGENT = Walker(1_600_000, frozenset({1_600_000}))  # owns nothing here


@pytest.fixture
def tmp_path() -> Iterator[Path]:
    """A directory the agent's user may walk to (pytest's own lies in a 0700 one)."""
    where = Path(tempfile.mkdtemp(prefix="fw-reach-", dir="/var/tmp"))
    where.chmod(0o755)
    yield where
    shutil.rmtree(where, ignore_errors=True)


def shut(path: Path) -> Path:
    path.mkdir(mode=0o700, parents=True)
    path.chmod(0o700)
    return path


def test_the_first_directory_the_agents_user_cannot_enter_is_found_on_the_way(
    tmp_path: Path,
) -> None:
    fleet = shut(tmp_path / "fleet")
    (fleet / "cfg").mkdir()
    assert walk(fleet / "cfg", AGENT, ()) == (fleet / "cfg", fleet)
    assert walk(fleet / "cfg", Walker.of(None), ()) == (fleet / "cfg", None)  # its owner
    assert walk(fleet / "cfg", AGENT, (tmp_path,)) == (fleet / "cfg", None)  # covered
    fleet.chmod(0o701)  # searchable by others, though not listable
    assert walk(fleet / "cfg", AGENT, ()) == (fleet / "cfg", None)


def test_a_closed_directory_holding_config_state_and_workdirs_is_hidden_whole(
    tmp_path: Path,
) -> None:
    """/srv/fleet (0700) with cfg/, state/ and work/a: the sandbox hides it whole and binds
    back the workdir and HOME inside."""
    fleet = shut(tmp_path / "fleet")
    for sub in ("cfg", "state/agents/a/home", "work/a"):
        (fleet / sub).mkdir(parents=True)
    own = (fleet / "work" / "a", fleet / "state" / "agents" / "a" / "home")
    placed = arrange((fleet / "cfg", fleet / "state"), own, (), AGENT, (Path("/proc"),))
    assert placed.closed == (fleet,) and fleet in placed.hidden
    assert placed.own == own and placed.aliases == ()
    argv = bwrap_argv(
        Layout(own[0], own[1], placed.hidden, uid=AGENT.uid), ["true"], bwrap="bwrap", python="py"
    )
    pairs = list(itertools.pairwise(argv))
    assert pairs.index(("--tmpfs", str(fleet))) < pairs.index(("--bind", str(own[0])))


def test_paths_named_through_absolute_symlinks_are_mounted_where_they_lie(
    tmp_path: Path,
) -> None:
    data = tmp_path / "data"
    (data / "state").mkdir(parents=True)
    (data / "work" / "a").mkdir(parents=True)
    names = tmp_path / "names"
    names.mkdir()
    for sub in ("state", "work"):
        (names / sub).symlink_to(data / sub)  # absolute: bubblewrap would miss it
    placed = arrange((names / "state",), (names / "work" / "a",), (), AGENT, (Path("/proc"),))
    assert placed.hidden == (data / "state",) and placed.own == (data / "work" / "a",)
    assert placed.aliases == ()  # the links stay visible: the names lead there by themselves


def test_a_name_whose_symlink_lies_in_a_hidden_directory_is_bound_too(tmp_path: Path) -> None:
    """The state dir named as /srv/fleet/state, a link out of a closed /srv/fleet: hidden
    with it, so the agent's HOME is bound at the name its environment gives too."""
    fleet = shut(tmp_path / "fleet")
    data = tmp_path / "data"
    home = data / "state" / "agents" / "a" / "home"
    home.mkdir(parents=True)
    (fleet / "state").symlink_to(data / "state")
    named = fleet / "state" / "agents" / "a" / "home"
    work = tmp_path / "work"
    work.mkdir()
    placed = arrange((fleet / "state",), (work, named), (), AGENT, (Path("/proc"),))
    assert placed.closed == (fleet,) and placed.own == (work, home)
    assert placed.aliases == (Bind(home, named, writable=True),)
    other = data / "state" / "agents" / "a" / "home" / "other-work"  # hidden inside it
    layout = Layout(work, home, (*placed.hidden, other), aliases=placed.aliases, uid=AGENT.uid)
    argv = bwrap_argv(layout, ["true"], bwrap="bwrap", python="py")
    pairs = list(itertools.pairwise(argv))
    assert pairs.index(("--tmpfs", str(fleet))) < pairs.index(("--bind", str(home)))
    assert ("--tmpfs", str(named / "other-work")) in pairs  # out of sight there too


def test_nothing_is_bound_back_through_a_symlink_in_the_agents_own_places(
    tmp_path: Path,
) -> None:
    """A PATH directory or a program whose way enters the agent's workdir or HOME — a
    symlink it put there to another agent's directory, or its own file — is never bound
    back; one that only lies under a hidden path is."""
    work, home, other = tmp_path / "work" / "a", tmp_path / "home", tmp_path / "work" / "b"
    for where in (work, home, other / "bin", tmp_path / "opt" / "bin"):
        where.mkdir(parents=True)
    (work / "bin").symlink_to(other / "bin")
    (home / "tools").symlink_to(other)
    (tmp_path / "opt" / "into").symlink_to(work / "bin")  # the operator's link, into a's lane
    assert reaches_into(work / "bin", (work,)) and reaches_into(tmp_path / "opt/into", (work,))
    assert not reaches_into(other / "bin", (work, home))
    needed = [work / "bin", home / "tools" / "bin", tmp_path / "opt/into", work, other / "bin"]
    placed = arrange([other], (work, home), needed, AGENT)
    assert placed.needed == (other / "bin",)  # asked for by its own name only
    assert placed.aliases == ()


def test_root_closed_to_the_agents_user_cannot_be_served_and_says_the_fix() -> None:
    class Nobody(Walker):
        def enters(self, info: os.stat_result) -> bool:
            return False

    with pytest.raises(Unreachable, match=r"cannot enter / itself: `chmod o\+x /`"):
        arrange((Path("/srv/fleet"),), (), (), Nobody(7, frozenset({7})))


MOUNTINFO = """\
22 27 0:21 / /proc rw,relatime - proc proc rw
27 1 254:0 / / rw,relatime - ext4 /dev/vda rw
40 27 0:40 / /srv/with\\040space rw,relatime - tmpfs fw rw,size=1024k
41 27 8:1 / /media/stick rw,relatime - vfat /dev/sdb1 rw,uid=0
42 27 0:41 / /srv/cd ro,relatime - iso9660 /dev/sr0 ro
43 41 0:42 / /media/stick/inner rw - ext4 /dev/sdc1 rw
"""


def test_which_filesystem_holds_a_workdir_is_read_from_mountinfo() -> None:
    table = mounts(MOUNTINFO)
    assert Mount(Path("/srv/with space"), "tmpfs", False) in table
    assert mount_of(Path("/srv/with space/a"), table) == table[2]
    assert mount_of(Path("/media/stick/inner/w"), table) == table[5]  # the deepest
    assert handover_problem(Path("/media/stick/inner/w"), table) is None
    vfat = handover_problem(Path("/media/stick/w"), table)
    assert vfat is not None and "lies on a vfat filesystem (at /media/stick)" in vfat
    assert "keeps no file owners" in vfat and "ext4, xfs" in vfat
    read_only = handover_problem(Path("/srv/cd/w"), table)
    assert read_only == (
        "its workdir /srv/cd/w lies on a read-only filesystem (iso9660 at /srv/cd): give "
        "it a directory on a writable one"
    )


def test_check_config_names_closed_directories_as_notes_not_problems(tmp_path: Path) -> None:
    fleet = shut(tmp_path / "fleet")
    (fleet / "work" / "a").mkdir(parents=True)
    said = report([fleet / "state"], [("a", fleet / "work" / "a")], lanes=True, uid=AGENT.uid)
    assert said.problems == []
    assert said.notes == [
        f"sandboxes hide {fleet} whole (agents' users cannot enter it) and bind back what "
        "each agent needs inside"
    ]

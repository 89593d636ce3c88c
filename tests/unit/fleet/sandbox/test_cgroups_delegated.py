"""Control groups delegated to an ordinary user (systemd's ``Delegate=yes``), read from
facts: a hierarchy laid out in a directory and the ``/proc/self/cgroup`` it is in. And
what check-config and the log at start say from those facts, root or not."""

from __future__ import annotations

from pathlib import Path

from fleet.sandbox.host import cgroups
from fleet.sandbox.lanes import Enforcement

UNIT = "system.slice/fleetwarden.service"


def v2_host(tmp_path: Path, *, leaf: str | None) -> tuple[Path, Path]:
    """A cgroup v2 hierarchy whose top this process may not write (no
    ``cgroup.subtree_control`` there for it), the unit's group delegated to it (its
    control files present), and Fleetwarden in ``leaf`` below it (or in the unit's group
    itself). Returns the hierarchy's top and the ``/proc/self/cgroup`` to read."""
    top = tmp_path / "cgroup"
    unit = top / UNIT
    unit.mkdir(parents=True)
    (top / "cgroup.controllers").write_text("cpu io memory pids\n")
    for name in ("cgroup.procs", "cgroup.subtree_control"):
        (unit / name).write_text("")
    (unit / "cgroup.controllers").write_text("memory pids\n")
    at = unit
    if leaf is not None:
        at = unit / leaf
        at.mkdir()
        (at / "cgroup.procs").write_text("")
    own = tmp_path / "self-cgroup"
    own.write_text(f"0::/{at.relative_to(top)}\n")
    return top, own


def others(top: Path) -> None:
    """The unit's group and Fleetwarden's leaf made someone else's: no control files for it."""
    for group in (top / UNIT, top / UNIT / "orchestrator"):
        (group / "cgroup.procs").unlink()


def test_a_delegated_unit_group_holds_the_agents_groups_beside_fleetwarden(
    tmp_path: Path,
) -> None:
    """Fleetwarden in <unit>/orchestrator (DelegateSubgroup=): agents' groups are made in
    <unit>/<group>/<agent>, the controllers enabled on the way down, and the start line
    says the caps hold, in the delegated group."""
    top, own = v2_host(tmp_path, leaf="orchestrator")
    where = cgroups.place(top, own)
    assert where == cgroups.Place(2, (top / UNIT,), delegated=True)
    assert cgroups.problem(top, own) is None
    line = cgroups.describe(top, own)
    assert f"enforced (cgroup v2, in the group delegated to it, {top / UNIT}: at most" in line
    caps = cgroups.prepare("coder", top, memory=1 << 30, group="fleetwarden-1", own=own)
    assert caps is not None and caps.dirs == (top / UNIT / "fleetwarden-1" / "coder",)
    assert (top / UNIT / "fleetwarden-1" / "coder" / "memory.max").read_text() == str(1 << 30)
    for level in (top / UNIT, top / UNIT / "fleetwarden-1"):
        assert (level / "cgroup.subtree_control").read_text() == "+memory +pids"
    for leftover in caps.dirs[0].iterdir():  # a plain directory holds no control files
        leftover.unlink()
    assert cgroups.remove("coder", top, group="fleetwarden-1", own=own) is False
    assert not (top / UNIT / "fleetwarden-1" / "coder").exists()


def test_without_a_subgroup_a_delegated_group_says_what_to_set(tmp_path: Path) -> None:
    """Fleetwarden in the delegated group itself (Delegate=yes alone): v2 gives such a group
    no sub-groups with controllers, so no caps, and the reason names DelegateSubgroup=."""
    top, own = v2_host(tmp_path, leaf=None)
    assert cgroups.place(top, own) is None
    assert cgroups.prepare("coder", top) is None
    why = cgroups.problem(top, own)
    assert why is not None and str(top / UNIT) in why and "DelegateSubgroup=" in why
    assert cgroups.describe(top, own).startswith(
        "per-agent cgroup memory and process caps: NOT enforced (the group it runs in"
    )


def test_outside_any_delegated_group_an_ordinary_user_gets_no_caps(tmp_path: Path) -> None:
    """A group of someone else's (no control files for it): not delegated, no caps."""
    top, own = v2_host(tmp_path, leaf="orchestrator")
    others(top)
    assert cgroups.place(top, own) is None
    assert cgroups.problem(top, own) == (
        "Fleetwarden may not write the cgroup v2 hierarchy (not root, none delegated)"
    )


def test_a_group_shared_with_others_is_not_taken_for_a_delegated_one(tmp_path: Path) -> None:
    """A writable parent that holds others' groups too (a user manager's app.slice beside
    Fleetwarden's scope) is not its to lay out: no caps there."""
    top, own = v2_host(tmp_path, leaf="orchestrator")
    (top / UNIT / "editor.scope").mkdir()
    assert cgroups.place(top, own) is None
    (top / UNIT / "editor.scope").rmdir()
    (top / UNIT / f"{cgroups.GROUP}-0123456789").mkdir()  # agents' groups of an earlier start
    assert cgroups.place(top, own) == cgroups.Place(2, (top / UNIT,), delegated=True)


def test_check_config_says_which_unit_this_is_and_what_it_enforces(tmp_path: Path) -> None:
    """As root: the root unit's mode, a uid per agent, the caps. Not root, with a delegated
    group: the unprivileged unit's, who it runs as, one uid for all, caps in that group;
    without one: caps not enforced, and why."""
    as_root = Enforcement(True, "per-agent cgroup memory and process caps: enforced (v1)")
    assert as_root.lines()[:2] == [
        "runs as root, like the root unit (docs/systemd/fleetwarden.service)",
        "each agent runs as a host uid of its own, from a block this fleet takes on this"
        " host at start (in uids 1600000–1659999: the block its agents already have, else"
        " the lowest no other fleet holds; `agent_uids: {base: N}` names one)",
    ]
    top, own = v2_host(tmp_path, leaf="orchestrator")
    plain = Enforcement(False, cgroups.describe(top, own), user="fleetwarden (uid 998)")
    mode, users, rlimits, caps = plain.lines()
    assert mode == (
        "runs as fleetwarden (uid 998), not root, like the unprivileged unit "
        "(docs/systemd/fleetwarden-unprivileged.service)"
    )
    assert users.startswith("agents share Fleetwarden's uid (it is not root)")
    assert rlimits == "rlimits of every agent: NPROC=4096, NOFILE=16384, CORE=0"
    assert caps.startswith("per-agent cgroup memory and process caps: enforced (cgroup v2, in")
    others(top)
    alone = Enforcement(False, cgroups.describe(top, own), user="fleetwarden (uid 998)")
    assert "caps: NOT enforced (Fleetwarden may not write" in alone.lines()[3]

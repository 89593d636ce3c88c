"""The cgroup freezer's pure parts — which file a freeze or thaw is written to and what,
when ``cgroup.events`` or ``freezer.state`` say it holds, which of an agent's groups is
frozen, if any — and the shell's writes and deadline, on plain files standing in for a
hierarchy. The real kernel is tests/integration/budgets/test_freeze_holds.py's."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fleet.errors import FleetError
from fleet.sandbox.host import cgroup_freezer, cgroups
from fleet.sandbox.host.cgroup_freezer import Freezer, freezer_of, parse_events
from fleet.sandbox.host.procs import sandbox_groups

V1 = Path("/sys/fs/cgroup/freezer/fleetwarden-1/coder")
V2 = Path("/sys/fs/cgroup/fleetwarden-1/coder")


def test_each_version_has_its_file_and_words() -> None:
    """v2: 1 or 0 to cgroup.freeze, told by cgroup.events; v1: FROZEN or THAWED to
    freezer.state, which tells too."""
    two, one = Freezer(V2, 2), Freezer(V1, 1)
    assert (two.control, two.status) == (V2 / "cgroup.freeze", V2 / "cgroup.events")
    assert (two.word(True), two.word(False)) == ("1", "0")
    assert (one.control, one.status) == (V1 / "freezer.state", V1 / "freezer.state")
    assert (one.word(True), one.word(False)) == ("FROZEN", "THAWED")


def test_cgroup_events_are_read_line_by_line() -> None:
    """Key and value a line; other shapes skipped; frozen holds only at `frozen 1`."""
    assert parse_events("populated 1\nfrozen 0\n\nodd line here\n") == {
        "populated": "1",
        "frozen": "0",
    }
    two = Freezer(V2, 2)
    assert two.holds("populated 1\nfrozen 1\n")
    assert not two.holds("populated 1\nfrozen 0\n")
    assert not two.holds("populated 1\n")  # a kernel without the freezer says nothing


def test_a_v1_group_holds_only_once_frozen_not_while_freezing() -> None:
    """FREEZING means some process still runs: not yet."""
    one = Freezer(V1, 1)
    assert one.holds("FROZEN\n")
    assert not one.holds("FREEZING\n")
    assert not one.holds("THAWED\n")


def test_the_group_with_a_freezer_is_chosen_and_none_means_signals() -> None:
    """Of an agent's groups, the v2 one or the v1 freezer one; v1 memory and pids groups
    alone, or no groups at all (no sandbox, not root), leave signals to pause it."""
    memory, pids = Path("/cg/memory/fw/coder"), Path("/cg/pids/fw/coder")
    freezer = Path("/cg/freezer/fw/coder")
    files = {freezer / "freezer.state", V2 / "cgroup.freeze", memory / "memory.limit_in_bytes"}
    assert freezer_of([memory, pids, freezer], files.__contains__) == Freezer(freezer, 1)
    assert freezer_of([V2], files.__contains__) == Freezer(V2, 2)
    assert freezer_of([memory, pids], files.__contains__) is None
    assert freezer_of([], files.__contains__) is None
    assert freezer_of([Path("/cg/old-kernel")], files.__contains__) is None  # v2, no freezer


def test_the_groups_a_run_was_put_in_are_read_from_its_sandbox_record(tmp_path: Path) -> None:
    """The shim's sandbox.json lists them; no record, an older one or a bad one: none."""
    assert sandbox_groups(tmp_path) == ()
    record = tmp_path / "sandbox.json"
    record.write_text(json.dumps({"init_pid": 5, "start_ticks": 1}))
    assert sandbox_groups(tmp_path) == ()
    record.write_text(json.dumps({"init_pid": 5, "cgroups": [str(V1), "", 7]}))
    assert sandbox_groups(tmp_path) == (V1,)
    for bad in ("[1, 2]", '{"cgroups": "x"}', "{"):
        record.write_text(bad)
        assert sandbox_groups(tmp_path) == ()


async def test_a_freeze_writes_its_word_and_returns_once_the_group_says_frozen(
    tmp_path: Path,
) -> None:
    """v1 stand-in: FROZEN written, read back, done; the thaw writes THAWED."""
    one = Freezer(tmp_path, 1)
    await cgroup_freezer.freeze(one, within=1.0)
    assert (tmp_path / "freezer.state").read_text() == "FROZEN"
    assert cgroup_freezer.thaw(one)
    assert (tmp_path / "freezer.state").read_text() == "THAWED"


async def test_a_freeze_that_does_not_hold_in_time_says_which_group_and_what_it_says(
    tmp_path: Path,
) -> None:
    """v2 stand-in whose cgroup.events stays at frozen 0: an error naming the group and
    what the kernel said, the freeze still asked for."""
    (tmp_path / "cgroup.events").write_text("populated 1\nfrozen 0\n")
    with pytest.raises(FleetError) as caught:
        await cgroup_freezer.freeze(Freezer(tmp_path, 2), within=0.05)
    assert str(tmp_path) in str(caught.value)
    assert "'populated 1 frozen 0'" in str(caught.value)
    assert (tmp_path / "cgroup.freeze").read_text() == "1"


async def test_a_group_that_is_gone_refuses_the_freeze_and_has_nothing_to_thaw(
    tmp_path: Path,
) -> None:
    """The run ended and its group was removed: OSError to freeze (the caller falls back to
    signals), False to thaw."""
    gone = Freezer(tmp_path / "gone", 1)
    with pytest.raises(OSError):
        await cgroup_freezer.freeze(gone)
    assert cgroup_freezer.thaw(gone) is False


def test_v1_agents_get_a_freezer_group_made_thawed_and_removed_with_the_others(
    tmp_path: Path,
) -> None:
    """Where the freezer hierarchy is writable beside memory and pids, the agent's groups
    include one there, thawed whatever an earlier run left; the start line says freezes
    are the kernel's; the group goes with the run. Without it, signals, and it says so."""
    root = tmp_path / "v1"
    for name in ("memory", "pids"):
        (root / name).mkdir(parents=True)
    assert "freeze: SIGSTOP to every process" in cgroups.describe(root)
    (root / "freezer").mkdir()
    (root / "freezer" / "cgroup.procs").write_text("")
    where = cgroups.place(root)
    assert where is not None and where.freezer == root / "freezer"
    assert where.parents == (root / "memory", root / "pids")
    stale = root / "freezer" / "fleetwarden" / "coder"
    stale.mkdir(parents=True)
    (stale / "freezer.state").write_text("FROZEN")
    caps = cgroups.prepare("coder", root, memory=1 << 30)
    assert caps is not None and [d.parts[-3] for d in caps.dirs] == ["memory", "pids", "freezer"]
    assert (stale / "freezer.state").read_text() == "THAWED"
    assert freezer_of(caps.dirs, Path.exists) == Freezer(stale, 1)
    assert "freeze: the kernel's cgroup v1 freezer" in cgroups.describe(root)
    for here in caps.dirs:  # a plain directory tree holds no control files
        for leftover in here.iterdir():
            leftover.unlink()
    assert cgroups.remove("coder", root) is False
    assert not any(here.exists() for here in caps.dirs)

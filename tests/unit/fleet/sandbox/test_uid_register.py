"""The host's register of agent uid ranges: two fleets on one machine never hold the same
uids; a range held by a live fleet is refused with the fix, one whose fleet ended is free
again by its lock; the register, its lock and its leases are opened through no link and
refused when another user could have put them there."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Collection, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from fleet.sandbox import lanes as lanes_module
from fleet.sandbox.host.uid_ranges import Holder, Running, UidRange, choose
from fleet.sandbox.host.uid_register import UidRangeHeld, processes_as
from fleet.sandbox.lanes import BLOCK, FIRST_UID, SPAN, Lanes
from tests import sandbox_need

HELD_BY = (
    r"uids 1600000–1600999 are held by the fleet at .*/a \(pid \d+\).*agent_uids: \{base: 1601000\}"
)


def nothing_runs(uids: UidRange, own: Collection[int]) -> tuple[int, int] | None:
    """The host's processes as seen by a fleet here: none of the range's uids (other
    tests' agents may run as them on this machine)."""
    return None


def fleet(
    tmp_path: Path, name: str, wanted: UidRange | None = None, running: Running = nothing_runs
) -> Lanes:
    """The lanes of a fleet with its own state dir, its range in the test's register."""
    state = tmp_path / name
    state.mkdir(exist_ok=True)
    register = tmp_path / "register"
    return Lanes(state, root=True, register=register, wanted=wanted, running=running)


@contextmanager
def monkey_span(span: UidRange) -> Iterator[None]:
    """The fleets made here choose in ``span`` (a few ranges, to fill them in a test)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(lanes_module, "SPAN", span)
        yield


@pytest.fixture
def fleets(tmp_path: Path) -> Iterator[list[Lanes]]:
    """Fleets made by a test, every range let go at its end."""
    made: list[Lanes] = []
    yield made
    for lanes in made:
        lanes.release()


def test_two_fleets_on_one_host_give_their_agents_disjoint_uids(
    tmp_path: Path, fleets: list[Lanes]
) -> None:
    """Each fleet's first agent gets the first uid of a range of its own, never the same."""
    a, b = fleet(tmp_path, "a"), fleet(tmp_path, "b")
    fleets += [a, b]
    assert a.uid_for("coder") == FIRST_UID
    assert b.uid_for("coder") == FIRST_UID + BLOCK
    assert a.range is not None and b.range is not None and not a.range.overlaps(b.range)


def test_a_range_another_live_fleet_holds_is_refused_naming_it_and_a_free_one(
    tmp_path: Path, fleets: list[Lanes]
) -> None:
    """Asked for by `agent_uids`, or by the uids a fleet's agents already have, a range a
    running fleet holds is refused with that fleet's state dir, pid, and a free base."""
    a = fleet(tmp_path, "a")
    fleets.append(a)
    a.reserve()
    asking = fleet(tmp_path, "b", UidRange(FIRST_UID + 500, BLOCK))
    with pytest.raises(UidRangeHeld, match=r"held by the fleet at .*/a \(pid \d+\)"):
        asking.reserve()
    (tmp_path / "c").mkdir()
    (tmp_path / "c" / "uids.json").write_text(f'{{"coder": {FIRST_UID + 3}}}')
    with pytest.raises(UidRangeHeld, match=HELD_BY):
        fleet(tmp_path, "c").uid_for("coder")


def test_a_range_is_free_again_once_its_fleet_ends_whatever_the_file_says(
    tmp_path: Path, fleets: list[Lanes]
) -> None:
    """The lock decides, not the record: once the holder lets go (or dies) another fleet may
    take its range; a fleet started again finds its own range first."""
    a = fleet(tmp_path, "a")
    a.uid_for("coder")
    a.release()
    b = fleet(tmp_path, "b", UidRange(FIRST_UID, BLOCK))
    fleets.append(b)
    assert b.uid_for("coder") == FIRST_UID
    b.release()
    again = fleet(tmp_path, "a")
    fleets.append(again)
    assert again.uid_for("coder") == FIRST_UID  # its own uids' range, free again


def test_a_dead_orchestrators_lease_is_reclaimed_by_its_lock(tmp_path: Path) -> None:
    """A process that took a range and was killed leaves a record naming it; its range is
    free at once, as the kernel dropped its lock."""
    code = (
        "import sys; from pathlib import Path; from fleet.sandbox.lanes import Lanes;"
        "lanes = Lanes(Path(sys.argv[1]), root=True, register=Path(sys.argv[2]),"
        " running=lambda uids, own: None);"
        "print(lanes.uid_for('coder'), flush=True); sys.stdin.read()"
    )
    (tmp_path / "dead").mkdir()
    with subprocess.Popen(
        [sys.executable, "-c", code, str(tmp_path / "dead"), str(tmp_path / "register")],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    ) as child:
        try:
            assert child.stdout is not None and int(child.stdout.readline()) == FIRST_UID
            with pytest.raises(UidRangeHeld, match=rf"pid {child.pid}"):
                fleet(tmp_path, "b", UidRange(FIRST_UID, BLOCK)).reserve()
        finally:
            child.kill()
    b = fleet(tmp_path, "b", UidRange(FIRST_UID, BLOCK))
    try:
        assert b.uid_for("coder") == FIRST_UID
    finally:
        b.release()


def test_a_new_fleet_prefers_a_range_no_other_fleet_has_held(
    tmp_path: Path, fleets: list[Lanes]
) -> None:
    """Left to choose, a fleet takes the lowest range no fleet on the host ever held, so
    files a stopped fleet's agents left are not handed to another's."""
    a = fleet(tmp_path, "a")
    a.reserve()
    a.release()
    b = fleet(tmp_path, "b")
    fleets.append(b)
    assert b.reserve() == UidRange(FIRST_UID + BLOCK, BLOCK)


def test_with_every_range_held_once_a_fleet_takes_the_one_held_longest_ago(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Every range of the span held by fleets that stopped: a new fleet takes the one whose
    last holder took it longest ago (a fleet stopped a moment ago finds its own free when
    it comes back), warns once naming that holder, and its record replaces the old."""
    span = UidRange(FIRST_UID, 3 * BLOCK)
    old = Holder("/old", "", 1, UidRange(FIRST_UID + BLOCK, BLOCK), live=False, taken=100.0)
    new = Holder("/new", "", 2, UidRange(FIRST_UID, BLOCK), live=False, taken=300.0)
    mid = Holder("/mid", "", 3, UidRange(FIRST_UID + 2 * BLOCK, BLOCK), live=False, taken=200.0)
    assert choose(None, None, BLOCK, span, [new, old, mid], "/c") == old.range
    live = Holder("/old", "", 1, old.range, live=True, taken=100.0)
    assert choose(None, None, BLOCK, span, [new, live, mid], "/c") == mid.range
    busy = choose(None, None, BLOCK, span, [new, old, mid], "/c", lambda r: r == old.range)
    assert busy == mid.range

    register = tmp_path / "register"
    fleets = []
    for name in ("a", "b", "c", "d"):  # a span of 3: d takes a's, a's record dropped
        (tmp_path / name).mkdir()
        lanes = Lanes(tmp_path / name, root=True, register=register, running=nothing_runs)
        fleets.append(lanes)
    with monkey_span(span):
        for lanes in fleets[:3]:
            lanes.reserve()
            lanes.release()
        caplog.clear()
        assert fleets[3].reserve() == UidRange(FIRST_UID, BLOCK)
    try:
        warned = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
        assert len(warned) == 1 and f"fleet at {tmp_path / 'a'}, which has stopped" in warned[0]
        assert len(list(register.glob("*.lease"))) == 3
    finally:
        fleets[3].release()


def test_the_choice_is_a_function_of_the_register() -> None:
    """choose(): the asked range when free; else the fix; a fleet's own record is not
    another's; without any free range, how to make room."""
    span = UidRange(FIRST_UID, 3 * BLOCK)
    live = Holder("/a", "", 7, UidRange(FIRST_UID, BLOCK), live=True)
    gone = Holder("/b", "", 8, UidRange(FIRST_UID + BLOCK, BLOCK), live=False)
    assert choose(None, None, BLOCK, span, [live, gone], "/c") == UidRange(
        FIRST_UID + 2 * BLOCK, BLOCK
    )
    assert choose(None, None, BLOCK, span, [live, gone], "/a") == UidRange(FIRST_UID, BLOCK)
    refused = choose(UidRange(FIRST_UID + 999, 2), None, BLOCK, span, [live], "/c")
    assert isinstance(refused, str) and "pid 7" in refused and "base: 1601000" in refused
    full = [Holder(f"/{n}", "", n, UidRange(FIRST_UID + n * BLOCK, BLOCK), True) for n in range(3)]
    assert "stop one" in str(choose(None, None, BLOCK, span, full, "/c"))


def test_a_lease_gone_from_the_register_stops_new_uids(tmp_path: Path) -> None:
    """Every new uid checks the lease: a lease file removed (another fleet could take its
    range now) refuses the uid with the fix."""
    a = fleet(tmp_path, "a")
    try:
        a.uid_for("coder")
        for lease in (tmp_path / "register").glob("*.lease"):
            lease.unlink()
        with pytest.raises(UidRangeHeld, match=r"gone from the host's register.*restart"):
            a.uid_for("reviewer")
    finally:
        a.release()


def test_a_register_another_user_could_have_made_is_refused(tmp_path: Path) -> None:
    """A register that is a symlink, open to others, or a lease that is a symlink is
    refused, never followed."""
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir(mode=0o700)
    (tmp_path / "register").symlink_to(elsewhere)
    with pytest.raises(UidRangeHeld, match="is a symlink or no directory"):
        fleet(tmp_path, "a").reserve()
    (tmp_path / "register").unlink()
    (tmp_path / "register").mkdir()
    (tmp_path / "register").chmod(0o733)
    with pytest.raises(UidRangeHeld, match=r"may be written by others .*chmod 700"):
        fleet(tmp_path, "a").reserve()
    (tmp_path / "register").chmod(0o700)
    (tmp_path / "register" / "register.lock").symlink_to(elsewhere / "target")
    with pytest.raises(OSError):
        fleet(tmp_path, "a").reserve()
    assert not (elsewhere / "target").exists()


@sandbox_need.root("a process as another uid needs root")
def test_a_range_whose_uids_still_run_a_process_is_refused(tmp_path: Path) -> None:
    """An agent a stopped fleet left running holds its uid: its range is refused to
    another fleet, the pid named; the fleet whose agent it is may take it again."""
    uid = SPAN.first + 7 * BLOCK + 3
    sleeper = subprocess.Popen(["sleep", "600"], user=uid, group=uid, extra_groups=[])
    try:
        assert processes_as(UidRange(uid, 1), ()) == (sleeper.pid, uid)
        assert processes_as(UidRange(uid, 1), (uid,)) is None
        b = fleet(tmp_path, "b", UidRange(SPAN.first + 7 * BLOCK, BLOCK), processes_as)
        with pytest.raises(
            UidRangeHeld, match=rf"uid {uid} still runs a process \(pid {sleeper.pid}\)"
        ):
            b.reserve()
    finally:
        sleeper.kill()
        sleeper.wait()


def test_the_record_of_a_stopped_fleet_whose_state_dir_is_gone_is_dropped(
    tmp_path: Path, fleets: list[Lanes]
) -> None:
    """A stopped fleet's state dir removed: its range counts as never held again, and its
    lease file is gone from the register."""
    a = fleet(tmp_path, "a")
    a.reserve()
    a.release()
    (tmp_path / "a").rmdir()
    b = fleet(tmp_path, "b")
    fleets.append(b)
    assert b.reserve() == UidRange(FIRST_UID, BLOCK)
    assert len(list((tmp_path / "register").glob("*.lease"))) == 1


@sandbox_need.root("a register owned by another uid needs root to make")
def test_a_register_another_user_owns_is_refused_naming_the_owner(tmp_path: Path) -> None:
    """A register (or a lease in it) owned by another uid is refused with the fix, and no
    lease is written."""
    register = tmp_path / "register"
    register.mkdir(mode=0o700)
    os.chown(register, 65534, 65534)
    with pytest.raises(UidRangeHeld, match=r"owned by uid 65534: .* remove it"):
        fleet(tmp_path, "a").reserve()
    os.chown(register, 0, 0)
    planted = register / "register.lock"
    planted.write_text("")
    planted.chmod(0o600)
    os.chown(planted, 65534, 65534)
    with pytest.raises(UidRangeHeld, match=r"register\.lock .* not a private file of root's"):
        fleet(tmp_path, "a").reserve()
    assert not list(register.glob("*.lease"))

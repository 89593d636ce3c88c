"""Tests for the freezer: what SIGSTOP reaches, on real processes, and when a run is
paused by signals rather than frozen in its control group."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from fleet.backends import freezer
from fleet.backends.freezer import signal_all
from fleet.errors import FleetError
from fleet.model import RunHandle

# A group leader (standing in for the shim) whose child (the agent) starts a grandchild.
AGENT = "import subprocess; subprocess.run(['sleep', '60'])"
LEADER = f"""
import subprocess, sys
agent = subprocess.Popen([sys.executable, "-c", {AGENT!r}])
print(agent.pid, flush=True)
agent.wait()
"""


def state_of(pid: int) -> str:
    stat = Path(f"/proc/{pid}/stat").read_text()
    return stat[stat.rindex(")") + 2 :].split()[0]


def children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        with contextlib.suppress(OSError, ValueError):
            stat = (entry / "stat").read_text()
            if entry.name.isdigit() and int(stat[stat.rindex(")") + 2 :].split()[1]) == pid:
                found.append(int(entry.name))
    return found


@pytest.fixture
def run() -> Iterator[tuple[int, int, int]]:
    """(leader, agent, grandchild), the leader leading its own session and group."""
    with subprocess.Popen(
        [sys.executable, "-c", LEADER], stdout=subprocess.PIPE, text=True, start_new_session=True
    ) as leader:
        try:
            yield _started(leader)
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(leader.pid, signal.SIGKILL)


def _started(leader: subprocess.Popen[str]) -> tuple[int, int, int]:
    """The pids, once the agent has started its grandchild."""
    assert leader.stdout is not None
    agent = int(leader.stdout.readline())
    deadline = time.monotonic() + 10
    while not children(agent) and time.monotonic() < deadline:
        time.sleep(0.01)
    (grandchild,) = children(agent)
    return leader.pid, agent, grandchild


def settled(check: Callable[[], bool], within: float = 5.0) -> bool:
    """Whether ``check`` holds within ``within`` seconds: a signal is delivered to a
    running process a moment after ``kill`` returns."""
    deadline = time.monotonic() + within
    while not check():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def test_the_agent_and_its_descendants_stop_but_not_the_shim_leading_them(
    run: tuple[int, int, int],
) -> None:
    """The group's leader is the backend's shim: left running (tmux would continue the
    whole group on seeing its pane's process stop); the agent's own processes stop, and
    continue again."""
    leader, agent, grandchild = run
    assert signal_all(agent, leader, signal.SIGSTOP) == 2
    assert settled(lambda: (state_of(agent), state_of(grandchild)) == ("T", "T"))
    assert state_of(leader) != "T"
    assert signal_all(agent, leader, signal.SIGCONT) == 2
    assert "T" not in (state_of(agent), state_of(grandchild))


def test_an_agent_leading_its_own_group_stops_too(run: tuple[int, int, int]) -> None:
    """With no shim (the agent leads its group), the leader is the agent: it stops."""
    leader = run[0]
    assert signal_all(leader, leader, signal.SIGSTOP) == 3
    assert settled(lambda: {state_of(pid) for pid in run} == {"T"})
    signal_all(leader, leader, signal.SIGCONT)


def handle_of(run: tuple[int, int, int], run_dir: Path) -> RunHandle:
    leader, agent, _ = run
    return RunHandle("subprocess", agent, leader, run_dir, run_dir / "output.log")


async def test_a_run_without_a_freezable_group_is_paused_by_signals(
    run: tuple[int, int, int], tmp_path: Path
) -> None:
    """No group recorded (no sandbox, no caps, an older shim): SIGSTOP, then SIGCONT."""
    handle = handle_of(run, tmp_path)
    assert freezer.run_freezer(handle) is None
    assert await freezer.freeze_run(handle) == "SIGSTOP to 2 processes"
    assert settled(lambda: (state_of(run[1]), state_of(run[2])) == ("T", "T"))
    await freezer.thaw_run(handle)
    assert settled(lambda: "T" not in (state_of(run[1]), state_of(run[2])))


async def test_a_run_with_a_freezer_group_is_frozen_there_and_not_signalled(
    run: tuple[int, int, int], tmp_path: Path
) -> None:
    """A group with freezer.state recorded: the freeze is written there and no process is
    stopped by a signal; the thaw writes THAWED there (and SIGCONT, for a run stopped by
    signals before)."""
    group = tmp_path / "freezer-group"  # a stand-in: plain files, no kernel behind them
    group.mkdir()
    (group / "freezer.state").write_text("THAWED")
    (tmp_path / "sandbox.json").write_text(json.dumps({"cgroups": [str(group)]}))
    handle = handle_of(run, tmp_path)
    assert await freezer.freeze_run(handle) == f"control group {group} (cgroup v1 freezer)"
    assert (group / "freezer.state").read_text() == "FROZEN"
    assert "T" not in {state_of(pid) for pid in run}
    os.kill(run[1], signal.SIGSTOP)
    await freezer.thaw_run(handle)
    assert (group / "freezer.state").read_text() == "THAWED"
    assert settled(lambda: state_of(run[1]) != "T")


async def test_a_group_that_refuses_the_freeze_leaves_it_to_signals(
    run: tuple[int, int, int], tmp_path: Path
) -> None:
    """A recorded group whose control file cannot be written (here: a directory in its
    place): SIGSTOP after all, so the run is paused either way."""
    group = tmp_path / "freezer-group"
    (group / "freezer.state").mkdir(parents=True)
    (tmp_path / "sandbox.json").write_text(json.dumps({"cgroups": [str(group)]}))
    handle = handle_of(run, tmp_path)
    assert await freezer.freeze_run(handle) == "SIGSTOP to 2 processes"
    assert settled(lambda: (state_of(run[1]), state_of(run[2])) == ("T", "T"))
    with pytest.raises(FleetError, match=f"could not thaw control group {group}"):
        await freezer.thaw_run(handle)
    assert settled(lambda: "T" not in (state_of(run[1]), state_of(run[2])))

"""A freeze holds against an agent that fights it, on the real kernel and bubblewrap: the
real ``fleetwarden run``, sandboxed agents (the ``command`` runtime) whose main process
writes a tick counter to a file while two more of their processes fork and exit in a tight
loop, each child sending SIGCONT to every process of its sandbox (``kill(-1, SIGCONT)``).
After ``freeze`` says "Froze", no counter moves for 3 s; after ``resume`` they move again;
frozen once more, ``stop`` ends every process of their sandboxes. Alone, and under load:
two such agents at once beside two CPU burners. And the freezer itself, on each cgroup
version this host has, holds the same fight in a group of its own."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from fleet.sandbox.host import cgroup_freezer, cgroups
from fleet.sandbox.host.cgroup_freezer import Freezer, freezer_of
from fleet.sandbox.host.procs import namespace_pids, sandbox_init_pid
from tests import sandbox_need
from tests.integration.console_bot import ROSTER_HEAD, ConsoleBot, pid_alive, wait_until

pytestmark = [pytest.mark.integration, sandbox_need.BWRAP]

log = logging.getLogger(__name__)

HELD = 3.0  # how long a frozen counter must stay still
ESCAPE = """\
import os

for procs in ("freezer/cgroup.procs", "unified/cgroup.procs", "cgroup.procs"):
    try:  # out of its groups, were that allowed (it is not: read-only, not its own)
        with open("/sys/fs/cgroup/" + procs, "w") as out:
            out.write(str(os.getpid()))
    except OSError:
        pass
"""
FIGHT = """\
import os, signal, time

def fight():
    while True:
        child = os.fork()
        if child == 0:
            try:
                os.kill(-1, signal.SIGCONT)  # every process of its pid namespace but init
            finally:
                os._exit(0)
        os.waitpid(child, 0)

for _ in range(2):
    if os.fork() == 0:
        fight()
print("ticking", flush=True)
ticks = 0
while True:
    ticks += 1
    with open("ticks.tmp", "w") as out:
        out.write(str(ticks))
    os.replace("ticks.tmp", "ticks")
    time.sleep(0.005)
"""
AGENT = ESCAPE + FIGHT
ENTRY = """\
  - name: {name}
    runtime: command
    argv: [{python}, -I, {script}]
    workdir: ./{name}-work
"""


def _freezable() -> str | None:
    """Why agents get no control group the kernel can freeze here (None: they do)."""
    where = cgroups.place()
    if where is None:
        return f"no control groups for agents: {cgroups.problem()}"
    if where.version == 1 and where.freezer is None:
        return "no cgroup v1 freezer hierarchy Fleetwarden may write"
    return None


def init_pid_of(tmp_path: Path, name: str) -> int:
    """The host pid of the init of ``name``'s sandbox (its latest run's)."""
    runs = sorted((tmp_path / "state" / "agents" / name / "runs").iterdir())
    pid = sandbox_init_pid(runs[-1])
    assert pid is not None, f"no sandbox recorded for {name}"
    return pid


def ticks(work: Path) -> int:
    """The agent's counter (0 before its first tick); the file is replaced whole."""
    try:
        return int((work / "ticks").read_text())
    except (FileNotFoundError, ValueError):
        return 0


def moving(work: Path, timeout: float = 10.0) -> bool:
    """Whether the counter moves within ``timeout`` seconds from now."""
    start = ticks(work)
    return wait_until(lambda: ticks(work) > start, timeout=timeout)


@pytest.fixture
def burners(request: pytest.FixtureRequest) -> Iterator[int]:
    """``request.param`` CPU burners, killed however the test ends."""
    count = int(request.param)
    started = [subprocess.Popen([sys.executable, "-c", "while 1: pass"]) for _ in range(count)]
    try:
        yield count
    finally:
        for proc in started:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            proc.wait(10)


def deploy(tmp_path: Path, names: list[str]) -> Path:
    """The config of agents ``names``, the fighting script in each one's workdir (the
    config's directory is hidden from them)."""
    entries = []
    for name in names:
        script = tmp_path / f"{name}-work" / "fight.py"
        script.parent.mkdir()
        script.write_text(AGENT)
        entries.append(ENTRY.format(name=name, python=sys.executable, script=script))
    config = tmp_path / "fleetwarden.yaml"
    config.write_text(ROSTER_HEAD.format() + "".join(entries))
    return config


@sandbox_need.needs(_freezable())
@pytest.mark.parametrize(
    ("copies", "burners"), [(1, 0), (2, 2)], ids=["alone", "under-load"], indirect=["burners"]
)
def test_a_frozen_agent_stays_frozen_while_it_forks_and_sends_sigcont(
    tmp_path: Path, copies: int, burners: int
) -> None:
    """After "Froze", no agent's counter moves for 3 s, whatever its processes do; after
    "Resumed", every one moves again; stop ends them."""
    names = [f"fz{index}" for index in range(1, copies + 1)]
    works = {name: tmp_path / f"{name}-work" for name in names}
    bot = ConsoleBot(tmp_path, "--config", str(deploy(tmp_path, names)))
    try:
        for name in names:
            bot.command(f"spawn {name}", rf"Agent {name} started")
        for name in names:
            assert moving(works[name], timeout=30), f"{name} never ticked"

        asked = time.monotonic()
        for name in names:
            bot.command(f"freeze {name}", rf"Froze \*?\*?{name}")
        took = time.monotonic() - asked
        frozen = {name: ticks(works[name]) for name in names}
        moved = wait_until(
            lambda: any(ticks(works[name]) != frozen[name] for name in names), timeout=HELD
        )
        later = {name: ticks(works[name]) for name in names}
        assert not moved and later == frozen, f"frozen at {frozen}, then {later}"
        log.info(
            "%d agent(s), %d burner(s): froze in %.3f s; counters %s held %.0f s",
            copies,
            burners,
            took,
            frozen,
            HELD,
        )

        for name in names:
            bot.command(f"resume {name}", rf"Resumed \*?\*?{name}")
        for name in names:
            assert moving(works[name]), f"{name} did not tick again after resume"

        sandboxes = [pid for name in names for pid in namespace_pids(init_pid_of(tmp_path, name))]
        for name in names:
            bot.command(f"freeze {name}", rf"Froze \*?\*?{name}")
        for name in names:  # frozen: the stop thaws what it kills
            bot.command(f"stop {name}", rf"Stopped {name}", timeout=30)
        assert wait_until(lambda: not any(map(pid_alive, sandboxes)), timeout=30)
        assert bot.close() == 0
    finally:
        if bot.proc.poll() is None:
            bot.kill()


def hierarchy(version: int) -> Path | None:
    """Where a group of cgroup ``version`` can be made here (``None``: nowhere)."""
    top = cgroups.ROOT
    if version == 1:
        where = top / "freezer"
    else:
        where = top if (top / "cgroup.controllers").exists() else top / "unified"
    procs = where / "cgroup.procs"
    return where if procs.exists() and os.access(where, os.W_OK) else None


@pytest.mark.parametrize("version", [1, 2], ids=["v1", "v2"])
def test_the_kernel_freezer_holds_a_group_whatever_its_processes_do(
    tmp_path: Path, version: int
) -> None:
    """The fight in a pid namespace of its own, in a fresh group: once ``freeze`` returns
    the counter stays still for 3 s; after ``thaw`` it moves again."""
    if os.geteuid() != 0:
        sandbox_need.missing("not root: making a control group needs root")
    where = hierarchy(version)
    if where is None:  # a host has one version or both: the other is no missing part
        pytest.skip(f"this host has no cgroup v{version} hierarchy")
    group = where / f"fw-freeze-test-{uuid.uuid4().hex[:8]}"
    freezer = Freezer(group, version)
    (tmp_path / "fight.py").write_text(FIGHT)
    join = 'echo $$ > "$1/cgroup.procs" && shift && exec "$@"'
    argv = ["unshare", "--pid", "--fork", "--kill-child", sys.executable, "-I", "fight.py"]
    group.mkdir()
    try:
        assert freezer_of([group], Path.exists) == freezer
        with subprocess.Popen(
            ["sh", "-c", join, "sh", str(group), *argv], cwd=tmp_path, start_new_session=True
        ) as proc:
            try:
                assert moving(tmp_path, timeout=30), "the fight never ticked"
                asyncio.run(cgroup_freezer.freeze(freezer))
                frozen = ticks(tmp_path)
                moved = wait_until(lambda: ticks(tmp_path) != frozen, timeout=HELD)
                assert not moved and ticks(tmp_path) == frozen
                assert cgroup_freezer.thaw(freezer)
                assert moving(tmp_path), "no tick after the thaw"
            finally:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                for pid in map(int, (group / "cgroup.procs").read_text().split()):
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, signal.SIGKILL)
                cgroup_freezer.thaw(freezer)  # on v1 a SIGKILL waits for it
    finally:
        wait_until(lambda: not (group / "cgroup.procs").read_text().split())
        group.rmdir()

"""The start's bubblewrap probe against a bubblewrap that hangs with a child holding its
pipe (as a sandbox's first process does when bubblewrap is killed half-way): the probe
says so in time, leaves no process and no open pipe behind, and runs in a session of its
own, so the operator's Ctrl-C at the terminal never reaches it."""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from fleet.sandbox.host import bwrap_probe
from tests.integration.console_bot import pid_alive, wait_until

pytestmark = pytest.mark.integration

_HANGS = """#!/bin/sh
# A bubblewrap that never finishes: a child holds stderr open, as a sandbox's init would.
echo "$$ $(ps -o sid= -p $$)" > {record}
sleep 60 &
echo $! >> {record}
sleep 60
"""


@pytest.fixture
def open_dir() -> Iterator[Path]:
    """A directory the probe's user (a lane's, when run as root) may read and run from."""
    where = Path(tempfile.mkdtemp(prefix="fw-probe-"))
    where.chmod(0o777)
    yield where
    shutil.rmtree(where, ignore_errors=True)


def _hanging_bwrap(where: Path) -> tuple[Path, Path]:
    record = where / "record"
    program = where / "bwrap"
    program.write_text(_HANGS.format(record=record))
    program.chmod(0o755)
    return program, record


def _pids(record: Path) -> tuple[int, int, int]:
    first, child = record.read_text().split("\n")[:2]
    pid, sid = first.split()
    return int(pid), int(sid), int(child)


async def test_a_bwrap_that_hangs_is_named_and_nothing_of_it_is_left(
    open_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Past the probe's time: the answer names the hang, and bubblewrap and its child (which
    held the probe's pipe) are gone, so no pipe is left for a closed loop to trip on."""
    monkeypatch.setattr(bwrap_probe, "_PROBE_TIMEOUT", 1.0)
    program, record = _hanging_bwrap(open_dir)
    said = await bwrap_probe.probe(str(program))
    assert said is not None and "did not make a sandbox within" in said
    pid, sid, child = _pids(record)
    assert sid == pid != os.getsid(0)  # a session of its own: the terminal's Ctrl-C misses it
    assert wait_until(lambda: not pid_alive(pid) and not pid_alive(child))


async def test_a_probe_cancelled_half_way_leaves_no_process(open_dir: Path) -> None:
    """Fleetwarden stopped while it probes: bubblewrap and its child are ended before the
    cancellation goes on."""
    program, record = _hanging_bwrap(open_dir)
    task = asyncio.create_task(bwrap_probe.probe(str(program)))
    assert await asyncio.to_thread(wait_until, lambda: len(_lines(record)) >= 2)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    pid, _, child = _pids(record)
    assert wait_until(lambda: not pid_alive(pid) and not pid_alive(child))


def _lines(record: Path) -> list[str]:
    try:
        return [line for line in record.read_text().split("\n") if line]
    except FileNotFoundError:
        return []

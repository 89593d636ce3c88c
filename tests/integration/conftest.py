"""What every integration test shares: no process it started outlives it.

Agents outlive Fleetwarden on purpose (the next start reattaches them), so a test that runs
the real ``fleetwarden`` and spawns agents leaves them running when the bot quits. After
each test, every process whose command line names the test's temporary directory (agents,
their shims, servers run from it), or that works in it (a CLI's hook), is killed with its
process group, pass or fail — and the control groups they are in thawed, as a SIGKILL waits
for the thaw of a frozen one.

The real components the rooms share are fixtures of one place, loaded here
(:mod:`tests.integration.components`): the git upstream and the fake GitHub on it.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.components import github, upstream, upstream_token
from tests.integration.paused import thaw_groups

__all__ = ["github", "upstream", "upstream_token"]

log = logging.getLogger(__name__)


def processes_under(directory: Path) -> list[int]:
    """The pids whose command line mentions ``directory``, or that work in it (a CLI's hook
    its agent started, whose command line names only a URL), never this process."""
    needle, inside = str(directory).encode(), str(directory)
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        with contextlib.suppress(OSError):
            if needle in (entry / "cmdline").read_bytes() or _works_in(entry, inside):
                found.append(int(entry.name))
    return found


def _works_in(process: Path, directory: str) -> bool:
    try:
        cwd = os.readlink(process / "cwd")
    except OSError:
        return False
    return cwd == directory or cwd.startswith(directory + "/")


@pytest.fixture(autouse=True)
def nothing_outlives_the_test(tmp_path: Path) -> Iterator[None]:
    """Kill what the test left running under its temporary directory."""
    yield
    left = processes_under(tmp_path)
    for pid in left:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            group = os.getpgid(pid)
            if group != os.getpgrp():
                os.killpg(group, signal.SIGKILL)
            else:
                os.kill(pid, signal.SIGKILL)
            log.info("killed process %d left running by the test", pid)
    thaw_groups(left)  # after the kills: a frozen process dies without running again

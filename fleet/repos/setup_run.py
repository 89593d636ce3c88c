"""A repository's ``setup`` command (``[npm, ci]``), run in a new checkout inside the agent's
own sandbox before the agent starts — as the agent, with its network, its doors and its
caps — so what the command does is what the agent itself could do, nothing more.

It runs through the agent shim (:mod:`fleet.backends.agent_shim`) as the agent's launch
does, its output appended to the agent's log, within :data:`SETUP_LIMIT`; past it, or when
the command fails, the launch is refused naming the command and where its output is.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
from pathlib import Path
from typing import Final

from fleet.backends.process import shim_argv
from fleet.errors import LaunchFailed
from fleet.model import LaunchPlan
from fleet.private_files import private_dir

SETUP_LIMIT: Final = 900.0


async def run_setup(
    name: str, confined: LaunchPlan, run_dir: Path, log: Path, limit: float = SETUP_LIMIT
) -> None:
    """Run ``confined`` (the setup command inside ``name``'s sandbox) to its end; raises
    :class:`LaunchFailed` when it fails or outlives ``limit`` seconds."""
    private_dir(run_dir)
    log_fd = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        proc = await asyncio.create_subprocess_exec(
            *shim_argv(sys.executable, run_dir, confined),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=log_fd,
            stderr=asyncio.subprocess.STDOUT,
            cwd=confined.cwd,
            env=dict(confined.env),
            start_new_session=True,
        )
    except OSError as exc:
        raise LaunchFailed(f"the setup of {name}'s checkout could not start: {exc}") from None
    finally:
        os.close(log_fd)
    try:
        code = await asyncio.wait_for(proc.wait(), limit)
    except TimeoutError:
        _kill(proc.pid)
        await proc.wait()
        raise LaunchFailed(
            f"the setup of {name}'s checkout took longer than {limit:.0f} s and was "
            f"stopped: see `logs {name}`"
        ) from None
    except BaseException:
        _kill(proc.pid)
        await asyncio.shield(proc.wait())
        raise
    if code != 0:
        raise LaunchFailed(
            f"the setup of {name}'s checkout failed (status {code}): see `logs {name}` "
            "for what it printed"
        )


def _kill(pgid: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signal.SIGKILL)

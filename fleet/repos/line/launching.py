"""What a launch of an agent on a repository needs before it starts: its workdir, the
line's checkout (:func:`workdir_of`) — or a review agent's read-only one of a line's commit
(:func:`review_spec`) — and a new checkout's ``setup`` command (``[npm, ci]``,
:func:`run_setup`), run inside the agent's own sandbox — as the agent, with its network,
its doors and its caps — so what the command does is what the agent itself could do.

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
from fleet.errors import FleetError, LaunchFailed
from fleet.model import AgentSpec, LaunchPlan
from fleet.private_files import open_private, private_dir
from fleet.repos.desk import RepoError
from fleet.repos.line.cutting import Asked
from fleet.repos.line.review import ReviewCheckout
from fleet.repos.service import Prepared, Repos

SETUP_LIMIT: Final = 900.0


async def workdir_of(repos: Repos | None, spec: AgentSpec, asked: Asked | None = None) -> Prepared:
    """``spec`` working in its line's checkout (:meth:`fleet.repos.service.Repos.prepare`;
    on a host, made there over the link), with what its launch ``asked`` of a new line;
    what stops it, as :class:`LaunchFailed`."""
    if repos is None:
        raise LaunchFailed(
            f"{spec.name} works on repository {spec.repo}, but no repositories are "
            "configured: add it under `repos:` in the config"
        )
    try:
        return await repos.prepare(spec, asked)
    except RepoError as exc:
        raise LaunchFailed(str(exc)) from None
    except (FleetError, OSError) as exc:
        raise LaunchFailed(f"the checkout of {spec.repo} could not be made: {exc}") from None


async def review_spec(repos: Repos | None, spec: AgentSpec, review: ReviewCheckout) -> AgentSpec:
    """``spec``, a review agent's, working in its read-only checkout of ``review``'s
    commit (:meth:`fleet.repos.service.Repos.reviews`); what stops it, as
    :class:`LaunchFailed`."""
    if repos is None:
        raise LaunchFailed(f"{spec.name} reviews a line, but no repositories are configured")
    try:
        return await repos.reviews.checkout(spec, review)
    except RepoError as exc:
        raise LaunchFailed(str(exc)) from None
    except (FleetError, OSError) as exc:
        raise LaunchFailed(f"{spec.name}'s checkout to review could not be made: {exc}") from None


async def run_setup(
    name: str, confined: LaunchPlan, run_dir: Path, log: Path, limit: float = SETUP_LIMIT
) -> None:
    """Run ``confined`` (the setup command inside ``name``'s sandbox) to its end; raises
    :class:`LaunchFailed` when it fails or outlives ``limit`` seconds."""
    private_dir(run_dir)
    log_fd = open_private(log, os.O_WRONLY | os.O_APPEND)
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

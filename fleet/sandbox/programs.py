"""A program Fleetwarden runs for itself (a stdio MCP server), confined as an agent is: in
a bubblewrap sandbox of its own (:func:`fleet.sandbox.policy.bwrap_argv`), as a
:class:`~fleet.model.LaunchPlan` the agent shim starts (:func:`fleet.backends.process.shim_argv`),
as a host uid of its own when Fleetwarden is root (a lane of
:class:`fleet.sandbox.lanes.Lanes`, under a name no agent can have), with a private HOME
it keeps between runs, its working directory and the directories it is given bound
writable (the kernel's permissions still hold), and hidden — an empty tmpfs — everything
an agent's sandbox hides from it: the state dir, the config's folder, the ledger's,
Fleetwarden's HOME, ``workdirs:``, every agent's workdir, ``/root``, ``/home``, secret
files.

The program's loader variables (``LD_PRELOAD``…) are set inside the sandbox only (``env``
runs the program with them), never for the shim or bubblewrap, which run as root.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from fleet.errors import LaunchFailed
from fleet.lane_files import hand_over
from fleet.model import LaunchPlan
from fleet.sandbox.host.reach import Walker, arrange
from fleet.sandbox.lanes import RLIMITS
from fleet.sandbox.places import SYSTEM_HIDDEN, needed_paths, real, secret_files
from fleet.sandbox.policy import Bind, Layout, bwrap_argv
from fleet.sandbox.service import Sandboxes

LOADER = ("LD_", "GCONV_PATH", "GLIBC_TUNABLES", "MALLOC_")
"""Variables the dynamic loader or libc reads before a program's own code runs: never
given to what runs as root outside the sandbox."""


@dataclass(frozen=True, slots=True)
class Program:
    """What to run confined: ``argv``, its environment, its working directory (``None``:
    its private HOME), the paths it is given (directories among them bound writable), and
    whether its network is none at all (``locked``)."""

    argv: tuple[str, ...]
    env: Mapping[str, str]
    cwd: Path | None = None
    given: tuple[Path, ...] = ()
    locked: bool = False


@dataclass(frozen=True, slots=True)
class Confined:
    """A :class:`Program` in its sandbox: the plan the shim runs (bubblewrap's command
    line, the uid it runs as, its rlimits, the environment to start it with) and the
    directory the shim records its run in."""

    plan: LaunchPlan
    run_dir: Path


async def confine(
    sandboxes: Sandboxes, lane: str, place: Path, program: Program, others: Iterable[Path]
) -> Confined:
    """``program`` wrapped in a sandbox of lane ``lane`` (its uid's name), its HOME and
    runs under ``place``; ``others``: every agent's workdir, hidden from it.
    :class:`~fleet.errors.LaunchFailed` when no sandbox can be made here."""
    if sandboxes.problem is not None:
        raise LaunchFailed(
            f"cannot be sandboxed here: {sandboxes.problem}. To fix: {sandboxes.fix}"
        )
    settings, others = sandboxes.settings, tuple(others)
    try:
        uid = sandboxes.lanes.uid_for(lane)
        home, run_dir = await asyncio.to_thread(_places, place, uid)
    except OSError as exc:
        raise LaunchFailed(f"cannot make its sandbox's places: {exc}") from exc
    workdir = program.cwd if program.cwd is not None else home
    hidden = (settings.state_dir, *settings.hidden)
    if settings.workdirs is not None:
        hidden += (settings.workdirs,)
    hidden += tuple(p for p in (*SYSTEM_HIDDEN, *others) if p.exists())
    plan = LaunchPlan(argv=program.argv, env=program.env, cwd=workdir)
    # A server is given its PATH's directories, never the rest of a hidden HOME around them.
    agents = (settings.state_dir, *others, *((settings.workdirs,) if settings.workdirs else ()))
    needed = await asyncio.to_thread(
        needed_paths, plan, home, hidden, python=settings.python, prefixes=False, agents=agents
    )
    given = [p for p in program.given if p.is_dir() and real(p) != real(workdir)]
    try:
        placed = await asyncio.to_thread(
            arrange, hidden, (workdir, home), (*needed, *given), Walker.of(uid)
        )
    except OSError as exc:
        raise LaunchFailed(f"cannot be sandboxed: {exc.strerror}") from None
    doors = run_dir / "doors"
    if program.locked:
        doors.mkdir(mode=0o700, exist_ok=True)
    layout = Layout(
        workdir=placed.own[0],
        home=placed.own[1],
        hidden=placed.hidden,
        needed=placed.needed,
        locked=program.locked,
        door_dir=doors if program.locked else None,
        uid=os.getuid() if uid is None else uid,
        masked=secret_files(),
        aliases=(*placed.aliases, *(Bind(real(p), p, True) for p in given)),
    )
    inner, outer = _split_env(program.env)
    command = program.argv
    if inner:
        command = ("env", *(f"{k}={v}" for k, v in inner.items()), "--", *command)
    wrapped = bwrap_argv(layout, command, bwrap=settings.bwrap, python=settings.python)
    outer["HOME"] = str(home)
    limits = tuple(f"{name}={value}" for name, value in RLIMITS)
    plan = LaunchPlan(
        argv=tuple(wrapped),
        env=outer,
        cwd=workdir,
        sandboxed=True,
        run_as=uid,
        rlimits=limits,
    )
    return Confined(plan, run_dir)


def _places(place: Path, uid: int | None) -> tuple[Path, Path]:
    """The program's HOME (kept, handed to ``uid``) and a new directory for this run."""
    place.mkdir(mode=0o700, parents=True, exist_ok=True)
    home = place / "home"
    home.mkdir(mode=0o700, exist_ok=True)
    if uid is not None and home.lstat().st_uid != uid:  # what it wrote there is its own
        hand_over(home, uid)
    runs = place / "runs"
    runs.mkdir(mode=0o700, exist_ok=True)
    run_dir = Path(os.path.realpath(runs / f"{os.getpid()}-{os.urandom(6).hex()}"))
    run_dir.mkdir(mode=0o700)
    return home, run_dir


def _split_env(env: Mapping[str, str]) -> tuple[dict[str, str], dict[str, str]]:
    """``env`` as (what is set only inside the sandbox, what the shim starts with)."""
    inner = {k: v for k, v in env.items() if k.startswith(LOADER)}
    outer = {k: v for k, v in env.items() if k not in inner}
    return inner, outer

"""Where an agent's runs live on disk, and the small file chores around a launch.

<state_dir>/agents/<name>/
    output.log          every run's output, appended, with Fleetwarden's markers
    home/               the agent's private HOME (its CLI config files go here)
    work/               its default working directory
    runs/<stamp-id>/    one run: stdin FIFO, agent.pid, exit.json
"""

from __future__ import annotations

import asyncio
import os
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from fleet.errors import LaunchFailed
from fleet.lane_files import empty_lane_dir, write_lane_file
from fleet.names import AgentName
from fleet.private_files import open_private, private_dir
from fleet.transcript.logtail import read_from, size_of

MARKER = "--- fleetwarden:"


@dataclass(frozen=True, slots=True)
class AgentPaths:
    """The files of one agent under the state dir."""

    root: Path

    @classmethod
    def of(cls, state_dir: Path, name: AgentName) -> AgentPaths:
        return cls(state_dir / "agents" / name)

    @property
    def log(self) -> Path:
        return self.root / "output.log"

    @property
    def home(self) -> Path:
        return self.root / "home"

    @property
    def work(self) -> Path:
        return self.root / "work"

    def new_run_dir(self, now: datetime) -> Path:
        return self.root / "runs" / f"{now.strftime('%Y%m%dT%H%M%S')}-{secrets.token_hex(3)}"


def append_marker(path: Path, text: str) -> None:
    """Write one of Fleetwarden's own lines into an agent's log, on a line of its own (after
    a break, when the agent's output ended without one: readers split runs at markers)."""
    private_dir(path.parent)
    fd = open_private(path, os.O_RDWR | os.O_APPEND)
    try:
        size = os.fstat(fd).st_size
        unended = size > 0 and os.pread(fd, 1, size - 1) != b"\n"
        os.write(fd, (("\n" if unended else "") + f"{MARKER} {text} ---\n").encode())
    finally:
        os.close(fd)


def empty_folders(home: Path, folders: Iterable[Path]) -> None:
    """Empty a runtime's ``folders`` in the agent's ``home`` (:attr:`LaunchPlan.fresh`),
    through no symlink the agent left; one that cannot be emptied refuses the launch."""
    for folder in folders:
        if not folder.is_relative_to(home) or folder == home:
            raise ValueError(f"a runtime asked to empty {folder}, not inside the agent's home")
        try:
            empty_lane_dir(home, folder.relative_to(home).as_posix())
        except OSError as exc:
            raise LaunchFailed(
                f"cannot empty {folder} in the agent's home: {exc.strerror or exc} — remove "
                "what is in its place and start the agent again"
            ) from exc


def write_files(home: Path, files: Mapping[Path, str]) -> None:
    """Write a runtime's config files (mode 0600) into the agent's ``home``, never through
    a symlink the agent left there (:mod:`fleet.lane_files`); a path outside ``home`` is a
    runtime's mistake (``ValueError``). A file the agent made unwritable (a directory, or
    a symlink on the way) refuses the launch with its name and the fix."""
    for path, text in files.items():
        if not path.is_relative_to(home):
            raise ValueError(f"a runtime asked to write {path}, outside the agent's home {home}")
        try:
            write_lane_file(home, path.relative_to(home).as_posix(), text)
        except OSError as exc:
            raise LaunchFailed(
                f"cannot write {path} in the agent's home: {exc.strerror or exc} — remove "
                "what is in its place and start the agent again"
            ) from exc


async def collect_output(path: Path, offset: int, *, wait: float, quiet: float) -> list[str]:
    """What the agent writes after byte ``offset``: for up to ``wait`` seconds, ending early
    once it has written something and then been quiet for ``quiet`` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + wait
    last_size, last_change = offset, loop.time()
    while loop.time() < deadline:
        await asyncio.sleep(0.05)
        size = size_of(path)
        now = loop.time()
        if size != last_size:
            last_size, last_change = size, now
        elif size > offset and now - last_change >= quiet:
            break
    return [line for line in read_from(path, offset).splitlines() if not line.startswith(MARKER)]


def mtime(path: Path) -> datetime | None:
    """When the file last changed, or ``None`` if it does not exist."""
    try:
        return datetime.fromtimestamp(path.stat().st_mtime, UTC)
    except FileNotFoundError:
        return None


def latest(*times: datetime | None) -> datetime | None:
    present = [t for t in times if t is not None]
    return max(present) if present else None

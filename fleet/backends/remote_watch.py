"""Watching a host's runs from here: which still live, and their logs mirrored.

One look a second per host, while it has runs to watch (:data:`LOOK_SCRIPT`: one ``awk``
for every run's liveness, one ``wc -c`` for every log's size — two processes on the host
whatever the number of agents). A log that grew is read from where the last read ended,
over the link's SFTP session, and appended to the agent's log here; where that was is
kept beside the log here (``remote.offset``), so a restarted orchestrator goes on from
there. A run found ended is looked at twice more, so the last of its output (tmux's
``pipe-pane`` writes it a moment after the pane ends) is mirrored too.

While the host cannot be reached, nothing changes here: a run keeps its last known
liveness — never "ended" for want of an answer.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Final, Protocol

from fleet.hosts.errors import HostError
from fleet.hosts.link import ssh as asyncssh
from fleet.hosts.link.connection import HostLink
from fleet.hosts.place import HostPlace
from fleet.model import RunHandle
from fleet.names import is_agent_name
from fleet.private_files import open_private

log = logging.getLogger(__name__)

OFFSET_FILE: Final = "remote.offset"
_READ_MAX: Final = 1 << 20  # bytes of a log read in one look
_AFTER_END: Final = 2  # looks at a run after it ended, for the last of its output

# $1: the tmux server's socket; then in threes: the pane's pid, its start ticks (`-`:
# unknown), the run's log. Prints the server's sessions, then `PID A` (alive) or `PID D`
# (ended) per run, then `wc -c`'s `SIZE PATH` per log.
LOOK_SCRIPT: Final = r"""
tmux -u -f /dev/null -S "$1" list-sessions -F '#{session_name}' 2>/dev/null
printf '@@runs\n'
shift
awk 'BEGIN {
  for (i = 1; i + 2 < ARGC; i += 3) {
    pg = ARGV[i]; want = ARGV[i + 1]; a = "D"; f = "/proc/" pg "/stat"
    if ((getline line < f) > 0) {
      sub(/.*\) /, "", line); split(line, x, " ")
      if (want == "-" || x[20] == want) a = "A"
    }
    close(f); print pg " " a
  }
  exit
}' "$@"
printf '@@sizes\n'
n=0; for arg do n=$((n+1)); [ $((n % 3)) -eq 0 ] && set -- "$@" "$arg"; done
shift "$n"
[ "$#" -gt 0 ] && wc -c -- "$@" 2>/dev/null
exit 0
"""


class HostAccess(Protocol):
    """What the backend needs of the fleet's hosts (:class:`fleet.hosts.service.Hosts`)."""

    def link(self, name: str) -> HostLink | None: ...

    def place(self, name: str) -> HostPlace | None: ...


@dataclass
class Watched:
    """A run to watch: its handle, its agent's tmux session (the log's name there) and
    where the remote log stood when it started (``None``: go on from the record here)."""

    handle: RunHandle
    session: str
    offset: int | None


class RemoteWatch:
    """The looks at one host's runs (see the module's doc)."""

    def __init__(
        self,
        host: str,
        hosts: HostAccess,
        remote_log: Callable[[str], str | None],
        *,
        poll_every: float = 1.0,
    ) -> None:
        self._host = host
        self._hosts = hosts
        self._remote_log = remote_log
        self._every = poll_every
        self._runs: dict[tuple[str, int], Watched] = {}
        self._alive: dict[tuple[str, int], bool] = {}
        self._after_end: dict[tuple[str, int], int] = {}
        self._offsets: dict[str, int] = {}  # session → remote log bytes mirrored
        self._locals: dict[str, Path] = {}  # session → its log here
        self._looked = asyncio.Event()
        self._wake = asyncio.Event()
        self._sessions: tuple[float, set[str]] | None = None  # when, what tmux listed
        self._task: asyncio.Task[None] | None = None

    def add(self, watched: Watched) -> None:
        key = _key(watched.handle)
        if key in self._runs:
            return
        self._runs[key] = watched
        self._locals[watched.session] = watched.handle.log_path
        if watched.offset is not None:
            self._set_offset(watched.session, watched.offset)
        elif watched.session not in self._offsets:
            recorded = _read_offset(watched.handle.log_path)
            if recorded is not None:
                self._offsets[watched.session] = recorded
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._loop(), name=f"remote-watch-{self._host}")
        self._wake.set()

    def alive(self, handle: RunHandle) -> bool | None:
        """Whether the host last said ``handle`` lives (``None``: not yet looked at)."""
        key = _key(handle)
        if key not in self._runs and key not in self._alive:
            self.add(Watched(handle, handle.session or "", None))
        return self._alive.get(key)

    async def ended(self, handle: RunHandle) -> None:
        """Return once the host has said ``handle`` ended."""
        while self.alive(handle) is not False:
            await self.next_look()

    async def next_look(self) -> None:
        await self._looked.wait()

    def look_now(self) -> None:
        self._wake.set()

    def sessions(self, fresh: float) -> set[str] | None:
        """The tmux sessions the last look saw, if it was at most ``fresh`` s ago."""
        if self._sessions is None:
            return None
        at, names = self._sessions
        return names if time.monotonic() - at <= fresh else None

    async def flush(self, watched: Watched) -> None:
        """Mirror what ``watched``'s log holds now (a launch that failed: why)."""
        self._locals[watched.session] = watched.handle.log_path
        if watched.offset is not None:
            self._set_offset(watched.session, watched.offset)
        with contextlib.suppress(HostError, OSError, asyncssh.Error):
            await asyncio.sleep(0.2)  # tmux's pipe writes a moment after the pane ends
            await self._mirror(watched.session, None)

    async def close(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    # -- the loop ----------------------------------------------------------------------

    async def _loop(self) -> None:
        while self._runs:
            try:
                await self._look()
            except (HostError, OSError, asyncssh.Error) as exc:
                log.debug("host %s: a look at its runs failed: %s", self._host, exc)
            except Exception:
                log.exception("host %s: a look at its runs failed", self._host)
            looked, self._looked = self._looked, asyncio.Event()
            looked.set()
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._every):
                    await self._wake.wait()

    async def _look(self) -> None:
        link = self._hosts.link(self._host)
        if link is None or self._hosts.place(self._host) is None:
            return
        place = self._hosts.place(self._host)
        if place is None:
            return
        args: list[str] = [place.tmux_socket]
        logs: dict[str, str] = {}  # remote log → session
        for (session, pgid), watched in self._runs.items():
            remote = self._remote_log(session)
            if remote is None:
                return
            ticks = watched.handle.start_ticks
            args += [str(pgid), str(ticks) if ticks is not None else "-", remote]
            logs[remote] = session
        result = await link.run(["sh", "-c", LOOK_SCRIPT, "sh", *args], timeout=30.0)
        listed, _, rest = result.stdout.partition("@@runs\n")
        # Only an agent's name names a session of ours: anything else the host lists is
        # no drift to show (nor text of its choosing in `ps`).
        self._sessions = (time.monotonic(), {s for s in listed.split() if is_agent_name(s)})
        states, _, sizes = rest.partition("@@sizes\n")
        alive = {}
        for line in states.splitlines():
            pid, _, mark = line.partition(" ")
            if pid.isascii() and pid.isdigit():
                alive[int(pid)] = mark == "A"
        for line in sizes.splitlines():
            size, _, path = line.strip().partition(" ")
            grown = logs.pop(path, None)  # listed once a run: two runs of one agent share it
            if grown is not None and size.isascii() and size.isdigit():
                await self._mirror(grown, int(size))
        for key in list(self._runs):
            if key[1] in alive:
                self._alive[key] = alive[key[1]]
            if self._alive.get(key) is False:
                left = self._after_end.get(key, _AFTER_END)
                if left <= 0:
                    del self._runs[key]
                    self._after_end.pop(key, None)
                else:
                    self._after_end[key] = left - 1

    async def _mirror(self, session: str, size: int | None) -> None:
        """Append what the remote log gained since the last read to the log here."""
        remote_log = self._remote_log(session)
        local = self._locals.get(session)
        link = self._hosts.link(self._host)
        if remote_log is None or local is None or link is None:
            return
        offset = self._offsets.get(session)
        if offset is None:  # never mirrored, no record here: from now on
            if size is not None:
                self._set_offset(session, size)
            return
        if size is not None and size <= offset:
            if size < offset:  # the remote log was cut: start over from its beginning
                self._set_offset(session, 0)
            return
        sftp = await link.sftp()
        async with sftp.open(remote_log, "rb", encoding=None) as fh:
            await fh.seek(offset)
            data: object = await fh.read(_READ_MAX)
        if not isinstance(data, bytes) or not data:
            return
        fd = open_private(local, os.O_WRONLY | os.O_APPEND)
        try:
            os.write(fd, data)
        finally:
            os.close(fd)
        self._set_offset(session, offset + len(data))
        if size is not None and offset + len(data) < size:
            self._wake.set()  # more to read: look again at once

    def _set_offset(self, session: str, offset: int) -> None:
        self._offsets[session] = offset
        local = self._locals.get(session)
        if local is not None:
            with contextlib.suppress(OSError):
                tmp = local.parent / f"{OFFSET_FILE}.tmp"
                tmp.write_text(str(offset))
                tmp.replace(local.parent / OFFSET_FILE)


def _key(handle: RunHandle) -> tuple[str, int]:
    return handle.session or "", handle.pgid


def _read_offset(log_path: Path) -> int | None:
    try:
        text = (log_path.parent / OFFSET_FILE).read_text().strip()
    except OSError:
        return None
    return int(text) if text.isascii() and text.isdigit() else None

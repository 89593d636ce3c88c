"""Headless runs on another host (``subprocess@HOST``): the agent under the same shim as
here, started detached over the host's SSH link, with no terminal.

The launcher (the tmux backend's, which reads the run's private launch spec and execs the
shim) is started by a fixed script as the leader of a new session (``setsid``), in the
background, with its output appended to the agent's log there and its input the run's
FIFO (``RUN_DIR/stdin``, opened read-write so that no writer's close ends it) — or
``/dev/null`` for a run that takes none — and under a systemd user scope where the host
has one. It is no child of the SSH session: it outlives the connection and a restart of
the orchestrator, as a tmux server does.

Everything else is the remote tmux backend's (:mod:`fleet.backends.remote_tmux`): the run
watched from one look a second, its log mirrored here, stopped and signalled by its process
group. Input is written to the FIFO over the link, a line at a time — which is all a live
session needs (:mod:`fleet.sessions`: its driver writes the CLI's control protocol with
``send_input`` and reads its output from the log here), so live sessions and the asks
they carry work there as here, a mirror's look (at most a second) later.
"""

from __future__ import annotations

import asyncio
import posixpath
from typing import Final

from fleet.backends.process import SNAPSHOT_LINES
from fleet.backends.remote_tmux import SCOPE, RemoteTmuxBackend
from fleet.backends.remote_watch import HostAccess
from fleet.backends.tmux import LAUNCHER
from fleet.errors import AgentNotRunning, LaunchFailed
from fleet.hosts.errors import HostError
from fleet.hosts.place import HostPlace
from fleet.hosts.remote import failure
from fleet.model import LaunchPlan, RunHandle
from fleet.transcript.logtail import tail_lines

PYTHON: Final = "python3"
_MAX_INPUT: Final = 64 * 1024
_INPUT_WAIT: Final = 10.0

# $1 run dir, $2 log, $3 1 when it takes input; the rest is the command. Prints its pid.
_START = r"""
run=$1; log=$2; takes=$3; shift 3
if [ "$takes" = 1 ]; then
  [ -p "$run/stdin" ] || mkfifo -m 600 "$run/stdin" || exit 1
  in=$run/stdin
else
  in=/dev/null
fi
"$@" <>"$in" >>"$log" 2>&1 &
echo $!
"""


class RemoteHeadlessBackend(RemoteTmuxBackend):
    """Agents as detached processes on one host, headless."""

    tty = False  # input is a FIFO and output a file: runtimes run headless

    def __init__(self, host: str, hosts: HostAccess, *, poll_every: float = 1.0) -> None:
        super().__init__(host, hosts, poll_every=poll_every)
        self.name = f"subprocess@{host}"

    async def _start(
        self,
        plan: LaunchPlan,
        session: str,
        place: HostPlace,
        spec_path: str,
        remote_run: str,
        remote_log: str,
    ) -> int:
        link = self._hosts.link(self.host)
        if link is None:
            raise LaunchFailed(f"no host {self.host} in the config's hosts")
        command = [*(SCOPE if place.user_scope else ()), "setsid"]
        command += [PYTHON, "-I", "-S", place.bundled(LAUNCHER), spec_path]
        takes = "1" if plan.takes_input else "0"
        try:
            done = await link.run(
                ["sh", "-c", _START, "sh", remote_run, remote_log, takes, *command], timeout=30
            )
        except HostError as exc:
            raise LaunchFailed(str(exc)) from None
        pid = done.stdout.strip().splitlines()[-1:] if done.ok else []
        if not pid or not (pid[0].isascii() and pid[0].isdigit()):
            why = failure(self.host, done)
            raise LaunchFailed(f"host {self.host} could not start {session}: {why}")
        return int(pid[0])

    async def _kill_session(self, session: str, pane_pid: int) -> None:
        return  # no tmux session: the run's group is all there is

    async def sessions(self) -> set[str]:
        return set()  # headless runs have no tmux session (the host's tmux@ backend lists those)

    async def send_input(self, handle: RunHandle, text: str) -> None:
        """One line to the run's FIFO there; raises AgentNotRunning if it no longer runs."""
        data = text.rstrip("\n") + "\n"
        if len(data.encode()) > _MAX_INPUT:
            raise AgentNotRunning(f"input too long ({len(data.encode())} bytes)")
        place = self._hosts.place(self.host)
        link = self._hosts.link(self.host)
        if place is None or link is None or not self.is_alive(handle):
            raise AgentNotRunning(f"{handle.session} is not running (or its host is away)")
        fifo = posixpath.join(place.run_dir(handle.session or "", handle.run_dir.name), "stdin")
        try:
            done = await link.run(
                ["sh", "-c", '[ -p "$1" ] && exec cat > "$1"', "sh", fifo],
                input=data,
                timeout=_INPUT_WAIT,
            )
        except HostError as exc:
            raise AgentNotRunning(f"could not write to {handle.session}: {exc}") from None
        if not done.ok:
            raise AgentNotRunning(f"{handle.session} takes no input")

    async def read_output(self, handle: RunHandle, lines: int) -> list[str]:
        return await asyncio.to_thread(tail_lines, handle.log_path, lines)

    async def snapshot(self, handle: RunHandle) -> str:
        return "\n".join(await asyncio.to_thread(tail_lines, handle.log_path, SNAPSHOT_LINES))

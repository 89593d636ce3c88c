"""The subprocess backend: each agent a plain child process in its own process group.

Layout of one run (``run_dir``)::

    stdin       a FIFO the agent reads as standard input; ``send`` writes lines to it
    agent.pid   the agent's pid, written by the shim once the agent runs
    exit.json   how the agent ended, written by the shim

The agent is started under :mod:`fleet.backends.agent_shim`, the leader of a new session,
so that (a) a stop can signal the agent *and everything it forked* as one process group,
and (b) the exit status is on disk even when Fleetwarden restarted in between and is no
longer the parent. The FIFO is opened read-write by the agent itself, so it never sees
end-of-file and a restarted Fleetwarden can still write to it.

Process ends are watched with pidfds (no thread, no polling per agent).
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import os
import signal
import subprocess
import sys
from pathlib import Path

from fleet.backends.freezer import FreezesLocally, thaw_for_stop
from fleet.backends.runfiles import (
    ExitWatcher,
    await_agent_pid,
    end_group,
    read_exit,
    signal_reason,
)
from fleet.errors import AgentNotRunning, LaunchFailed
from fleet.model import ExitInfo, LaunchPlan, RunHandle
from fleet.private_files import open_private, private_dir
from fleet.sandbox.host.procfs import process_start_ticks
from fleet.sandbox.host.procs import kill_sandbox
from fleet.transcript.logtail import tail_lines

log = logging.getLogger(__name__)

SHIM = Path(__file__).with_name("agent_shim.py")
_MAX_INPUT = 64 * 1024
SNAPSHOT_LINES = 40  # a terminal's worth of the log, for `snapshot`


class SubprocessBackend(FreezesLocally):
    """Agents as local child processes."""

    name = "subprocess"
    tty = False  # stdin is a FIFO and stdout a file: runtimes run headless

    def __init__(self, python: str = sys.executable) -> None:
        self._python = python
        self._children: dict[int, subprocess.Popen[bytes]] = {}
        self._exits = ExitWatcher(self.is_alive, self._collect)

    async def launch(self, plan: LaunchPlan, run_dir: Path, log_path: Path) -> RunHandle:
        # Synchronous on purpose: a mkdir and a fork+exec take well under a millisecond, and
        # asyncio's own subprocess support would add a waiter thread per agent.
        private_dir(run_dir)
        private_dir(log_path.parent)
        if plan.takes_input:
            fifo = run_dir / "stdin"
            if not fifo.exists():
                os.mkfifo(fifo, 0o600)
            stdin_fd = os.open(fifo, os.O_RDWR | os.O_CLOEXEC)
        else:  # a headless run: end of input at once (some CLIs otherwise wait on stdin)
            stdin_fd = os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC)
        log_fd = open_private(log_path, os.O_WRONLY | os.O_APPEND)
        try:
            proc = subprocess.Popen(  # noqa: ASYNC220
                shim_argv(self._python, run_dir, plan),
                stdin=stdin_fd,
                stdout=log_fd,
                stderr=subprocess.STDOUT,
                cwd=plan.cwd,
                env=dict(plan.env),
                start_new_session=True,
                close_fds=True,
            )
        except OSError as exc:
            raise LaunchFailed(f"could not start the agent: {exc.strerror}") from exc
        finally:
            os.close(stdin_fd)
            os.close(log_fd)
        self._children[proc.pid] = proc
        agent_pid = await await_agent_pid(
            run_dir, lambda: _shim_ended(proc), on_timeout=lambda: _kill_group(proc.pid)
        )
        return RunHandle(
            backend=self.name,
            pid=agent_pid,
            pgid=proc.pid,
            run_dir=run_dir,
            log_path=log_path,
            start_ticks=process_start_ticks(proc.pid),
        )

    def is_alive(self, handle: RunHandle) -> bool:
        child = self._children.get(handle.pgid)
        if child is not None:
            return child.poll() is None
        ticks = process_start_ticks(handle.pgid)
        return ticks is not None and (handle.start_ticks is None or ticks == handle.start_ticks)

    async def wait(self, handle: RunHandle) -> ExitInfo:
        return await self._exits.wait(handle)

    def _collect(self, handle: RunHandle) -> ExitInfo:
        """How the run ended: the shim's record first, then what we reaped, else unknown."""
        child = self._children.pop(handle.pgid, None)
        shim_status = child.wait() if child is not None else None
        recorded = read_exit(handle.run_dir)
        if recorded is not None:
            return recorded
        if shim_status is not None and shim_status < 0:
            return ExitInfo(shim_status, signal_reason(-shim_status))
        if shim_status is not None:
            return ExitInfo(shim_status, f"exited with status {shim_status}")
        return ExitInfo(None, "ended while Fleetwarden was not running; status unknown")

    async def stop(self, handle: RunHandle, *, grace: float, force: bool = False) -> ExitInfo:
        ended = asyncio.ensure_future(self.wait(handle))
        info = await end_group(
            handle.pgid, ended, grace=grace, force=force, thaw=lambda: thaw_for_stop(handle)
        )
        kill_sandbox(handle.run_dir)  # whatever left the group dies with the namespace
        return info

    async def send_input(self, handle: RunHandle, text: str) -> None:
        data = (text.rstrip("\n") + "\n").encode()
        if len(data) > _MAX_INPUT:
            raise AgentNotRunning(f"input too long ({len(data)} bytes; at most {_MAX_INPUT})")
        _write_fifo(handle.run_dir / "stdin", data)

    async def read_output(self, handle: RunHandle, lines: int) -> list[str]:
        return await asyncio.to_thread(tail_lines, handle.log_path, lines)

    async def snapshot(self, handle: RunHandle) -> str:
        return "\n".join(await asyncio.to_thread(tail_lines, handle.log_path, SNAPSHOT_LINES))

    async def sessions(self) -> set[str]:
        return set()  # plain processes have no sessions to drift


def shim_argv(python: str, run_dir: Path, plan: LaunchPlan) -> list[str]:
    """The agent shim's command line for ``plan`` (both backends start agents with it)."""
    sandbox = ["--sandbox"] if plan.sandboxed else []
    if plan.sandboxed and plan.run_as is not None:
        sandbox += ["--user", str(plan.run_as)]
    for limit in plan.rlimits if plan.sandboxed else ():
        sandbox += ["--rlimit", limit]
    for group in plan.cgroups if plan.sandboxed else ():
        sandbox += ["--cgroup", group]
    return [python, "-I", "-S", str(SHIM), str(run_dir), *sandbox, "--", *plan.argv]


def _shim_ended(proc: subprocess.Popen[bytes]) -> str | None:
    return None if proc.poll() is None else f"status {proc.returncode}"


def _kill_group(pgid: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signal.SIGKILL)


def _write_fifo(path: Path, data: bytes) -> None:
    """Write all of ``data`` or nothing; never block on an agent that does not read.

    Writes of at most PIPE_BUF bytes are atomic; a longer line needs the pipe's free
    space (64 KiB when the agent keeps up), which is checked by the write itself."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as exc:
        if exc.errno in (errno.ENXIO, errno.ENOENT):
            raise AgentNotRunning("the agent is not reading its input") from exc
        raise
    try:
        written = os.write(fd, data)
    except BlockingIOError:
        written = 0
    finally:
        os.close(fd)
    if written < len(data):
        raise AgentNotRunning(
            "the agent's input is full: it has not read what it was sent before"
            + (f" (only {written} of {len(data)} bytes went in)" if written else "")
        )

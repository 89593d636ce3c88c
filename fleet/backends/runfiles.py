"""Reading and signalling a run, shared by the backends.

Both backends start the agent under :mod:`fleet.backends.agent_shim`, which leads the
agent's process group and records the run in its directory: ``agent.pid`` once the agent
runs, ``exit.json`` when it ends. These helpers read those files and signal the group.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
from collections.abc import Callable
from pathlib import Path

from fleet.errors import LaunchFailed
from fleet.model import ExitInfo, RunHandle
from fleet.redaction.guard import guarded, says

log = logging.getLogger(__name__)

STARTUP_TIMEOUT = 10.0
REASON_CAP = 300  # characters of an exit record's reason
POLL_MAX = 0.005  # seconds at most between two looks for the agent's pid


def signal_group(pgid: int, signum: signal.Signals) -> None:
    """Send ``signum`` to process group ``pgid``; a group that is gone is no error."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signum)


def signal_reason(signum: int) -> str:
    """How a run killed by ``signum`` ended, in words."""
    try:
        return f"killed by {signal.Signals(signum).name}"
    except ValueError:
        return f"killed by signal {signum}"


def read_text(path: Path) -> str:
    """The file's text, stripped; empty if it does not exist (yet) or is not UTF-8."""
    try:
        return path.read_text(encoding="utf-8").strip()
    except (FileNotFoundError, ValueError):
        return ""


def read_exit(run_dir: Path, *, written_by: str | None = None) -> ExitInfo | None:
    """The shim's record of how the run ended, or ``None`` while there is none.

    Its reason is another process's text (on a host, the host's): it is kept as one line,
    bounded (:mod:`fleet.redaction.guard`), so no line of it passes for one of ours where
    it is shown or marked in the agent's log. ``written_by`` names who wrote the record
    when it is not this machine (``host box2``): the reason is then quoted as theirs."""
    text = read_text(run_dir / "exit.json")
    if not text:
        return None
    try:
        record = json.loads(text)
        code = record.get("exit_code")
        if isinstance(code, int) and code < 0:
            return ExitInfo(code, signal_reason(-code))
        said = str(record.get("reason", ""))
        if written_by is not None:
            reason = says(written_by, said, REASON_CAP)
        else:
            reason = guarded(said, limit=REASON_CAP)
        return ExitInfo(code if isinstance(code, int) else None, reason)
    except (ValueError, AttributeError):
        return ExitInfo(None, "exit record unreadable")


async def await_agent_pid(
    run_dir: Path,
    shim_ended: Callable[[], str | None],
    *,
    on_timeout: Callable[[], None] | None = None,
) -> int:
    """The agent's pid, once the shim has started it (or :class:`LaunchFailed`).

    ``shim_ended()`` says why the shim is gone, or ``None`` while it runs; it is asked only
    when the shim left no exit record. ``on_timeout`` cleans up before giving up after
    :data:`STARTUP_TIMEOUT` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + STARTUP_TIMEOUT
    # A fork+exec takes a few ms, a sandbox's start tens: poll fast, then a little less
    # fast — a spawn's answer waits on it (two small reads a poll).
    delay = 0.002
    while loop.time() < deadline:
        pid_text = read_text(run_dir / "agent.pid")
        if pid_text:
            return int(pid_text)
        exit_info = read_exit(run_dir)
        reason = exit_info.reason if exit_info is not None else shim_ended()
        if reason is not None:
            raise LaunchFailed(f"the agent did not start: {reason}")
        await asyncio.sleep(delay)
        delay = min(delay * 2, POLL_MAX)
    if on_timeout is not None:
        on_timeout()
    raise LaunchFailed(f"the agent did not start within {STARTUP_TIMEOUT:.0f} s")


class ExitWatcher:
    """One future per run, resolved when the run's shim — its process group leader —
    ends. A pidfd tells us, whether or not we are its parent (after a restart we never
    are; under tmux we never were): no thread and no polling per agent."""

    def __init__(
        self, is_alive: Callable[[RunHandle], bool], collect: Callable[[RunHandle], ExitInfo]
    ) -> None:
        self._is_alive = is_alive
        self._collect = collect
        self._exits: dict[int, asyncio.Future[ExitInfo]] = {}

    async def wait(self, handle: RunHandle) -> ExitInfo:
        """How the run ended, once it has."""
        future = self._exits.get(handle.pgid)
        if future is None:
            future = asyncio.get_running_loop().create_future()
            self._exits[handle.pgid] = future
            self._watch(handle, future)
        return await asyncio.shield(future)

    def _watch(self, handle: RunHandle, future: asyncio.Future[ExitInfo]) -> None:
        loop = asyncio.get_running_loop()
        if not self._is_alive(handle):
            future.set_result(self._collect(handle))
            return
        try:
            pidfd = os.pidfd_open(handle.pgid)
        except ProcessLookupError:
            future.set_result(self._collect(handle))
            return

        def on_exit() -> None:
            loop.remove_reader(pidfd)
            os.close(pidfd)
            if not future.done():
                future.set_result(self._collect(handle))

        loop.add_reader(pidfd, on_exit)


async def end_group(
    pgid: int,
    ended: asyncio.Future[ExitInfo],
    *,
    grace: float,
    force: bool,
    thaw: Callable[[], None] | None = None,
) -> ExitInfo:
    """End a run's process group: SIGTERM, then SIGKILL after ``grace`` seconds (at once
    with ``force``); ``ended`` resolves when the leader has gone. Whatever of the group
    outlived the leader is killed too. ``thaw`` is called right after the first signal:
    a run its control group holds frozen acts on none until thawed, and thawed after the
    signal it runs nothing before heeding it."""
    if not ended.done():
        signal_group(pgid, signal.SIGKILL if force else signal.SIGTERM)
        if thaw is not None:
            thaw()
        done, _ = await asyncio.wait({ended}, timeout=None if force else grace)
        if not done:
            log.info("agent group %d ignored SIGTERM for %.1f s; killing it", pgid, grace)
            signal_group(pgid, signal.SIGKILL)
    info = await ended
    signal_group(pgid, signal.SIGKILL)
    return info

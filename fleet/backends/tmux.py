"""The tmux backend: each agent in a session of a private tmux server, in a real terminal.

One tmux server per Fleetwarden (``tmux -L SOCKET``, started with ``-f /dev/null`` so no
user configuration applies, and a minimal environment); one session per agent, named
after the agent. Operators can look in with ``tmux -L SOCKET attach -t =NAME``.

The pane's process is :mod:`fleet.backends.tmux_launch`, which reads the plan from a
0600 file in the run directory and execs (same pid) the agent shim the subprocess
backend uses (:mod:`fleet.backends.agent_shim`), so a run directory looks alike
in both backends (``agent.pid``, ``exit.json``) and the pane's process — a session
leader, as tmux makes it — leads the agent's process group. Nothing from the plan goes
through tmux's own argument parser: tmux would end a command at an argument ending in
``;``, format-expand ``-c`` and show ``-e`` values in ``ps``. The pane's environment is
exactly the plan's, plus ``TERM`` (the terminal tmux emulates) when the plan sets none.

Output reaches the log through ``pipe-pane`` (raw terminal output: CRLF line ends, and
escape sequences when the agent draws a TUI). Input is typed with ``send-keys -l``.

Every tmux call goes through :mod:`fleet.backends.tmux_client` (an argv list with a
time limit). Targets use the exact-match form: ``=NAME`` for a session, ``=NAME:`` for
its pane (tmux 3.3 does not resolve ``=NAME`` as a pane).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import re
import shlex
import signal
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

from fleet.backends.freezer import FreezesLocally, thaw_for_stop
from fleet.backends.process import SNAPSHOT_LINES, shim_argv
from fleet.backends.runfiles import ExitWatcher, await_agent_pid, end_group, read_exit, signal_group
from fleet.backends.tmux_client import SERVER_EXITING, TmuxCalls, TmuxClient, no_formats
from fleet.backends.tmux_client import TmuxResult as TmuxResult  # re-exported
from fleet.backends.tmux_client import tmux_argv as tmux_argv  # re-exported
from fleet.backends.tmux_client import tmux_client_env as tmux_client_env  # re-exported
from fleet.errors import AgentNotRunning, FleetError, LaunchFailed
from fleet.model import ExitInfo, LaunchPlan, RunHandle
from fleet.names import is_agent_name
from fleet.private_files import open_private, private_dir
from fleet.sandbox.host.procfs import process_start_ticks
from fleet.sandbox.host.procs import kill_sandbox
from fleet.transcript.logtail import tail_lines

log = logging.getLogger(__name__)

LAUNCHER = Path(__file__).with_name("tmux_launch.py")
WIDTH, HEIGHT = 200, 50
HISTORY_LIMIT = 10_000
INHERITED_FROM_PANE = ("TERM",)

_ABANDON_GRACE = 1.0
_ECHO_TIMEOUT = 2.0  # how long typed input may take to show on the agent's screen
_MAX_INPUT = 64 * 1024
_MAX_COMMAND = 8 * 1024  # bytes of arguments per tmux call (tmux refuses ~16 KiB)
_CHUNK = 1024  # characters per send-keys argument
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")  # all C0 controls but tab and newline


class TmuxBackend(FreezesLocally):
    """Agents as sessions of a private tmux server."""

    name = "tmux"
    tty = True  # agents get a real terminal: runtimes start their interactive UI

    def __init__(
        self,
        socket_name: str,
        *,
        python: str = sys.executable,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        self._tmux = TmuxClient(socket_name, os.environ if environ is None else environ)
        self._client: TmuxCalls = self._tmux
        self._python = python
        self._exits = ExitWatcher(self.is_alive, _collect)

    @property
    def socket_name(self) -> str:
        """The private server's socket (``tmux -L`` this to look in)."""
        return self._client.socket_name

    # -- launching ---------------------------------------------------------------------

    async def launch(self, plan: LaunchPlan, run_dir: Path, log_path: Path) -> RunHandle:
        session = session_name(plan)
        # Synchronous on purpose, as in the subprocess backend: a few small file writes.
        private_dir(run_dir)
        private_dir(log_path.parent)
        os.close(open_private(log_path, os.O_WRONLY | os.O_APPEND))
        spec_path = run_dir / "launch.json"
        argv = shim_argv(self._python, run_dir, plan)
        _write_private(spec_path, launch_spec(plan, argv, run_dir))
        try:
            pane_pid = await self._new_session(session, plan.cwd, spec_path, log_path)
            try:
                agent_pid = await await_agent_pid(run_dir, lambda: _pane_closed(pane_pid, log_path))
                with contextlib.suppress(ProcessLookupError):  # ended already: nothing to lead
                    if os.getsid(pane_pid) != pane_pid:
                        raise LaunchFailed(f"tmux session {session}: its pane is no session leader")
            except BaseException:
                await self._abandon(session, pane_pid)
                raise
        finally:
            with contextlib.suppress(FileNotFoundError):
                spec_path.unlink()  # the launcher deletes it; this is for failed launches
        return RunHandle(
            backend=self.name,
            pid=agent_pid,
            pgid=pane_pid,
            run_dir=run_dir,
            log_path=log_path,
            start_ticks=process_start_ticks(pane_pid),
            session=session,
        )

    async def _new_session(self, session: str, cwd: Path, spec_path: Path, log_path: Path) -> int:
        """Create the session and attach the log in one tmux call, so the pipe is in place
        before tmux reads the pane's first output. Returns the pane's pid."""
        pane = f"={session}:"
        new_session = [
            "new-session", "-d", "-P", "-F", "#{pane_pid}", "-s", session,
            "-x", str(WIDTH), "-y", str(HEIGHT), "-c", no_formats(str(cwd)),
            "--", self._python, "-I", "-S", str(LAUNCHER), str(spec_path),
        ]  # fmt: skip
        commands = (
            # The server stays up without sessions: no race between the last agent ending
            # (the server exiting) and the next launch. shutdown_server() ends it.
            ["set-option", "-s", "exit-empty", "off"],
            ["set-option", "-g", "history-limit", str(HISTORY_LIMIT)],
            new_session,
            ["pipe-pane", "-o", "-t", pane, pipe_command(log_path)],
        )
        result = await self._client.run(*commands, error=LaunchFailed)
        if SERVER_EXITING in result.stderr:  # someone shut it down as we connected: once more
            result = await self._client.run(*commands, error=LaunchFailed)
        if result.status != 0:
            raise LaunchFailed(f"tmux could not start session {session}: {result.message}")
        try:
            return int(result.stdout.split()[0])
        except (IndexError, ValueError):
            raise LaunchFailed(
                f"tmux started session {session} but did not say its pid: {result.stdout!r}"
            ) from None

    async def _abandon(self, session: str, pane_pid: int) -> None:
        """Clean up after a failed launch: let the pane's process finish writing why (so it
        reaches the log), then kill what is left of its group and its session."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(_ABANDON_GRACE):
                await _exited(pane_pid)
        signal_group(pane_pid, signal.SIGKILL)
        await self._kill_session(session, pane_pid)

    # -- watching and stopping ------------------------------------------------------------

    def is_alive(self, handle: RunHandle) -> bool:
        ticks = process_start_ticks(handle.pgid)
        return ticks is not None and (handle.start_ticks is None or ticks == handle.start_ticks)

    async def wait(self, handle: RunHandle) -> ExitInfo:
        return await self._exits.wait(handle)

    async def stop(self, handle: RunHandle, *, grace: float, force: bool = False) -> ExitInfo:
        ended = asyncio.ensure_future(self.wait(handle))
        info = await end_group(
            handle.pgid, ended, grace=grace, force=force, thaw=lambda: thaw_for_stop(handle)
        )
        kill_sandbox(handle.run_dir)  # whatever left the group dies with the namespace
        if handle.session is not None:
            await self._kill_session(handle.session, handle.pgid)
        return info

    async def _kill_session(self, session: str, pane_pid: int) -> None:
        """Kill ``session`` if it is still the one whose pane ran ``pane_pid`` — not a
        newer session of the same name. tmux usually removed it already."""
        panes = await self._client.run(
            ["list-panes", "-s", "-t", f"={session}", "-F", "#{pane_pid}"]
        )
        if panes.status == 0 and str(pane_pid) in panes.stdout.split():
            killed = await self._client.run(["kill-session", "-t", f"={session}"])
            if killed.status != 0 and not killed.gone:
                raise FleetError(f"tmux could not kill session {session}: {killed.message}")

    # -- input and output -------------------------------------------------------------------

    async def send_input(self, handle: RunHandle, text: str) -> None:
        """Type ``text`` and press Enter. Lines of a multi-line text are joined with C-j,
        which a line-reading agent takes as a line end and a TUI as a newline inside one
        message. Control characters other than tab are dropped. Raises AgentNotRunning
        unless the screen changes within a short time (nothing is typed twice)."""
        session = _session_of(handle)
        cleaned = clean_input(text)
        size = len(cleaned.encode())
        if size > _MAX_INPUT:
            raise AgentNotRunning(f"input too long ({size} bytes; at most {_MAX_INPUT})")
        if not self.is_alive(handle):
            raise AgentNotRunning(f"the agent in tmux session {session} is no longer running")
        before = await self._screen_state(handle, session)
        if before is None:
            raise AgentNotRunning(f"tmux session {session} is gone")
        for batch in batch_commands(input_commands(f"={session}:", cleaned)):
            result = await self._client.run(*batch)
            if result.gone:
                raise AgentNotRunning(f"tmux session {session} is gone: {result.message}")
            if result.status != 0:
                raise FleetError(f"tmux could not type into session {session}: {result.message}")
        loop = asyncio.get_running_loop()
        deadline = loop.time() + _ECHO_TIMEOUT
        delay = 0.01
        while loop.time() < deadline:
            # A session gone by now took the text: the agent ended after it (e.g. `exit`).
            if await self._screen_state(handle, session) != before:
                return
            await asyncio.sleep(delay)
            delay = min(delay * 2, 0.25)
        raise AgentNotRunning(
            f"typed into tmux session {session}, but its screen did not change within "
            f"{_ECHO_TIMEOUT:.0f} s: the agent may be hung (look with `tmux -L {self.socket_name} "
            f"attach -t ={session}`)"
        )

    async def _screen_state(self, handle: RunHandle, session: str) -> str | None:
        """The visible screen plus cursor and history size (any echo of input changes it),
        or ``None`` if the session is gone or no longer runs ``handle``'s process."""
        pane = f"={session}:"
        result = await self._client.run(
            ["display-message", "-p", "-t", pane,
             "#{pane_pid} #{cursor_x},#{cursor_y} #{history_size}"],
            ["capture-pane", "-p", "-t", pane],
        )  # fmt: skip
        if result.gone:
            return None
        if result.status != 0:
            raise FleetError(f"tmux could not read session {session}: {result.message}")
        if result.stdout.split(" ", 1)[0] != str(handle.pgid):
            return None  # a newer session of the same name: not ours to type into
        return result.stdout

    async def read_output(self, handle: RunHandle, lines: int) -> list[str]:
        """The last ``lines`` lines of the pane (scrollback and screen, wrapped lines
        joined); the log's when the session is gone."""
        if lines <= 0:
            return []
        count = min(lines, HISTORY_LIMIT)
        if handle.session is not None:
            result = await self._client.run(
                ["capture-pane", "-p", "-J", "-S", f"-{count}", "-t", f"={handle.session}:"]
            )
            if result.status == 0:
                return screen_lines(result.stdout)[-count:]
            if not result.gone:
                raise FleetError(f"tmux could not read session {handle.session}: {result.message}")
        return await asyncio.to_thread(tail_lines, handle.log_path, count)

    async def snapshot(self, handle: RunHandle) -> str:
        """What the pane shows now (trailing blank rows dropped); once the session is gone,
        the end of the log."""
        if handle.session is not None:
            result = await self._client.run(["capture-pane", "-p", "-t", f"={handle.session}:"])
            if result.status == 0:
                return "\n".join(screen_lines(result.stdout))
            if not result.gone:
                raise FleetError(f"tmux could not read session {handle.session}: {result.message}")
        return "\n".join(await asyncio.to_thread(tail_lines, handle.log_path, SNAPSHOT_LINES))

    # -- the server ------------------------------------------------------------------------

    async def sessions(self) -> set[str]:
        """Every session on our server (empty if it is not running). Without the server's
        socket there is no server: no tmux process is started to find that out (`ps`
        asks on every call)."""
        if not self.socket_path().exists():
            return set()
        result = await self._client.run(["list-sessions", "-F", "#{session_name}"])
        if result.gone:
            return set()
        if result.status != 0:
            raise FleetError(f"tmux could not list sessions: {result.message}")
        return set(result.stdout.splitlines())

    def socket_path(self) -> Path:
        """Where tmux puts our server's socket: ``$TMUX_TMPDIR/tmux-UID/NAME``."""
        return self._tmux.socket_path()

    async def shutdown_server(self) -> None:
        """Kill the private tmux server and every session on it, and remove its socket
        (tmux leaves the file behind). For tests and teardown."""
        where = await self._client.run(["display-message", "-p", "#{socket_path}"])
        result = await self._client.run(["kill-server"])
        if result.status != 0 and not result.gone:
            raise FleetError(f"tmux could not stop its server: {result.message}")
        socket_path = where.stdout.strip() if where.status == 0 else ""
        if socket_path:
            with contextlib.suppress(OSError):
                os.unlink(socket_path)


# -- pure helpers ---------------------------------------------------------------------------


def session_name(plan: LaunchPlan) -> str:
    """The tmux session of the agent ``plan`` starts: its name, from the plan's
    ``FLEETWARDEN_AGENT`` (every runtime's environment carries it)."""
    name = plan.env.get("FLEETWARDEN_AGENT", "")
    if not is_agent_name(name):
        raise LaunchFailed(
            "the tmux backend names a session after its agent, but the plan's environment "
            f"has no valid FLEETWARDEN_AGENT (got {name!r})"
        )
    return name


def launch_spec(plan: LaunchPlan, argv: Sequence[str], run_dir: Path) -> str:
    """The launcher's instructions (see :mod:`fleet.backends.tmux_launch`)."""
    return json.dumps(
        {
            "argv": list(argv),
            "env": dict(plan.env),
            "inherit": list(INHERITED_FROM_PANE),
            "cwd": str(plan.cwd),
            "run_dir": str(run_dir),
        }
    )


def pipe_command(log_path: Path) -> str:
    """The shell command ``pipe-pane`` runs (tmux format-expands it first)."""
    return no_formats(f"exec cat >> {shlex.quote(str(log_path))}")


def clean_input(text: str) -> str:
    """The text to type: one trailing newline dropped, CRLF as LF, no control characters."""
    text = text.replace("\r\n", "\n").removesuffix("\n")
    return _CONTROL.sub("", text)


def input_commands(pane: str, text: str) -> list[list[str]]:
    """``send-keys`` commands that type ``text`` into ``pane``, then press Enter."""
    commands: list[list[str]] = []
    for index, line in enumerate(text.split("\n")):
        if index:
            commands.append(["send-keys", "-t", pane, "C-j"])
        for start in range(0, len(line), _CHUNK):
            commands.append(["send-keys", "-t", pane, "-l", "--", line[start : start + _CHUNK]])
    commands.append(["send-keys", "-t", pane, "Enter"])
    return commands


def batch_commands(commands: list[list[str]]) -> list[list[list[str]]]:
    """``commands`` grouped into tmux calls that stay under tmux's message size."""
    batches: list[list[list[str]]] = []
    size = 0
    for command in commands:
        cost = sum(len(arg.encode()) + 2 for arg in command) + 2
        if not batches or size + cost > _MAX_COMMAND:
            batches.append([])
            size = 0
        batches[-1].append(command)
        size += cost
    return batches


def screen_lines(captured: str) -> list[str]:
    """``capture-pane`` output as lines, right-trimmed, without the blank rows at the end."""
    lines = [line.rstrip() for line in captured.split("\n")]
    while lines and not lines[-1]:
        lines.pop()
    return lines


async def _exited(pid: int) -> None:
    """Return once process ``pid`` has ended (at once if it already has)."""
    try:
        pidfd = os.pidfd_open(pid)
    except ProcessLookupError:
        return
    loop = asyncio.get_running_loop()
    ended = asyncio.Event()
    loop.add_reader(pidfd, ended.set)
    try:
        await ended.wait()
    finally:
        loop.remove_reader(pidfd)
        os.close(pidfd)


def _pane_closed(pane_pid: int, log_path: Path) -> str | None:
    if process_start_ticks(pane_pid) is not None:
        return None
    return f"its tmux pane closed (see {log_path})"


def _session_of(handle: RunHandle) -> str:
    if handle.session is None:
        raise AgentNotRunning(f"run {handle.run_dir.name} has no tmux session")
    return handle.session


def _collect(handle: RunHandle) -> ExitInfo:
    """How the run ended: the shim's record, else unknown (tmux reaped the pane, not us)."""
    recorded = read_exit(handle.run_dir)
    if recorded is not None:
        return recorded
    return ExitInfo(None, "its tmux pane ended without an exit record; status unknown")


def _write_private(path: Path, text: str) -> None:
    """Create ``path`` readable by us only (it holds the agent's secrets)."""
    fd = open_private(path, os.O_WRONLY | os.O_EXCL)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(text)

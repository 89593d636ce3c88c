"""The tmux client plumbing: how Fleetwarden talks to its private tmux server.

Every tmux call is an argv list (``tmux -u -f /dev/null -L SOCKET …``, so no user
configuration applies) run with a minimal environment and a time limit. Several commands
go in one call joined with ``;``; an argument that itself ends in ``;`` is escaped as
``\\;``, which tmux turns back. Arguments tmux format-expands get ``#`` doubled.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from fleet.errors import FleetError

TMUX_TIMEOUT = 10.0
SERVER_EXITING = "server exited unexpectedly"  # we connected while it shut down
_DEFAULT_PATH = "/usr/local/bin:/usr/bin:/bin"
_GONE = (
    "no server running",
    "error connecting to",
    "can't find",
    "no current target",
    SERVER_EXITING,
)


@dataclass(frozen=True, slots=True)
class TmuxResult:
    """What one tmux client call printed, and its exit status."""

    status: int
    stdout: str
    stderr: str

    @property
    def gone(self) -> bool:
        """Whether it failed because the server or the target does not exist."""
        return self.status != 0 and any(text in self.stderr for text in _GONE)

    @property
    def message(self) -> str:
        return self.stderr.strip() or f"tmux exited with status {self.status}"


class TmuxCalls(Protocol):
    """What the tmux backend needs of a client: its server's name, and calls to it (run
    here, :class:`TmuxClient`, or over SSH on another host)."""

    @property
    def socket_name(self) -> str: ...

    async def run(
        self, *commands: Sequence[str], error: type[FleetError] = FleetError
    ) -> TmuxResult: ...


class TmuxClient:
    """Runs tmux client calls against one private server (``tmux -L socket_name``)."""

    def __init__(self, socket_name: str, environ: Mapping[str, str]) -> None:
        self._socket = socket_name
        self._env = tmux_client_env(environ)

    @property
    def socket_name(self) -> str:
        return self._socket

    def socket_path(self) -> Path:
        """Where tmux puts the server's socket: ``$TMUX_TMPDIR/tmux-UID/NAME``."""
        base = Path(self._env.get("TMUX_TMPDIR") or "/tmp")
        return base / f"tmux-{os.getuid()}" / self._socket

    async def run(
        self, *commands: Sequence[str], error: type[FleetError] = FleetError
    ) -> TmuxResult:
        """Run one tmux client call (several commands joined with ``;``)."""
        argv = tmux_argv(self._socket, commands)
        try:
            proc = await asyncio.create_subprocess_exec(
                *argv,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                env=self._env,
                start_new_session=True,  # an operator's Ctrl-C is Fleetwarden's, not tmux's
            )
        except OSError as exc:
            raise error(f"cannot run tmux: {exc.strerror} (is tmux installed?)") from exc
        try:
            out, err = await asyncio.wait_for(proc.communicate(), TMUX_TIMEOUT)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()
            raise error(
                f"tmux did not answer within {TMUX_TIMEOUT:.0f} s ({commands[0][0]})"
            ) from None
        except BaseException:  # cancelled: the client is not left running
            if proc.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
            await asyncio.shield(proc.wait())
            raise
        return TmuxResult(
            proc.returncode if proc.returncode is not None else -1,
            out.decode("utf-8", errors="replace"),
            err.decode("utf-8", errors="replace"),
        )


def tmux_client_env(environ: Mapping[str, str]) -> dict[str, str]:
    """The environment of every tmux client call, and so of the server the first one
    starts: just enough to find tmux and the socket, nothing of Fleetwarden's secrets."""
    env = {"PATH": environ.get("PATH", _DEFAULT_PATH), "LANG": "C.UTF-8"}
    if "TMUX_TMPDIR" in environ:
        env["TMUX_TMPDIR"] = environ["TMUX_TMPDIR"]
    return env


def tmux_argv(socket_name: str, commands: Sequence[Sequence[str]]) -> list[str]:
    """The client's argv: our socket, no configuration file, ``commands`` joined by ``;``."""
    argv = ["tmux", "-u", "-f", "/dev/null", "-L", _escape(socket_name)]
    for index, command in enumerate(commands):
        if index:
            argv.append(";")
        argv.extend(_escape(arg) for arg in command)
    return argv


def no_formats(text: str) -> str:
    """``text`` for an argument tmux format-expands: ``#`` stays a literal ``#``."""
    return text.replace("#", "##")


def _escape(arg: str) -> str:
    """tmux ends a command at an argument ending in ``;``; ``\\;`` there means a literal one."""
    return arg[:-1] + "\\;" if arg.endswith(";") else arg

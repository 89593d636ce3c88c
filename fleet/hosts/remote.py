"""One command on a host: an argv list made into the command line a remote shell runs
word for word, and how it ended.

sshd hands a command *line* to the user's login shell (``$SHELL -c LINE``). So the line is
``shlex.join(argv)``: every argument single-quoted where it needs to be, arriving as one
word, literally — ``$(…)``, ``;``, quotes and newlines included. The login shell must be a
POSIX one (sh, bash, dash, ksh, zsh); csh and fish quote otherwise.
"""

from __future__ import annotations

import shlex
from collections.abc import Sequence
from dataclasses import dataclass

from fleet.hosts.errors import HostDown, RemoteCommandFailed, ssh_says
from fleet.hosts.link import ssh as asyncssh
from fleet.redaction.guard import says


@dataclass(frozen=True, slots=True)
class RemoteResult:
    """How a remote command ended: its exit status (``None``, or -1, when a signal killed
    it: then ``exit_signal`` names it) and what it wrote, decoded as UTF-8."""

    exit_status: int | None
    stdout: str
    stderr: str
    exit_signal: str | None = None

    @property
    def ok(self) -> bool:
        return self.exit_status == 0


def failure(host: str | None, done: RemoteResult) -> str:
    """Why ``done`` failed on ``host`` (its name, where known), in a line of ours: what the
    host wrote on its error output, quoted as its own words (``host box2 says “…”``: one
    line, bounded), else how it ended."""
    if done.stderr.strip():
        return says(f"host {host}" if host else "the host", done.stderr)
    if done.exit_signal:
        return f"killed by {done.exit_signal} there"
    return f"exit status {done.exit_status} there"


def remote_command(argv: Sequence[str]) -> str:
    """The command line that makes a POSIX shell run exactly ``argv``."""
    if isinstance(argv, str) or not argv:
        raise ValueError("a remote command is a non-empty list of arguments")
    if any(not isinstance(arg, str) or "\0" in arg for arg in argv):
        raise ValueError("remote command arguments are strings without NUL characters")
    return shlex.join(argv)


async def run_on(
    conn: asyncssh.SSHClientConnection,
    host: str,
    argv: Sequence[str],
    *,
    input: str | None,
    # Given to asyncssh, which closes the channel when it runs out; cancelling the call
    # from outside would leave the channel open.
    timeout: float,  # noqa: ASYNC109
) -> RemoteResult:
    """Run ``argv`` on a channel of ``conn`` and wait for it to end. Raises
    :class:`RemoteCommandFailed` when it cannot start or overruns ``timeout`` (its channel
    is closed then; the remote process sees its input and output go), :class:`HostDown`
    when the connection goes."""
    command = remote_command(argv)
    try:
        done = await conn.run(
            command, input=input, check=False, timeout=timeout, encoding="utf-8", errors="replace"
        )
    except asyncssh.TimeoutError:
        raise RemoteCommandFailed(
            f"host {host}: {argv[0]} did not finish within {timeout:g} s"
        ) from None
    except asyncssh.ChannelOpenError as exc:
        raise RemoteCommandFailed(f"host {host}: cannot start {argv[0]}: {ssh_says(exc)}") from None
    except (OSError, asyncssh.DisconnectError) as exc:
        raise HostDown(f"host {host}: connection lost: {ssh_says(exc)}") from None
    signal = done.exit_signal[0] if done.exit_signal else None
    return RemoteResult(done.exit_status, _text(done.stdout), _text(done.stderr), signal)


def _text(value: object) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return value if isinstance(value, str) else ""

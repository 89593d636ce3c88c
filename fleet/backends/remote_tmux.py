"""The tmux backend on another host: each agent in a session of a private tmux server
there, started, watched and stopped over the host's one SSH connection.

Everything runs as on this machine — the same launcher execs the same shim
(``agent.pid``, ``exit.json`` in the run's directory there), tmux's ``pipe-pane``
appends the pane's output to the agent's log there — but every step is a fixed argv list
or a fixed POSIX script on a channel of the link (:mod:`fleet.hosts.link.connection`), and
files go over its SFTP session. The tmux server (``tmux -S STATE_DIR/tmux.sock``) is
started by the first session and lives on the host, not in the SSH session: agents
outlive the connection that started them and a restart of the orchestrator.

This machine keeps what the rest of the fleet reads:

* **the log**, mirrored: :class:`~fleet.backends.remote_watch.RemoteWatch` reads what the
  remote log gained since the last look (an SFTP read from an offset, never the whole
  file) and appends it to the agent's log here, so ``logs``, the feed and the run
  summaries read it as they read a local agent's;
* **how a run ended**: the run's ``exit.json`` is copied into its run directory here.

While the host cannot be reached nothing is known of its agents: :meth:`is_alive` keeps
saying what it last knew (never "dead"), and :meth:`wait` waits for the host.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import posixpath
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Final

from fleet.backends.process import SHIM
from fleet.backends.remote_tmux_client import RemoteTmuxClient, host_up
from fleet.backends.remote_watch import HostAccess, RemoteWatch, Watched
from fleet.backends.runfiles import read_exit
from fleet.backends.tmux import (
    HEIGHT,
    HISTORY_LIMIT,
    LAUNCHER,
    WIDTH,
    TmuxBackend,
    launch_spec,
    pipe_command,
    session_name,
)
from fleet.backends.tmux_client import SERVER_EXITING, no_formats
from fleet.errors import FleetError, LaunchFailed
from fleet.hosts.errors import HostError, ssh_says
from fleet.hosts.lanes import set_up_lane, write_home
from fleet.hosts.link import ssh as asyncssh
from fleet.hosts.link.connection import HostLink
from fleet.hosts.place import HostPlace
from fleet.hosts.remote import RemoteResult, failure
from fleet.model import ExitInfo, LaunchPlan, RunHandle
from fleet.names import is_agent_name
from fleet.private_files import open_private, private_dir

log = logging.getLogger(__name__)

PYTHON: Final = "python3"
"""The host's Python runs the launcher and the shim (standard library only)."""
SCOPE: Final = ("systemd-run", "--user", "--scope", "--quiet", "--collect", "--")
"""Where a launch's tmux call runs when the host's user has a systemd manager: a tmux server
it starts lives in a scope of its own, not in the SSH session's (which logind may end at
logout, with every process in it)."""

# Waits for the shim's agent.pid (or its exit record, or the pane's end); prints
# `pid N` and `ticks T` (the pane's start time, field 22 of its /proc stat), or `ended`.
_AWAIT_PID = r"""
run=$1; pane=$2; i=0
while [ ! -s "$run/agent.pid" ]; do
  if [ -e "$run/exit.json" ] || [ ! -d "/proc/$pane" ]; then echo ended; exit 0; fi
  i=$((i+1)); [ "$i" -gt 400 ] && { echo timeout; exit 0; }
  sleep 0.025
done
printf 'pid %s\n' "$(cat "$run/agent.pid")"
printf 'ticks %s\n' "$(sed 's/.*) //' "/proc/$pane/stat" 2>/dev/null | cut -d' ' -f20)"
"""

# Ends a run's process group: SIGTERM, then SIGKILL after $3 tenths of a second (at once
# when $4 is 1) — if /proc/$1 is still the process started at $2 (`-`: unknown). `kill -SIG
# -PGID`, without `--`, which dash's kill does not take.
_END_GROUP = r"""
pg=$1; ticks=$2; tenths=$3; force=$4
alive() {
  t=$(sed 's/.*) //' "/proc/$pg/stat" 2>/dev/null | cut -d' ' -f20)
  [ -n "$t" ] && { [ "$ticks" = - ] || [ "$t" = "$ticks" ]; }
}
alive || exit 0
if [ "$force" != 1 ]; then
  kill -TERM "-$pg" 2>/dev/null; i=0
  while alive && [ "$i" -lt "$tenths" ]; do sleep 0.1; i=$((i+1)); done
fi
alive && kill -KILL "-$pg" 2>/dev/null
i=0; while alive && [ "$i" -lt 50 ]; do sleep 0.1; i=$((i+1)); done
exit 0
"""

# Sends signal $2 to every process of group $1 but its leader (the shim, tmux's pane: tmux
# continues a pane process it sees stopped), twice over for processes forked meanwhile.
_SIGNAL_GROUP = r"""
pg=$1; sig=$2
for pass in 1 2; do
  for f in /proc/[0-9]*/stat; do
    IFS= read -r line < "$f" 2>/dev/null || continue
    set -- ${line##*) }
    [ "$3" = "$pg" ] || continue
    p=${f#/proc/}; p=${p%/stat}
    [ "$p" = "$pg" ] || kill "-$sig" "$p" 2>/dev/null
  done
done
exit 0
"""

_PREPARE = r"""
umask 077
mkdir -p -- "$1" "$2" "$3" || exit 1
: >> "$4" && chmod 600 -- "$4" || exit 1
wc -c < "$4"
"""


class RemoteTmuxBackend(TmuxBackend):
    """Agents as sessions of a private tmux server on one host."""

    tty = True

    def __init__(self, host: str, hosts: HostAccess, *, poll_every: float = 1.0) -> None:
        super().__init__(f"remote-{host}")
        self.name = f"tmux@{host}"
        self.host = host
        self._hosts = hosts
        self._remote = RemoteTmuxClient(host, hosts)
        self._client = self._remote
        self._watch = RemoteWatch(host, hosts, self._remote_log, poll_every=poll_every)

    async def close(self) -> None:
        await self._watch.close()

    # -- launching ---------------------------------------------------------------------

    async def launch(self, plan: LaunchPlan, run_dir: Path, log_path: Path) -> RunHandle:
        link, place = host_up(self._hosts, self.host, LaunchFailed)
        session = session_name(plan)
        private_dir(run_dir)
        private_dir(log_path.parent)
        os.close(open_private(log_path, os.O_WRONLY | os.O_APPEND))
        remote_run = place.run_dir(session, run_dir.name)
        remote_log = place.log_of(session)
        prepared = await _run(
            link,
            ["sh", "-c", _PREPARE, "sh", remote_run, str(plan.cwd), place.home_of(session),
             remote_log],
            LaunchFailed,
        )  # fmt: skip
        size = prepared.stdout.split()[-1:]
        if not prepared.ok or not (size and size[0].isascii() and size[0].isdigit()):
            raise LaunchFailed(
                f"host {self.host}: cannot prepare the run: {failure(self.host, prepared)}"
            )
        offset = int(size[0])
        sandbox = ["--sandbox"] if plan.sandboxed else []
        if plan.sandboxed and plan.run_as is not None:  # a lane: the login there is root
            sandbox += ["--user", str(plan.run_as)]
        for limit in plan.rlimits if plan.sandboxed else ():
            sandbox += ["--rlimit", limit]
        argv = [PYTHON, "-I", "-S", place.bundled(SHIM), remote_run, *sandbox, "--"]
        argv += [self._remote_arg(arg, place) for arg in plan.argv]
        spec_path = posixpath.join(remote_run, "launch.json")
        env = {key: _remote_text(value, place) for key, value in plan.env.items()}
        files = {str(path): _remote_text(text, place) for path, text in plan.files.items()}
        fresh = [str(folder) for folder in plan.fresh]
        if plan.sandboxed and plan.run_as is not None:  # written as root into its lane
            home = place.home_of(session)
            await set_up_lane(link, place, plan.run_as, home, str(plan.cwd), files, fresh)
            files, fresh = {}, []
        if files or fresh:  # a CLI's config naming a gate, say: through no link the agent left
            await write_home(link, place, place.home_of(session), files, fresh)
        try:
            sftp = await link.sftp()
            spec = launch_spec(dataclasses.replace(plan, env=env), argv, Path(remote_run))
            await _write(sftp, spec_path, spec)
        except (OSError, asyncssh.Error, HostError) as exc:
            why = str(exc) if isinstance(exc, HostError) else ssh_says(exc)
            raise LaunchFailed(f"host {self.host}: cannot write the run's files: {why}") from None
        pane_pid = await self._start(plan, session, place, spec_path, remote_run, remote_log)
        waited = await _run(link, ["sh", "-c", _AWAIT_PID, "sh", remote_run, str(pane_pid)])
        facts = dict(line.split(" ", 1) for line in waited.stdout.splitlines() if " " in line)
        told = facts.get("pid", "").strip()
        if not (told.isascii() and told.isdigit()):  # the host's answer, read strictly
            handle = RunHandle(self.name, pane_pid, pane_pid, run_dir, log_path, None, session)
            info = await self._ended(handle, place)
            await self._kill_session(session, pane_pid)
            await self._watch.flush(Watched(handle, session, offset))
            raise LaunchFailed(f"the agent did not start on host {self.host}: {info.reason}")
        ticks = facts.get("ticks", "").strip()
        handle = RunHandle(
            backend=self.name,
            pid=int(told),
            pgid=pane_pid,
            run_dir=run_dir,
            log_path=log_path,
            start_ticks=int(ticks) if ticks.isascii() and ticks.isdigit() else None,
            session=session,
        )
        self._watch.add(Watched(handle, session, offset))
        return handle

    async def _start(
        self,
        plan: LaunchPlan,
        session: str,
        place: HostPlace,
        spec_path: str,
        remote_run: str,
        remote_log: str,
    ) -> int:
        """Start the launcher on ``spec_path`` there, its output appended to ``remote_log``;
        the pid of the process that leads the run's group (here: the tmux pane's)."""
        cwd = str(plan.cwd)
        new_session = [
            "new-session", "-d", "-P", "-F", "#{pane_pid}", "-s", session,
            "-x", str(WIDTH), "-y", str(HEIGHT), "-c", no_formats(cwd),
            "--", PYTHON, "-I", "-S", place.bundled(LAUNCHER), spec_path,
        ]  # fmt: skip
        commands = (
            ["set-option", "-s", "exit-empty", "off"],
            ["set-option", "-g", "history-limit", str(HISTORY_LIMIT)],
            new_session,
            ["pipe-pane", "-o", "-t", f"={session}:", pipe_command(Path(remote_log))],
        )
        scope = SCOPE if place.user_scope else ()
        result = await self._remote.run(*commands, error=LaunchFailed, prefix=scope)
        if SERVER_EXITING in result.stderr:
            result = await self._remote.run(*commands, error=LaunchFailed, prefix=scope)
        if result.status != 0:
            raise LaunchFailed(
                f"tmux on host {self.host} could not start session {session}: {result.message}"
            )
        try:
            return int(result.stdout.split()[0])
        except (IndexError, ValueError):
            raise LaunchFailed(
                f"tmux on host {self.host} did not say session {session}'s pid"
            ) from None

    def _remote_arg(self, arg: str, place: HostPlace) -> str:
        """A plan's argument as the host runs it: this Python is the host's ``python3``,
        a script bundled with Fleetwarden is its copy in the host's ``lib/``."""
        if arg == sys.executable:
            return PYTHON
        if arg in place.copied:
            return place.bundled(Path(arg))
        return arg

    # -- watching and stopping ------------------------------------------------------------

    def is_alive(self, handle: RunHandle) -> bool:
        """What the host last said (an unseen run, or one on a host that cannot be reached
        now, counts as alive: nothing says it ended)."""
        return self._watch.alive(handle) is not False

    async def wait(self, handle: RunHandle) -> ExitInfo:
        await self._watch.ended(handle)
        while True:
            place = self._hosts.place(self.host)
            if place is not None:
                try:
                    return await self._ended(handle, place)
                except HostError:
                    pass
            await self._watch.next_look()

    async def _ended(self, handle: RunHandle, place: HostPlace) -> ExitInfo:
        """The run's exit record from the host, kept in its run directory here too."""
        session = handle.session or ""
        link = self._hosts.link(self.host)
        if link is None:
            raise HostError(f"host {self.host} is not configured")
        remote = posixpath.join(place.run_dir(session, handle.run_dir.name), "exit.json")
        result = await link.run(["cat", remote])
        if result.ok and result.stdout.strip():
            target = handle.run_dir / "exit.json"
            tmp = target.with_suffix(".tmp")
            tmp.write_text(result.stdout)
            tmp.replace(target)
        recorded = read_exit(handle.run_dir, written_by=f"host {self.host}")
        if recorded is not None:
            return recorded
        return ExitInfo(None, f"its tmux pane on host {self.host} ended without an exit record")

    async def stop(self, handle: RunHandle, *, grace: float, force: bool = False) -> ExitInfo:
        link, _place = host_up(self._hosts, self.host, FleetError)
        ticks = str(handle.start_ticks) if handle.start_ticks is not None else "-"
        tenths = str(max(0, round(grace * 10)))
        script = ["sh", "-c", _END_GROUP, "sh", str(handle.pgid), ticks, tenths, str(int(force))]
        await _run(link, script, FleetError, timeout=grace + 30)
        if handle.session is not None:
            await self._kill_session(handle.session, handle.pgid)
        self._watch.look_now()
        return await self.wait(handle)

    async def freeze(self, handle: RunHandle) -> None:
        """SIGSTOP to the run's process group on the host (no control group is made there)."""
        await self.signal(handle, signal.SIGSTOP)

    async def thaw(self, handle: RunHandle) -> None:
        await self.signal(handle, signal.SIGCONT)

    async def signal(self, handle: RunHandle, signum: signal.Signals) -> None:
        link, _place = host_up(self._hosts, self.host, FleetError)
        name = signum.name.removeprefix("SIG")
        done = await _run(link, ["sh", "-c", _SIGNAL_GROUP, "sh", str(handle.pgid), name])
        if not done.ok:
            raise FleetError(
                f"host {self.host}: could not signal run {handle.pgid}: {failure(self.host, done)}"
            )
        log.info("host %s: %s sent to process group %d", self.host, signum.name, handle.pgid)

    async def sessions(self) -> set[str]:
        """The sessions of the host's tmux server: as the last look saw them (at most 2 s
        ago, so ``ps`` costs no round trip), else asked now."""
        if self._hosts.place(self.host) is None:
            return set()
        seen = self._watch.sessions(fresh=2.0)
        if seen is not None:
            return seen
        result = await self._client.run(["list-sessions", "-F", "#{session_name}"])
        if result.gone or result.status != 0:
            return set()
        return {name for name in result.stdout.splitlines() if is_agent_name(name)}

    async def shutdown_server(self) -> None:
        result = await self._client.run(["kill-server"])
        if result.status != 0 and not result.gone:
            raise FleetError(f"tmux on host {self.host} could not stop: {result.message}")

    def _remote_log(self, session: str) -> str | None:
        place = self._hosts.place(self.host)
        return place.log_of(session) if place is not None else None

    def watched(self, handle: RunHandle) -> None:
        """Follow ``handle`` (a run of an earlier orchestrator, reattached)."""
        self._watch.add(Watched(handle, handle.session or "", None))


def _remote_text(text: str, place: HostPlace) -> str:
    """``text`` with each script copied to the host named by its copy there (its path, or
    within a ``file://`` URI); executable text stays so."""
    kind = type(text)
    for local in sorted(place.copied, key=len, reverse=True):
        if local in text:
            text = kind(text.replace(local, place.bundled(Path(local))))
    return text


async def _run(
    link: HostLink,
    argv: Sequence[str],
    error: type[FleetError] = FleetError,
    *,
    timeout: float = 30.0,  # noqa: ASYNC109
) -> RemoteResult:
    try:
        return await link.run(argv, timeout=timeout)
    except HostError as exc:
        raise error(str(exc)) from None


async def _write(sftp: asyncssh.SFTPClient, path: str, text: str) -> None:
    """A private file on the host (0600), made afresh."""
    attrs = asyncssh.SFTPAttrs(permissions=0o600)
    flags = "w"
    async with sftp.open(path, flags, attrs) as fh:
        await fh.write(text)
    await sftp.chmod(path, 0o600)

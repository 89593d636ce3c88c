"""Where Fleetwarden's things live on a host, and readying each new connection to it.

On every connection, before the link counts as up (:func:`prepare`):

* the remote user's home is asked for, and the entry's ``state_dir`` made absolute with it;
* the state dir is made (mode 0700) with ``lib/`` and ``agents/`` in it, and the entry's
  ``workdirs`` if it names one;
* Fleetwarden's standalone scripts — the agent shim, the tmux launcher, the stub agent —
  are copied to ``lib/`` under their path in the package (so a run there starts the same
  shim as here: ``agent.pid``, ``exit.json``);
* the **forwards**: for each of the orchestrator's loopback listeners (the metering
  proxy, the heartbeat endpoint) a port on the host's own loopback, forwarded over this
  SSH connection to it (``ssh -R``). No port is opened to the network. The host-local
  ports are kept in ``STATE_DIR/forwards.json`` and asked for again on every connection
  — by a restarted orchestrator or a standby too — so running agents keep their URLs.

Nothing here takes operator text: the paths come from the config, the argv lists are
fixed.
"""

from __future__ import annotations

import asyncio
import json
import logging
import posixpath
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from fleet.hosts.errors import HostError
from fleet.hosts.link import ssh as asyncssh
from fleet.hosts.remote import failure, run_on
from fleet.hosts.schema import HostEntry, resolve_remote_path
from fleet.redaction.guard import says

log = logging.getLogger(__name__)

PACKAGE_ROOT: Final = Path(__file__).resolve().parents[2]
"""The directory the ``fleet`` package lies in: bundled scripts keep their path under it."""
FORWARDS_FILE: Final = "forwards.json"
LOOPBACK: Final = "127.0.0.1"
SYSTEM_HIDDEN: Final = ("/root", "/home", "/etc/ssl/private")
"""Directories no sandboxed agent on a host sees (those the host has)."""
# Prints which of $@ exist as directories (`d PATH`), each key file no agent may read
# (`f PATH`), whether bubblewrap is there (`b PATH`), whether the login is root (`r /`: its
# agents get lanes), and whether the user's systemd manager runs scopes (`s /`: a tmux
# server started in one outlives the SSH session).
_FIND_SCRIPT: Final = r"""
for d do [ -d "$d" ] && printf 'd %s\n' "$d"; done
for f in /etc/shadow /etc/gshadow /etc/ssh/ssh_host_*key; do
  [ -f "$f" ] && printf 'f %s\n' "$f"
done
b=$(command -v bwrap 2>/dev/null) && printf 'b %s\n' "$b"
[ "$(id -u)" = 0 ] && printf 'r %s\n' /
command -v systemd-run >/dev/null 2>&1 &&
  systemd-run --user --scope --quiet --collect true >/dev/null 2>&1 && printf 's %s\n' /
exit 0
"""
_REBIND_WAIT: Final = 5.0  # a dead orchestrator's listener may linger until sshd notices


@dataclass(frozen=True, slots=True)
class HostPlace:
    """One host's layout, for the connection it was made on."""

    host: str
    home: str
    state_dir: str
    ports: Mapping[int, int] = field(default_factory=dict)
    """The orchestrator's loopback port → the host-local port that leads to it."""
    has_bwrap: bool = False
    system_hidden: tuple[str, ...] = ()  # those of SYSTEM_HIDDEN the host has
    secret_files: tuple[str, ...] = ()  # key files there, shown empty in a sandbox
    copied: frozenset[str] = frozenset()  # the local paths of the scripts copied there
    user_scope: bool = False  # whether `systemd-run --user --scope` works there
    workdirs: str | None = None  # the entry's `workdirs`, made absolute
    root: bool = False  # whether the login is root there: each agent gets a uid of its own

    @property
    def hidden_whole(self) -> tuple[str, ...]:
        """What every sandbox on the host hides whole, whichever agents it knows of: the
        state dir, the remote user's home, the entry's ``workdirs`` and those of
        :data:`SYSTEM_HIDDEN` the host has. Every agent's workdir there lies below one."""
        found = (self.state_dir, self.home, self.workdirs, *self.system_hidden)
        return tuple(dict.fromkeys(p for p in found if p is not None and p != "/"))

    @property
    def lib(self) -> str:
        return posixpath.join(self.state_dir, "lib")

    @property
    def tmux_socket(self) -> str:
        return posixpath.join(self.state_dir, "tmux.sock")

    def agent_dir(self, agent: str) -> str:
        return posixpath.join(self.state_dir, "agents", agent)

    def home_of(self, agent: str) -> str:
        return posixpath.join(self.agent_dir(agent), "home")

    def work_of(self, agent: str) -> str:
        return posixpath.join(self.agent_dir(agent), "work")

    def log_of(self, agent: str) -> str:
        return posixpath.join(self.agent_dir(agent), "agent.log")

    def run_dir(self, agent: str, run: str) -> str:
        return posixpath.join(self.agent_dir(agent), "runs", run)

    def bundled(self, local: Path) -> str:
        """Where the bundled script at ``local`` lies on the host."""
        return posixpath.join(self.lib, local.resolve().relative_to(PACKAGE_ROOT).as_posix())

    def url(self, url: str) -> str:
        """``url`` (one of the orchestrator's loopback URLs) as the host's agents reach it:
        the same path, on the forwarded host-local port."""
        prefix = f"http://{LOOPBACK}:"
        if not url.startswith(prefix):
            return url
        port_text, slash, rest = url[len(prefix) :].partition("/")
        if not port_text.isdigit() or int(port_text) not in self.ports:
            raise HostError(f"host {self.host} has no forward for {prefix}{port_text}")
        return f"{prefix}{self.ports[int(port_text)]}{slash}{rest}"


async def prepare(
    conn: asyncssh.SSHClientConnection,
    entry: HostEntry,
    *,
    bundled: Sequence[Path],
    targets: Mapping[str, int],
) -> HostPlace:
    """Ready a new connection to ``entry``'s host (see the module's doc): its layout, with
    the forwards to ``targets`` (listener name → the orchestrator's loopback port)."""
    home = await _home(conn, entry)
    state_dir = resolve_remote_path(entry.state_dir, home)
    workdirs = resolve_remote_path(entry.workdirs, home) if entry.workdirs else None
    place = HostPlace(entry.name, home, state_dir)
    made = await run_on(
        conn,
        entry.name,
        ["mkdir", "-p", "-m", "700", state_dir, place.lib, posixpath.join(state_dir, "agents")]
        + ([workdirs] if workdirs else []),
        input=None,
        timeout=30.0,
    )
    if not made.ok:
        raise HostError(f"host {entry.name}: cannot make {state_dir}: {failure(entry.name, made)}")
    found = await run_on(
        conn, entry.name, ["sh", "-c", _FIND_SCRIPT, "sh", *SYSTEM_HIDDEN], input=None, timeout=30.0
    )
    kinds: dict[str, list[str]] = {"d": [], "f": [], "b": [], "r": [], "s": []}
    for line in found.stdout.splitlines():
        kind, _, path = line.partition(" ")
        if kind in kinds and path.startswith("/"):
            kinds[kind].append(path)
    async with conn.start_sftp_client() as sftp:
        await _copy_bundled(sftp, place, bundled)
        recorded = await _read_ports(sftp, place)
        ports = await _forward(conn, entry.name, targets, recorded)
        await _write_private(
            sftp,
            posixpath.join(state_dir, FORWARDS_FILE),
            json.dumps({name: ports[port] for name, port in targets.items()}),
        )
    return HostPlace(
        entry.name,
        home,
        state_dir,
        ports,
        has_bwrap=bool(kinds["b"]),
        system_hidden=tuple(kinds["d"]),
        secret_files=tuple(kinds["f"]),
        copied=frozenset(str(path) for path in bundled),
        user_scope=bool(kinds["s"]),
        workdirs=workdirs,
        root=bool(kinds["r"]),
    )


async def _home(conn: asyncssh.SSHClientConnection, entry: HostEntry) -> str:
    result = await run_on(
        conn, entry.name, ["sh", "-c", 'printf %s "$HOME"'], input=None, timeout=30.0
    )
    home = result.stdout.strip()
    if not result.ok or not home.startswith("/") or not home.isprintable():
        said = says(f"host {entry.name}", home) if home else failure(entry.name, result)
        raise HostError(f"host {entry.name}: cannot tell the remote user's home: {said}")
    return home


async def _copy_bundled(sftp: asyncssh.SFTPClient, place: HostPlace, files: Sequence[Path]) -> None:
    """Each script copied where :meth:`HostPlace.bundled` says, unless it is there already
    with the same bytes."""
    await sftp.chmod(place.lib, 0o755)  # inside the 0700 state dir: see below
    for local in files:
        data = local.read_bytes()
        remote = place.bundled(local)
        mode = 0o755 if local.stat().st_mode & 0o111 else 0o644  # a command stays one
        try:
            async with sftp.open(remote, "rb", encoding=None) as fh:
                found: object = await fh.read()
            same = found == data
        except (OSError, asyncssh.SFTPError):
            same = False
        # Readable by all: an agent's own user (a lane) runs them in its sandbox; the state
        # dir around them (0700) keeps everyone else out.
        if same:
            await sftp.chmod(remote, mode)  # a copy made when they were its owner's only
            continue
        await sftp.makedirs(posixpath.dirname(remote), exist_ok=True)
        await _write_private(sftp, remote, data.decode("utf-8"), mode=mode)


async def _write_private(
    sftp: asyncssh.SFTPClient, path: str, text: str, *, mode: int = 0o600
) -> None:
    """``path`` written whole (a temporary file renamed over it), readable by its owner only
    (or as ``mode`` says)."""
    tmp = f"{path}.tmp"
    attrs = asyncssh.SFTPAttrs(permissions=mode)
    async with sftp.open(tmp, "w", attrs) as fh:
        await fh.write(text)
    await sftp.chmod(tmp, mode)
    await sftp.posix_rename(tmp, path)


async def _read_ports(sftp: asyncssh.SFTPClient, place: HostPlace) -> dict[str, int]:
    try:
        async with sftp.open(posixpath.join(place.state_dir, FORWARDS_FILE), "r") as fh:
            record = json.loads(await fh.read())
    except (OSError, asyncssh.SFTPError, ValueError):
        return {}
    if not isinstance(record, dict):
        return {}
    return {str(k): v for k, v in record.items() if isinstance(v, int) and 1024 <= v <= 65535}


async def _forward(
    conn: asyncssh.SSHClientConnection,
    host: str,
    targets: Mapping[str, int],
    recorded: Mapping[str, int],
) -> dict[int, int]:
    """One remote forward per target, on its recorded host-local port when it has one
    (retried for a few seconds: an old connection's listener may still hold it), else on
    a port the host picks. Returns local port → host-local port."""
    ports: dict[int, int] = {}
    for name, local_port in targets.items():
        want = recorded.get(name, 0)
        listener = await _listen(conn, want, local_port)
        if listener is None:
            log.warning(
                "host %s: port %d (%s) is taken there; agents running there lose that URL",
                host,
                want,
                name,
            )
            listener = await _listen(conn, 0, local_port)
        if listener is None:
            raise HostError(f"host {host}: cannot forward a loopback port to {name}")
        ports[local_port] = listener.get_port()
    return ports


async def _listen(
    conn: asyncssh.SSHClientConnection, port: int, local_port: int
) -> asyncssh.SSHListener | None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + (_REBIND_WAIT if port else 0.0)
    while True:
        try:
            return await conn.forward_remote_port(LOOPBACK, port, LOOPBACK, local_port)
        except asyncssh.ChannelListenError:
            if loop.time() >= deadline:
                return None
            await asyncio.sleep(0.25)

"""The sandbox of an agent on another host: the same bubblewrap layout as here
(:func:`fleet.sandbox.policy.bwrap_argv`), made of that host's paths, and for ``egress:
locked`` doors that lead back here over the host's SSH link.

On a host where Fleetwarden logs in as an ordinary user there are no lanes (a host uid per
agent; where it logs in as root there are, :mod:`fleet.hosts.lanes`), and on no host
control groups: every agent there runs as that user, unprivileged bubblewrap giving it a
user namespace of its own (uid :data:`SANDBOX_UID` inside), the host read-only but for its
workdir and HOME, a private ``/tmp``, and out of sight the
state dir (other agents' homes and workdirs, Fleetwarden's scripts but the ones it runs),
the remote user's home, the entry's ``workdirs``, ``/root``, ``/home`` and
``/etc/ssl/private``, with the host's key files shown empty.

Where the agents there share one uid, file modes do not keep them apart: only what a
sandbox hides does, and a sandbox is made once, at its launch. So what every sandbox there
hides is decided by the host's layout alone (:attr:`HostPlace.hidden_whole`), never by
which agents are known at the time, and every agent's workdir must lie below one of those
directories, where it really lies (:func:`real_paths`: a symlink out of them does not
count), and nowhere else an agent must not reach — the state dir, a home's hidden
directories, another agent's workdir (:mod:`fleet.hosts.workdirs` says where and why):
each sandbox hides them whole and binds back its own.

A locked agent has its own network namespace: its URLs' ports there are doors, Unix
sockets in ``STATE_DIR/agents/NAME/doors`` that the link forwards (``ssh -R`` to a path)
to the orchestrator's loopback listeners. Which doors an agent has is kept beside them
(``doors.json``), so each new connection — after the host was away, or from a restarted
orchestrator or a standby — opens them again (:func:`reopen_doors`).
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import posixpath
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Final, Protocol

from fleet.errors import LaunchFailed
from fleet.hosts.errors import HostError
from fleet.hosts.link import ssh as asyncssh
from fleet.hosts.place import LOOPBACK, HostPlace
from fleet.hosts.probe import HostFacts, Runner
from fleet.hosts.remote import failure
from fleet.hosts.workdirs import workdir_problem
from fleet.model import AgentSpec, LaunchPlan
from fleet.redaction.guard import says
from fleet.sandbox import installs
from fleet.sandbox.egress.doors import SUN_PATH_MAX
from fleet.sandbox.egress.locked import EGRESS_DOOR
from fleet.sandbox.lanes import RLIMITS
from fleet.sandbox.policy import EGRESS_PORT, SANDBOX_UID, Door, Layout, bwrap_argv
from fleet.sandbox.service import LOCKED, loopback_ports, proxy_env

DOORS_FILE: Final = "doors.json"
EGRESS: Final = "egress"
"""A door that leads to the agent's allow-list door here (:meth:`Sandboxes.egress_door`),
wherever that is on the orchestrator that holds the link (a standby's state dir too)."""


def door_dir(place: HostPlace, agent: str) -> str:
    return posixpath.join(place.agent_dir(agent), "doors")


def wrap(
    spec: AgentSpec,
    plan: LaunchPlan,
    place: HostPlace,
    urls: Iterable[str | None],
    others: Iterable[Path],
    facts: HostFacts | None = None,
    real: Mapping[str, str] | None = None,
    uid: int | None = None,
    needs: Mapping[str, Sequence[str]] | None = None,
) -> tuple[LaunchPlan, dict[str, int | str]]:
    """``plan`` run in ``spec``'s sandbox on ``place``'s host; ``urls`` are the agent's
    (host-local) URLs, ``others`` the other agents' workdirs there, ``facts`` what the
    host's last probe found (where its CLI is installed), ``real`` where the workdir,
    :attr:`HostPlace.hidden_whole` and ``others`` really lie there (:func:`real_paths`; by
    default, as named), ``uid`` the agent's own uid there (its lane, where the login is root:
    :mod:`fleet.hosts.lanes`), ``needs`` what each PATH directory under a hidden path
    brings back there (:func:`path_needs`; one it does not name comes back alone). Returns
    the plan and the doors to open first (socket path → the host-local port it leads to,
    or :data:`EGRESS`: the allow-list's door here)."""
    if not place.has_bwrap:
        raise LaunchFailed(
            f"{spec.name} cannot start sandboxed: host {spec.host} has no bubblewrap — "
            "install it there (apt-get install bubblewrap)"
        )
    found = real or {}

    def lies(path: str | Path) -> Path:
        return Path(found.get(str(path), str(path)))

    whole = [lies(p) for p in place.hidden_whole]
    workdir = lies(plan.cwd)
    others = [lies(p) for p in others]
    state_dir = lies(place.state_dir)
    own = state_dir / "agents" / spec.name / "work"
    problem = workdir_problem(
        workdir, whole, state_dir=state_dir, own=own, home=lies(place.home), others=others
    )
    if problem is not None:
        raise LaunchFailed(f"{spec.name} cannot start on host {spec.host}: {problem}")
    hidden = [*whole, *(p for p in others if not _under(p, whole) and p != workdir)]
    needed = [Path(place.lib), *_path_dirs(plan.env.get("PATH", ""), hidden, needs or {})]
    needed += _install(plan.argv[0] if plan.argv else "", facts)
    locked = spec.egress == LOCKED
    doors: tuple[Door, ...] = ()
    opened: dict[str, int | str] = {}
    where = door_dir(place, spec.name)
    env = dict(plan.env)
    if locked:
        for port in loopback_ports(urls):
            door = Door(port, f"tcp-{port}.sock")
            doors += (door,)
            opened[posixpath.join(where, door.socket_name)] = port
        if spec.egress_allow:  # the allow-list's forward proxy answers here, at a door
            doors += (Door(EGRESS_PORT, EGRESS_DOOR),)
            opened[posixpath.join(where, EGRESS_DOOR)] = EGRESS
            env.update(proxy_env())
    layout = Layout(
        workdir=workdir,
        home=Path(place.home_of(spec.name)),
        hidden=tuple(hidden),
        needed=tuple(needed),
        locked=locked,
        door_dir=Path(where) if locked else None,
        doors=doors,
        uid=SANDBOX_UID if uid is None else uid,
        masked=tuple(Path(p) for p in place.secret_files),
    )
    # The backend makes this Python the host's python3 and the forwarder its copy there.
    argv = bwrap_argv(layout, plan.argv, bwrap="bwrap", python=sys.executable)
    limits = tuple(f"{name}={value}" for name, value in RLIMITS)
    wrapped = replace(plan, argv=tuple(argv), env=env, sandboxed=True, run_as=uid, rlimits=limits)
    return wrapped, opened


_REAL_SCRIPT: Final = "import os,sys\nfor p in sys.argv[1:]: print(os.path.realpath(p), end='\\0')"


async def real_paths(link: Runner, paths: Sequence[str]) -> dict[str, str]:
    """Where each of ``paths`` really lies on the host behind ``link`` (symlinks resolved);
    raises :class:`HostError` when the host cannot say."""
    done = await link.run(["python3", "-I", "-S", "-c", _REAL_SCRIPT, *paths], timeout=30.0)
    lines = done.stdout.split("\0")[:-1]
    if not done.ok or len(lines) != len(paths):
        raise HostError(f"python3 there cannot tell where its paths lie: {failure(None, done)}")
    # Shown in messages when refused: a plain absolute path, or none.
    strange = next((p for p in lines if not p.startswith("/") or not p.isprintable()), None)
    if strange is not None:
        said = says("the host", strange)
        raise HostError(f"python3 there says a path lies where no path can: {said}")
    return dict(zip(paths, lines, strict=True))


def _holds(path: Path, hidden: Sequence[Path]) -> bool:
    return any(h != path and h.is_relative_to(path) for h in hidden) or path in hidden


def _under(path: Path, roots: Iterable[Path]) -> bool:
    return any(path == root or path.is_relative_to(root) for root in roots)


def _path_dirs(path: str, hidden: Sequence[Path], needs: Mapping[str, Sequence[str]]) -> list[Path]:
    """The directories on the agent's ``PATH``: one under a hidden path with what the host
    said it brings (:func:`path_needs`), or alone; another with its prefix (``…/bin``)."""
    found: list[Path] = []
    for entry in path.split(":"):
        if entry.startswith("/"):
            where = Path(posixpath.normpath(entry))
            if _under(where, hidden):
                said = map(Path, needs.get(str(where), (str(where),)))
                # Only what lies under a hidden path matters, and never one that holds one.
                found += [p for p in said if _under(p, hidden) and not _holds(p, hidden)]
            else:
                found.append(where.parent if where.name == "bin" else where)
    return found


def asked_dirs(path: str, hidden: Sequence[str]) -> list[tuple[str, bool]]:
    """The directories on ``path`` under ``hidden`` (where they lie on the host), each with
    whether its install comes with it (a ``bin`` whose folder is not itself hidden)."""
    tops = [Path(p) for p in hidden]
    asked: list[tuple[str, bool]] = []
    for entry in path.split(":"):
        if entry.startswith("/"):
            where = Path(posixpath.normpath(entry))
            if _under(where, tops):
                install = where.name in installs.BINS and where.parent not in tops
                asked.append((str(where), install))
    return list(dict.fromkeys(asked))


async def path_needs(
    link: Runner, asked: Sequence[tuple[str, bool]], untrusted: Sequence[str]
) -> dict[str, list[str]]:
    """What each of ``asked`` (:func:`asked_dirs`) brings back into a sandbox on the host
    behind ``link``, as the host's own files say (:mod:`fleet.sandbox.installs`, run there;
    nothing found through ``untrusted``, the places agents there may write); raises
    :class:`HostError` when the host cannot say."""
    if not asked:
        return {}
    request = json.dumps({"dirs": [list(pair) for pair in asked], "untrusted": [*untrusted]})
    argv = ["python3", "-I", "-S", "-c", _installs_source()]
    done = await link.run(argv, input=request, timeout=30.0)
    try:
        answer = json.loads(done.stdout) if done.ok else None
    except ValueError:
        answer = None
    if not isinstance(answer, list) or len(answer) != len(asked):
        raise HostError(f"python3 there cannot tell what its PATH needs: {failure(None, done)}")
    found: dict[str, list[str]] = {}
    for (directory, _), paths in zip(asked, answer, strict=True):
        if not isinstance(paths, list) or not all(isinstance(p, str) for p in paths):
            raise HostError("python3 there answered what its PATH needs in a shape it cannot")
        strange = next((p for p in paths if not p.startswith("/") or not p.isprintable()), None)
        if strange is not None:
            said = says("the host", strange)
            raise HostError(f"python3 there says a path lies where no path can: {said}")
        found[directory] = paths
    return found


@functools.cache
def _installs_source() -> str:
    return Path(installs.__file__).read_text(encoding="utf-8")


def _install(program: str, facts: HostFacts | None) -> list[Path]:
    """Where the host's ``program`` is installed, as here: its directory, and the
    outermost ``node_modules`` its links lead into (an npm CLI's package and its
    dependencies), else the directory its links lead to."""
    if facts is None:
        return []
    name = posixpath.basename(program)
    tool = next((t for t in facts.tools if t.path == program or t.name == name), None)
    if tool is None:
        return []
    found = [Path(posixpath.dirname(tool.path))]
    if tool.real is not None:
        real = Path(tool.real)
        modules = [p for p in real.parents if p.name == "node_modules"]
        found.append(modules[-1] if modules else real.parent)
    return found


EgressDoor = Callable[[str], Path]
"""Where an agent's allow-list door is here, by agent name."""


class Forward(Protocol):
    """One of an agent's doors forwarded from its host: closed when its run ends."""

    def close(self) -> None: ...


class _HeldDirectory:
    """The door directory here held open (``O_PATH``) while a host's forward connects
    into it, so a door deeper than a socket's path may be (:data:`SUN_PATH_MAX`, as the
    door itself is bound) is reached as ``/proc/self/fd/N/NAME``."""

    def __init__(self, door: Path) -> None:
        self._fd: int | None = os.open(door.parent, os.O_PATH | os.O_DIRECTORY)
        self.path = f"/proc/self/fd/{self._fd}/{door.name}"

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def _reachable(door: Path, forwards: list[Forward]) -> str:
    """The path ``door`` is connected to at: itself, or through its held directory (which
    joins ``forwards``, closed with them)."""
    if len(os.fsencode(str(door))) < SUN_PATH_MAX:
        return str(door)
    held = _HeldDirectory(door)
    forwards.append(held)
    return held.path


async def open_doors(
    conn: asyncssh.SSHClientConnection,
    sftp: asyncssh.SFTPClient,
    place: HostPlace,
    agent: str,
    doors: Mapping[str, int | str],
    egress: EgressDoor | None,
    owner: int | None = None,
) -> list[Forward]:
    """Open ``doors`` (socket path → host-local port, or :data:`EGRESS`) for ``agent``,
    each forwarded to the orchestrator's listener behind that port (or to its allow-list
    door here), and record them for the next connection; ``owner``: the agent's own uid
    there, whose doors they are."""
    where = door_dir(place, agent)
    await sftp.makedirs(where, exist_ok=True)
    await sftp.chmod(where, 0o700)
    listeners = await _forward(conn, sftp, place, agent, doors, egress, owner)
    text = json.dumps({"doors": dict(doors)})
    async with sftp.open(posixpath.join(place.agent_dir(agent), DOORS_FILE), "w") as fh:
        await fh.write(text)
    return listeners


async def reopen_doors(
    conn: asyncssh.SSHClientConnection,
    sftp: asyncssh.SFTPClient,
    place: HostPlace,
    egress: EgressDoor | None,
    owners: Mapping[str, int] | None = None,
) -> dict[str, list[Forward]]:
    """Every agent's recorded doors on the host, opened again (a new connection);
    ``owners``: the agents' own uids there, where they have lanes."""
    opened: dict[str, list[Forward]] = {}
    agents_dir = posixpath.join(place.state_dir, "agents")
    try:
        names = [name for name in await sftp.listdir(agents_dir) if not name.startswith(".")]
    except (OSError, asyncssh.SFTPError):
        return opened
    for agent in names:
        try:
            async with sftp.open(posixpath.join(agents_dir, agent, DOORS_FILE), "r") as fh:
                record = json.loads(await fh.read())
            doors: dict[str, int | str] = {
                str(k): v if v == EGRESS else int(v) for k, v in record["doors"].items()
            }
        except (OSError, asyncssh.SFTPError, ValueError, KeyError, TypeError, AttributeError):
            continue
        owner = (owners or {}).get(agent)
        opened[agent] = await _forward(conn, sftp, place, agent, doors, egress, owner)
    return opened


async def forget_doors(sftp: asyncssh.SFTPClient, place: HostPlace, agent: str) -> None:
    """The record of ``agent``'s doors removed (its run ended)."""
    with contextlib.suppress(OSError, asyncssh.SFTPError):
        await sftp.remove(posixpath.join(place.agent_dir(agent), DOORS_FILE))


async def _forward(
    conn: asyncssh.SSHClientConnection,
    sftp: asyncssh.SFTPClient,
    place: HostPlace,
    agent: str,
    doors: Mapping[str, int | str],
    egress: EgressDoor | None,
    owner: int | None = None,
) -> list[Forward]:
    back = {remote: local for local, remote in place.ports.items()}
    listeners: list[Forward] = []
    for path, leads_to in doors.items():
        if leads_to == EGRESS:
            if egress is None:
                continue
            with contextlib.suppress(OSError, asyncssh.SFTPError):
                await sftp.remove(path)  # a socket left by an earlier connection
            door = _reachable(egress(agent), listeners)
            listeners.append(await conn.forward_remote_path(path, door))
            continue
        local = back.get(int(leads_to))
        if local is None:
            continue  # a listener the orchestrator no longer forwards
        with contextlib.suppress(OSError, asyncssh.SFTPError):
            await sftp.remove(path)  # a socket left by an earlier connection
        listeners.append(await conn.forward_remote_path_to_port(path, LOOPBACK, local))
    if owner is not None:  # the agent's own user connects: its door directory and sockets
        for path in (door_dir(place, agent), *doors):
            with contextlib.suppress(OSError, asyncssh.SFTPError):  # a door not opened
                await sftp.chown(path, owner, owner, follow_symlinks=False)
    return listeners

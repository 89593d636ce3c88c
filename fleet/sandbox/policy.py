"""What an agent's sandbox lets it see and reach, as bubblewrap's command line (pure).

Every sandbox: its own user, pid, IPC, UTS and cgroup namespaces (``--unshare-all``), so
the agent sees and signals only its own processes and ``/proc/<fleetwarden>`` does not
exist; the host's files read-only; a private ``/tmp`` (tmpfs, size-capped); read-write
only its workdir (read-only too when :attr:`Layout.workdir_writable` is false: a review
agent's checkout) and its private HOME; and nothing at all of Fleetwarden's state dir, its
config file's directory, other agents' workdirs, ``/root``, ``/home`` and the other paths
:attr:`Layout.hidden` lists (a tmpfs over each), nor of the secret files
:attr:`Layout.masked` lists (``/etc/shadow``, ssh host keys: ``/dev/null`` over each).
A hidden path inside another gets no tmpfs of its own, whose mount point would show its
name: above the agent's workdir in the state dir (``checkouts/<repo>/``) or in the
config's ``workdirs:``, each directory shows only the way down to its own places, never
the other agents' workdirs beside it. Paths the agent needs that lie under a hidden one
(Fleetwarden's Python, an npm install) are bound back read-only.

The agent is never root of anything: a user namespace always (``--unshare-user``, even
when Fleetwarden runs as root), an unprivileged uid and gid inside (:attr:`Layout.uid`),
no capabilities (``--cap-drop ALL``), and no nested user namespace to win them back
(``--disable-userns``). So it cannot unmount what hides a path, remount ``/``
read-write or mount anything. Running it as a host uid of its own when Fleetwarden is
root is the shim's part (:mod:`fleet.sandbox.lanes`). ``--new-session`` is not used: it
would take the agent out of the shim's process group, so a stop's SIGTERM would no longer
reach it; the only terminal an agent holds is its own tmux pane (or none), so a
``TIOCSTI`` there types only into its own input.

Egress ``open`` keeps the host's network; ``locked`` gives the sandbox a network
namespace of its own with only ``lo``, where the first command
(:mod:`fleet.sandbox.forwarder`) listens on the ports of the loopback URLs the agent was
given and pipes them to Unix sockets Fleetwarden serves in the door directory, bound at
:data:`DOORS`. In both, that first command gives the agent back the default handling of
the stop signals the shim ignores.

``--die-with-parent`` ties the sandbox to the agent shim that starts it, never to
Fleetwarden: agents outlive a restart of Fleetwarden, which reattaches them.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

FORWARDER = Path(__file__).with_name("forwarder.py")
DOORS = Path("/run/fw")
"""Where the door directory appears inside a locked sandbox."""
EGRESS_PORT = 3128
"""The port inside a locked sandbox where the allow-list's forward proxy answers."""
RESOLVER_DIRS = ("/run/systemd/resolve", "/run/resolvconf")
"""Where ``/etc/resolv.conf`` may point under /run: shown read-only to open sandboxes."""
TMP_SIZE = 512 * 1024 * 1024
"""The size cap of a sandbox's private ``/tmp``, in bytes."""
SANDBOX_UID = 1000
"""The agent's uid and gid inside its sandbox, unless the layout names its own."""


@dataclass(frozen=True, slots=True)
class Door:
    """A TCP port inside the sandbox that leads to a Unix socket outside."""

    port: int
    socket_name: str  # a file in the door directory


@dataclass(frozen=True, slots=True)
class Bind:
    """A path shown at another name too: ``source`` (where it really lies) at ``dest``."""

    source: Path
    dest: Path
    writable: bool


@dataclass(frozen=True, slots=True)
class Layout:
    """Everything the sandbox of one run is made of."""

    workdir: Path
    home: Path
    hidden: tuple[Path, ...]  # not visible at all
    needed: tuple[Path, ...] = ()  # bound back read-only where a hidden path covers them
    locked: bool = False
    door_dir: Path | None = None  # with ``locked``: the host directory bound at DOORS
    doors: tuple[Door, ...] = field(default_factory=tuple)
    tmp_size: int = TMP_SIZE
    uid: int = SANDBOX_UID  # the agent's uid and gid inside; never 0
    masked: tuple[Path, ...] = ()  # files shown as /dev/null (they must exist)
    aliases: tuple[Bind, ...] = ()  # its places (or needed ones) at the names it was given
    workdir_writable: bool = True  # false: the workdir is shown read-only (a review's)


def _under(path: Path, roots: Iterable[Path]) -> bool:
    return any(path == root or path.is_relative_to(root) for root in roots)


def bwrap_argv(layout: Layout, command: Sequence[str], *, bwrap: str, python: str) -> list[str]:
    """The command line that runs ``command`` in the sandbox ``layout`` describes."""
    if layout.uid == 0:
        raise ValueError("an agent never runs as root inside its sandbox")
    argv = [bwrap, "--unshare-all", "--unshare-user", "--disable-userns", "--cap-drop", "ALL"]
    argv += ["--uid", str(layout.uid), "--gid", str(layout.uid)]
    if not layout.locked:
        argv.append("--share-net")
    argv += ["--die-with-parent", "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc"]
    # /run holds the host's sockets (D-Bus, databases, container engines): a Unix socket
    # connects even on a read-only mount, so /run is an empty tmpfs but for DNS.
    argv += ["--size", str(layout.tmp_size), "--tmpfs", "/tmp", "--tmpfs", "/run"]
    if not layout.locked:
        for resolver in RESOLVER_DIRS:
            argv += ["--ro-bind-try", resolver, resolver]
    hidden = sorted({p for p in layout.hidden if p != Path("/")}, key=lambda p: len(p.parts))
    # A hidden path inside another is out of sight already; a tmpfs of its own would
    # make its mount point there and show its name (another agent's, beside this one's).
    mounted = [p for p in hidden if not any(p != q and p.is_relative_to(q) for q in hidden)]
    for path in mounted:
        argv += ["--tmpfs", str(path)]
    # What the agent needs under a hidden path — or under the private /tmp, where a
    # checkout, a venv or an npm install may well live — is bound back read-only.
    covered = (*hidden, Path("/tmp"))
    back = sorted(
        {p for p in layout.needed if _under(p, covered) and p not in hidden},
        key=lambda p: len(p.parts),
    )
    for path in back:
        argv += ["--ro-bind-try", str(path), str(path)]
    for path in hidden:  # a needed path that holds a hidden one must not show it again
        if _under(path, back) and path not in back:
            argv += ["--tmpfs", str(path)]
            mounted.append(path)
    own = (layout.home, layout.workdir)
    argv += ["--bind", str(layout.home), str(layout.home)]
    kind = "--bind" if layout.workdir_writable else "--ro-bind"
    argv += [kind, str(layout.workdir), str(layout.workdir)]
    for alias in layout.aliases:  # after the paths that cover where they are shown
        kind = "--bind" if alias.writable else "--ro-bind-try"
        argv += [kind, str(alias.source), str(alias.dest)]
    for path in hidden:  # another agent's workdir inside this one's stays out of sight
        if _under(path, own) and path not in own:
            argv += ["--tmpfs", str(path)]
            mounted.append(path)
        for alias in layout.aliases:  # and so it does where its place is shown again
            if path != alias.source and path.is_relative_to(alias.source):
                argv += ["--tmpfs", str(alias.dest / path.relative_to(alias.source))]
    for path in sorted(set(layout.masked)):
        argv += ["--ro-bind", "/dev/null", str(path)]
    entry = [python, "-I", "-S", str(FORWARDER)]
    if layout.locked:
        if layout.door_dir is None:
            raise ValueError("a locked sandbox needs a door directory")
        argv += ["--bind", str(layout.door_dir), str(DOORS)]
        for door in layout.doors:
            entry += ["--door", f"{door.port}={DOORS / door.socket_name}"]
    for path in (Path("/run"), *dict.fromkeys(mounted)):  # empty, read-only: nothing stays
        argv += ["--remount-ro", str(path)]
    argv += ["--chdir", str(layout.workdir), "--", *entry, "--", *command]
    return argv

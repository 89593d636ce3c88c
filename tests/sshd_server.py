"""A real OpenSSH server for tests: keys, config, a Unix user per host, process lifecycle,
fixtures.

One :class:`SshServer` is one ``sshd -D`` listening on a loopback address of its own
(127.0.0.2, 127.0.0.3, …) and a free port, letting in one Unix user with one client key.
Its directory (under ``/tmp``, readable by that user: sshd reads ``authorized_keys`` with
the user's rights) holds the host key, the client key pair, ``authorized_keys``,
``sshd_config``, the pid file and ``sshd.log`` (``-E``: every start, login and refusal).

Who logs in: as root, a dedicated test user per host (``fwhost2``, ``fwhost3``, with the
xdist worker's name appended under xdist), made once with ``useradd -m`` and reused; its
password is set to ``*`` because sshd refuses a locked account (useradd's ``!``) even for
a key login. So each host has processes and a tmux server of its own, and teardown kills
every process of that user (as does making a server for it, to clear what a killed run
left: two servers alive at once need two user names). Not as root, the current user logs
in, and only sshd and its sessions' descendants are killed.

``stop()`` kills sshd with every session's descendants (not the tmux servers those
sessions daemonized: a restarted sshd finds them as a real host would); ``close()`` also
kills every process of a dedicated user and deletes the directory. ``restart()`` keeps
the address, port and host key unless asked for a new key (a reinstalled host).

Fixtures (registered by importing them in ``tests/conftest.py``): ``ssh_hosts``, two
servers per session (so per xdist worker), never to be stopped by a test, whose users'
processes are all killed after each test that used them;
``private_ssh_host``, one of the test's own, free to be stopped, restarted and re-keyed.
Without ``/usr/sbin/sshd`` they skip, or fail when ``FLEETWARDEN_REQUIRE_SSHD`` is set.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import NamedTuple

import pytest

from tests import ports

SSHD = Path("/usr/sbin/sshd")  # sshd re-executes itself: it must be started by absolute path
REQUIRE_ENV_VAR = "FLEETWARDEN_REQUIRE_SSHD"
PRIVSEP_DIR = Path("/run/sshd")  # sshd as root checks that this exists

_PR_SET_PDEATHSIG = 1
# Resolved here, not in the forked child: preexec_fn runs between fork and exec,
# where loading a library could deadlock on a lock another thread held at fork.
_prctl = ctypes.CDLL(None, use_errno=True).prctl


class SshdError(RuntimeError):
    """sshd could not be set up, started or stopped."""


class Login(NamedTuple):
    """The Unix user a server lets in, and whether the tests made it (so own its processes)."""

    name: str
    uid: int
    home: str
    dedicated: bool


def free_port(address: str) -> int:
    """A TCP port on ``address`` that nothing listens on right now (:mod:`tests.ports`)."""
    return ports.free_port(address)


def sshd_version() -> tuple[int, int] | None:
    """OpenSSH's (major, minor), from ``sshd -V`` (which prints it on stderr)."""
    done = subprocess.run([str(SSHD), "-V"], capture_output=True, text=True, check=False)
    found = re.search(r"OpenSSH_(\d+)\.(\d+)", done.stderr + done.stdout)
    return (int(found[1]), int(found[2])) if found else None


def _die_with_parent(parent: int) -> Callable[[], None]:
    """A preexec_fn: sshd gets SIGTERM when the thread that forked it dies."""

    def preexec() -> None:
        _prctl(_PR_SET_PDEATHSIG, signal.SIGTERM.value, 0, 0, 0)
        if os.getppid() != parent:  # the parent died before prctl took effect
            os._exit(1)

    return preexec


def _parents() -> dict[int, int]:
    """Every live process's parent, from ``/proc/<pid>/stat`` (zombies left out: they are
    dead already, waiting for a parent that may be stopped to reap them)."""
    found = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                stat = (entry / "stat").read_text()
                # The command name, in parentheses, may itself hold spaces and parentheses.
                state, parent = stat.rpartition(")")[2].split()[:2]
                if state != "Z":
                    found[int(entry.name)] = int(parent)
    return found


def descendants(pid: int) -> list[int]:
    """The pids below ``pid`` in the process tree, at this moment."""
    children: dict[int, list[int]] = {}
    for child, parent in _parents().items():
        children.setdefault(parent, []).append(child)
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def processes_of(uid: int) -> list[int]:
    """The live pids whose real or effective user is ``uid`` (never this process)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        with contextlib.suppress(OSError):
            fields = dict(
                line.split(":", 1) for line in (entry / "status").read_text().splitlines()
            )
            real, effective = (int(v) for v in fields["Uid"].split()[:2])
            if uid in (real, effective) and not fields["State"].strip().startswith("Z"):
                found.append(int(entry.name))
    return found


def _kill_until_gone(find: Callable[[], list[int]], what: str, timeout: float = 10.0) -> None:
    """SIGKILL whatever ``find`` lists, again and again (a dying parent may have forked)."""
    deadline = time.monotonic() + timeout
    while pids := find():
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        if time.monotonic() > deadline:
            raise SshdError(f"{what} still running after SIGKILL: pids {pids}")
        time.sleep(0.01)


def _kill_tree(root: int, timeout: float = 10.0) -> None:
    """SIGKILL ``root`` and every process below it, none escaping.

    Killing a parent first would hand its children to init, out of reach (sshd's monitor
    forks a session's process just after the login succeeds). So the tree is frozen first:
    SIGSTOP to each process found, again until a pass finds no new one (a stopped process
    forks no more), and only then SIGKILL to all of them.
    """
    frozen: set[int] = set()
    deadline = time.monotonic() + timeout
    try:
        while found := {root, *descendants(root)} - frozen:
            for pid in found:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGSTOP)
            frozen |= found
            if time.monotonic() > deadline:
                raise SshdError(f"sshd {root}'s processes kept multiplying: {sorted(frozen)}")
    finally:  # never leave a process stopped: a stopped one ignores even its death signal
        for pid in frozen:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


def host_login(base: str) -> Login:
    """As root, the dedicated user ``base`` (made if missing, unlocked, cleared of leftover
    processes), or root itself for ``root``; otherwise the current user."""
    if os.geteuid() != 0:
        entry = pwd.getpwuid(os.getuid())
        return Login(entry.pw_name, entry.pw_uid, entry.pw_dir, dedicated=False)
    if base == "root":  # a host whose login is root: never made, changed or cleared here
        entry = pwd.getpwuid(0)
        return Login(entry.pw_name, 0, entry.pw_dir, dedicated=False)
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    name = f"{base}-{worker}" if worker else base
    try:
        pwd.getpwnam(name)
    except KeyError:
        done = subprocess.run(
            ["useradd", "-m", "-s", "/bin/sh", "-c", "Fleetwarden test host", name],
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode not in (0, 9):  # 9: made meanwhile by someone else
            raise SshdError(f"useradd {name} failed: {done.stderr.strip()}") from None
    # useradd leaves the password locked ('!'), and sshd then refuses even a key. The
    # shell is set again too: a test that gave the host a hostile one may have been killed.
    subprocess.run(["usermod", "-p", "*", "-s", "/bin/sh", name], check=True, capture_output=True)
    entry = pwd.getpwnam(name)
    # What a run that died left behind (pytest killed mid-test): this worker's user only.
    _kill_until_gone(lambda: processes_of(entry.pw_uid), f"processes of {name}")
    return Login(name, entry.pw_uid, entry.pw_dir, dedicated=True)


def _keygen(path: Path, comment: str) -> None:
    for old in (path, path.with_name(path.name + ".pub")):
        old.unlink(missing_ok=True)  # ssh-keygen asks before overwriting, and stdin is closed
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", str(path)],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        check=True,
    )


class SshServer:
    """One ``sshd -D`` on ``address:port`` letting in :attr:`user` with :attr:`client_key`.

    The parent-death signal fires when the *thread* that called ``start()`` exits, so call
    ``start()`` from the main thread (not ``asyncio.to_thread``).
    """

    def __init__(self, address: str, user_base: str, *, port: int | None = None) -> None:
        if not address.startswith("127."):
            raise SshdError(f"{address}: test servers listen on loopback (127.0.0.0/8) only")
        self.address = address
        self.port = port if port is not None else free_port(address)
        self.login = host_login(user_base)
        self._state_dirs: list[Path] = []
        self.root = Path(tempfile.mkdtemp(prefix="fw-sshd-", dir="/tmp"))
        self.root.chmod(0o755)  # the login reads authorized_keys with its own rights
        self.host_key = self.root / "host_ed25519"
        self.client_key = self.root / "client_ed25519"
        self.authorized_keys = self.root / "authorized_keys"
        self.config_path = self.root / "sshd_config"
        self.pid_path = self.root / "sshd.pid"
        self.log_path = self.root / "sshd.log"
        _keygen(self.host_key, f"fleetwarden test host {address}")
        _keygen(self.client_key, "fleetwarden test client")
        self.authorized_keys.write_text(self.client_key.with_suffix(".pub").read_text())
        self.authorized_keys.chmod(0o644)
        self._write_config()
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def user(self) -> str:
        return self.login.name

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    @property
    def ssh_target(self) -> str:
        """``user@address:port``, as a ``hosts:`` entry's ``ssh`` key writes it."""
        return f"{self.user}@{self.address}:{self.port}"

    def known_hosts_line(self) -> str:
        """This server's line for a known_hosts file: ``[address]:port ssh-ed25519 AAAA…``."""
        kind, blob = self.host_key.with_suffix(".pub").read_text().split()[:2]
        return f"[{self.address}]:{self.port} {kind} {blob}"

    def fingerprint(self) -> str:
        """The host key's ``SHA256:…`` fingerprint, as ``ssh-keygen -lf`` prints it."""
        done = subprocess.run(
            ["ssh-keygen", "-l", "-E", "sha256", "-f", str(self.host_key.with_suffix(".pub"))],
            capture_output=True,
            text=True,
            check=True,
        )
        return done.stdout.split()[1]

    def authorize(self, public_key: Path) -> None:
        """Let in a client key besides :attr:`client_key` (its ``.pub`` file)."""
        with self.authorized_keys.open("a") as keys:
            keys.write(public_key.read_text().strip() + "\n")

    def new_host_key(self) -> None:
        """Replace the host key (as a reinstalled host would); takes effect at next start."""
        _keygen(self.host_key, f"fleetwarden test host {self.address} (new)")

    def start(self, timeout: float = 15.0) -> None:
        """Start sshd and wait until it sends its banner."""
        if self.running:
            raise SshdError("sshd is already running")
        if os.geteuid() == 0:
            PRIVSEP_DIR.mkdir(mode=0o755, exist_ok=True)
        with self.log_path.open("ab") as log:
            self._proc = subprocess.Popen(
                [str(SSHD), "-D", "-f", str(self.config_path), "-E", str(self.log_path)],
                cwd=self.root,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,  # what goes wrong before -E takes over
                start_new_session=True,
                preexec_fn=_die_with_parent(os.getpid()),
            )
        try:
            self._wait_ready(timeout)
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        """Kill sshd and every descendant of it (each connection's sshd and what its
        session runs). Safe to repeat."""
        proc, self._proc = self._proc, None
        if proc is None:
            return
        try:
            if proc.poll() is None:
                _kill_tree(proc.pid)
        finally:
            proc.kill()
            proc.wait()
        self.pid_path.unlink(missing_ok=True)

    def restart(self, *, new_host_key: bool = False, timeout: float = 15.0) -> None:
        """Stop, optionally re-key, and start again on the same address and port."""
        self.stop()
        if new_host_key:
            self.new_host_key()
        self.start(timeout)

    def state_dir(self, prefix: str) -> tuple[str, Path]:
        """A state dir of a test's own in the user's home, that no earlier run left anything
        in: as a ``hosts:`` entry writes it (``~/PREFIX-…``), and where it is. Deleted when
        the server closes."""
        name = f"{prefix}-{uuid.uuid4().hex[:8]}"
        self._state_dirs.append(Path(self.login.home) / name)
        return f"~/{name}", self._state_dirs[-1]

    @property
    def state_dirs(self) -> tuple[Path, ...]:
        """The state dirs handed out so far (:meth:`state_dir`)."""
        return tuple(self._state_dirs)

    def clear_processes(self) -> None:
        """Kill every process a dedicated user runs (sshd itself runs as root and stays)."""
        if self.login.dedicated:
            uid = self.login.uid
            _kill_until_gone(lambda: processes_of(uid), f"processes of {self.user}")

    def close(self) -> None:
        """Stop sshd, kill every process of a dedicated user, delete the directory (and the
        state dirs handed out)."""
        try:
            self.stop()
        finally:
            try:
                self.clear_processes()
            finally:
                shutil.rmtree(self.root, ignore_errors=True)
                for made in self._state_dirs:
                    shutil.rmtree(made, ignore_errors=True)

    def diagnostics(self) -> str:
        """The end of sshd's log."""
        try:
            tail = self.log_path.read_text(errors="replace")[-4000:]
        except FileNotFoundError:
            return f"(no {self.log_path})"
        return f"--- {self.log_path}:\n{tail}"

    def _write_config(self) -> None:
        lines = [
            f"ListenAddress {self.address}:{self.port}",
            f"HostKey {self.host_key}",
            f"PidFile {self.pid_path}",
            f"AuthorizedKeysFile {self.authorized_keys}",
            f"AllowUsers {self.user}",
            "UsePAM no",
            "PasswordAuthentication no",
            "KbdInteractiveAuthentication no",
            "PubkeyAuthentication yes",
            f"PermitRootLogin {'prohibit-password' if self.login.uid == 0 else 'no'}",
            "PermitUserEnvironment no",
            "StrictModes no",
            "StreamLocalBindUnlink yes",
            "AllowTcpForwarding yes",
            "AllowStreamLocalForwarding yes",
            "X11Forwarding no",
            "Subsystem sftp internal-sftp",
            "PrintMotd no",
            "UseDNS no",
            "ClientAliveInterval 5",
            "ClientAliveCountMax 3",
            "MaxStartups 50:30:100",
            "LogLevel VERBOSE",
        ]
        version = sshd_version()
        if version is not None and version >= (9, 8):
            # 9.8 penalises a source whose connections fail (refused host keys, dropped
            # handshakes): every test comes from 127.0.0.1.
            lines.append("PerSourcePenalties no")
        self.config_path.write_text("\n".join(lines) + "\n")

    def _wait_ready(self, timeout: float) -> None:
        assert self._proc is not None
        deadline = time.monotonic() + timeout
        while True:
            if self._proc.poll() is not None:
                raise SshdError(
                    f"sshd exited with {self._proc.returncode} while starting\n"
                    + self.diagnostics()
                )
            with (
                contextlib.suppress(OSError),
                socket.create_connection((self.address, self.port), timeout=2) as sock,
            ):
                if sock.recv(64).startswith(b"SSH-2.0-"):
                    return
            if time.monotonic() > deadline:
                raise SshdError(f"sshd not ready within {timeout} s\n" + self.diagnostics())
            time.sleep(0.02)


def _new_server(address: str, user_base: str) -> SshServer:
    """A not yet started server; skips or fails (as the environment asks) when it cannot be."""
    missing = ""
    if not os.access(SSHD, os.X_OK):
        missing = f"no {SSHD} (apt-get install openssh-server)"
    elif shutil.which("ssh-keygen") is None:
        missing = "no ssh-keygen (apt-get install openssh-client)"
    elif os.geteuid() == 0 and shutil.which("useradd") is None:
        missing = "running as root, and there is no useradd to make the hosts' users"
    if missing:
        if os.environ.get(REQUIRE_ENV_VAR, "") not in ("", "0"):
            pytest.fail(f"{REQUIRE_ENV_VAR} is set, and {missing}", pytrace=False)
        pytest.skip(f"{missing}: tests that need a real sshd are skipped")
    return SshServer(address, user_base)


@pytest.fixture(scope="session")
def session_ssh_hosts() -> Iterator[tuple[SshServer, SshServer]]:
    """Two hosts per session (per xdist worker), on 127.0.0.2 and 127.0.0.3, each with its
    own user: never stop them in a test."""
    started: list[SshServer] = []
    try:
        for address, user in (("127.0.0.2", "fwhost2"), ("127.0.0.3", "fwhost3")):
            server = _new_server(address, user)
            started.append(server)
            server.start()
        yield started[0], started[1]
    finally:
        for server in started:
            server.close()


@pytest.fixture
def ssh_hosts(
    session_ssh_hosts: tuple[SshServer, SshServer],
) -> Iterator[tuple[SshServer, SshServer]]:
    """The session's two hosts, cleared after the test of every process its users still
    run (agents and tmux servers a failed test left): one test's leftovers never count in
    the next one's."""
    try:
        yield session_ssh_hosts
    finally:
        for server in session_ssh_hosts:
            server.clear_processes()


@pytest.fixture
def private_ssh_host() -> Iterator[SshServer]:
    """A started host of this test's own on 127.0.0.4, free to be stopped, restarted and
    given a new host key."""
    server = _new_server("127.0.0.4", "fwhost4")
    try:
        server.start()
        yield server
    finally:
        server.close()

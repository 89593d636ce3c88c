"""A real PostgreSQL server for tests: initdb, process lifecycle, roles, databases, fixtures.

The binaries are those in ``$FLEETWARDEN_PG_BIN``, else Debian's (``/usr/lib/postgresql/<N>/bin``,
the newest N: not on ``PATH``), else those on ``PATH``. ``initdb`` and ``postgres`` refuse to run
as root, so as root both run as ``nobody`` (its own primary group, no supplementary groups).

One :class:`PostgresServer` owns one directory and one port for its whole life: the cluster
(``data/``), the Unix socket (``.s.PGSQL.<port>`` in the directory itself) and the log
(``postgres.log``: initdb's output, then the server's warnings, errors, starts and stops).
``stop()`` then ``start()`` brings back the same cluster on the same port, with the same
roles and data.

Roles: ``fw``, the superuser, needs no password; ``fw_pw`` logs in only with
:attr:`PostgresServer.password` (SCRAM, over TCP and the socket). Every other role a test
creates is trusted, like ``fw``.

Fixtures (registered by importing them in ``tests/conftest.py``): ``postgres_server``, one
server per session (so one per xdist worker), never to be stopped by a test;
``postgres_dsn``, a fresh database on it for one test; ``private_postgres``, a server of the
test's own, free to be stopped and restarted. Without PostgreSQL binaries or psycopg they
skip, or fail when ``FLEETWARDEN_REQUIRE_POSTGRES`` is set.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import pwd
import re
import secrets
import shutil
import signal
import stat
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple
from urllib.parse import quote

import pytest

from tests import ports

if TYPE_CHECKING:
    import psycopg

BIN_ENV_VAR = "FLEETWARDEN_PG_BIN"
REQUIRE_ENV_VAR = "FLEETWARDEN_REQUIRE_POSTGRES"
DEBIAN_BIN_GLOB = "/usr/lib/postgresql/*/bin"
SUPERUSER = "fw"
PASSWORD_USER = "fw_pw"
UNPRIVILEGED_USER = "nobody"  # who runs initdb and postgres when the tests run as root

# Durability off (a test cluster is thrown away) and a small footprint.
SETTINGS: dict[str, str] = {
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "max_connections": "200",
    "shared_buffers": "32MB",
    "jit": "off",  # JIT-compiling a heavy query costs more than it saves on test data
    "logging_collector": "off",  # stderr goes to postgres.log, opened by this process
    "log_destination": "stderr",
    "log_min_messages": "warning",  # LOG ranks above ERROR here: start and stop still show
    "log_checkpoints": "off",  # else 4 lines for each CREATE and DROP DATABASE
    "log_line_prefix": "%m [%p] %q%u@%d ",
}
# First match wins: the password role before the catch-all trust lines.
PG_HBA = f"""\
# TYPE  DATABASE  USER  ADDRESS  METHOD
local   all  {PASSWORD_USER}                 scram-sha-256
host    all  {PASSWORD_USER}  127.0.0.1/32   scram-sha-256
local   all  all                     trust
host    all  all    127.0.0.1/32     trust
"""
# sun_path is 108 bytes with its NUL; the socket is <dir>/.s.PGSQL.<port>.
_MAX_SOCKET_PATH = 107

_PR_SET_PDEATHSIG = 1
# Resolved here, not in the forked child: preexec_fn runs between fork and exec,
# where loading a library could deadlock on a lock another thread held at fork.
_prctl = ctypes.CDLL(None, use_errno=True).prctl


class PostgresError(RuntimeError):
    """PostgreSQL could not be set up, started or stopped."""


class Account(NamedTuple):
    """The unprivileged user the server runs as when the tests run as root."""

    name: str
    uid: int
    gid: int


def find_bin_dir() -> Path | None:
    """``$FLEETWARDEN_PG_BIN``; else the newest ``/usr/lib/postgresql/<N>/bin`` (Debian,
    Ubuntu); else where ``initdb`` is on ``PATH`` (Fedora, Arch, Homebrew)."""
    configured = os.environ.get(BIN_ENV_VAR)
    if configured:
        return Path(configured)
    found = [path for path in Path("/").glob(DEBIAN_BIN_GLOB.lstrip("/")) if _has_binaries(path)]
    if found:
        return max(found, key=_version_key)
    on_path = shutil.which("initdb")
    if on_path is None:
        return None
    bin_dir = Path(on_path).resolve().parent  # past a symlink, to where postgres is too
    return bin_dir if _has_binaries(bin_dir) else None


def _has_binaries(bin_dir: Path) -> bool:
    return all(os.access(bin_dir / name, os.X_OK) for name in ("initdb", "postgres"))


def _version_key(bin_dir: Path) -> tuple[int, ...]:
    # "9.6" < "15": compare numbers, not strings.
    return tuple(int(part) for part in re.findall(r"\d+", bin_dir.parent.name))


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now (:mod:`tests.ports`)."""
    return ports.free_port()


def _die_with_parent(parent: int) -> Callable[[], None]:
    """A preexec_fn: the child gets SIGINT when the thread that forked it dies.

    SIGINT is postgres' fast shutdown (SIGTERM would wait for every client to leave).
    Popen applies ``user``/``group`` before preexec_fn, and this order matters: a change
    of uid clears the parent-death signal, which is why the server is not started through
    ``setpriv`` or ``runuser``.
    """

    def preexec() -> None:
        _prctl(_PR_SET_PDEATHSIG, signal.SIGINT.value, 0, 0, 0)
        if os.getppid() != parent:  # the parent died before prctl took effect
            os._exit(1)

    return preexec


def processes_in(directory: Path) -> list[int]:
    """The pids whose working directory is ``directory`` (postgres works in its cluster's)."""
    target = os.path.realpath(directory)
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):  # gone, or not ours to look at
                if os.readlink(entry / "cwd") == target:
                    found.append(int(entry.name))
    return found


def _unprivileged_account() -> Account | None:
    """Who to run PostgreSQL as: None when this process is not root."""
    if os.geteuid() != 0:
        return None
    try:
        entry = pwd.getpwnam(UNPRIVILEGED_USER)
    except KeyError:
        raise PostgresError(
            f"running as root, and there is no user {UNPRIVILEGED_USER!r} to run PostgreSQL as"
        ) from None
    return Account(UNPRIVILEGED_USER, entry.pw_uid, entry.pw_gid)


def _can_traverse(path: Path, account: Account) -> bool:
    info = path.stat()
    if info.st_uid == account.uid:
        return bool(info.st_mode & stat.S_IXUSR)
    if info.st_gid == account.gid:
        return bool(info.st_mode & stat.S_IXGRP)
    return bool(info.st_mode & stat.S_IXOTH)


class PostgresServer:
    """One ``postgres`` process on ``127.0.0.1:<port>`` and a Unix socket in ``root``.

    ``start()`` runs initdb on first use and returns once the server answers a query;
    ``stop()`` is a fast shutdown. Both may be called again: the port, the cluster and
    :attr:`password` are kept. ``close()`` also deletes a directory the server made itself.

    The parent-death signal fires when the *thread* that called ``start()`` exits, so call
    ``start()`` from the main thread (not ``asyncio.to_thread``).
    """

    def __init__(
        self, root: Path | None = None, *, bin_dir: Path | None = None, port: int | None = None
    ) -> None:
        found = bin_dir if bin_dir is not None else find_bin_dir()
        if found is None:
            raise PostgresError(
                f"no PostgreSQL binaries: nothing matches {DEBIAN_BIN_GLOB} "
                f"(apt-get install postgresql) and {BIN_ENV_VAR} is not set"
            )
        self.bin_dir = found
        self._account = _unprivileged_account()
        self._owns_root = root is None
        # Not pytest's tmp_path: its parents are 0700 root, closed to the server's user.
        self.root = root if root is not None else Path(tempfile.mkdtemp(prefix="fw-pg-"))
        self.port = port if port is not None else free_port()
        self.data_dir = self.root / "data"
        self.socket_dir = self.root
        self.log_path = self.root / "postgres.log"
        self.password = secrets.token_urlsafe(24)  # fw_pw's
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    def dsn(self, database: str = "postgres", user: str = SUPERUSER, password: str = "") -> str:
        """A ``postgresql://`` URL over TCP to 127.0.0.1; with no password in it by default."""
        secret = f":{quote(password, safe='')}" if password else ""
        return (
            f"postgresql://{quote(user, safe='')}{secret}@127.0.0.1:{self.port}/{quote(database)}"
        )

    def socket_dsn(self, database: str = "postgres", user: str = SUPERUSER) -> str:
        """A ``postgresql://`` URL over the Unix socket in :attr:`socket_dir`."""
        host = quote(str(self.socket_dir), safe="/")
        return (
            f"postgresql://{quote(user, safe='')}@/{quote(database)}?host={host}&port={self.port}"
        )

    def connect(
        self, database: str = "postgres", user: str = SUPERUSER, **kwargs: Any
    ) -> psycopg.Connection[tuple[Any, ...]]:
        """A psycopg connection over TCP, in autocommit unless told otherwise."""
        import psycopg

        kwargs.setdefault("autocommit", True)
        kwargs.setdefault("connect_timeout", 10)
        return psycopg.connect(self.dsn(database, user), **kwargs)

    def start(self, timeout: float = 30.0) -> None:
        """Start the server (running initdb first if there is no cluster yet) and wait for it."""
        if self.running:
            raise PostgresError("PostgreSQL is already running")
        if not _has_binaries(self.bin_dir):
            raise PostgresError(f"no initdb and postgres in {self.bin_dir}")
        self._prepare_root()
        if not (self.data_dir / "PG_VERSION").exists():
            self._initdb(timeout)
        command = [
            str(self.bin_dir / "postgres"),
            "-D",
            str(self.data_dir),
            "-c",
            "listen_addresses=127.0.0.1",
            "-c",
            f"port={self.port}",
            "-c",
            f"unix_socket_directories={self.socket_dir}",
        ]
        for name, value in SETTINGS.items():
            command += ["-c", f"{name}={value}"]
        with self.log_path.open("ab") as log:
            self._proc = subprocess.Popen(
                command,
                cwd=self.root,
                env=self._env(),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                **self._as_account(),
            )
        try:
            self._wait_ready(timeout)
            self._ensure_password_role()
        except BaseException:
            self.stop()
            raise

    def stop(self, timeout: float = 10.0) -> None:
        """Fast shutdown; SIGKILL to every process of the cluster if it lingers. Safe to repeat."""
        proc, self._proc = self._proc, None
        if proc is None:
            return
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout)
        if proc.poll() is None:
            proc.send_signal(signal.SIGSTOP)  # hung: it must fork no more backends
        # Hung, or killed from outside with its backends left running. Each child of the
        # postmaster calls setsid(), so no process group holds them all: what marks them is
        # their working directory, the cluster's.
        for pid in processes_in(self.data_dir):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        proc.kill()
        proc.wait()

    def restart(self, timeout: float = 30.0) -> None:
        self.stop()
        self.start(timeout)

    def close(self) -> None:
        """Stop the server and delete its directory, if this object made that directory."""
        self.stop()
        if self._owns_root:
            shutil.rmtree(self.root, ignore_errors=True)

    def create_database(
        self, name: str, *, owner: str = SUPERUSER, template: str = "template1"
    ) -> None:
        """``CREATE DATABASE name``: a copy of ``template``, which nobody may be connected to.

        PostgreSQL 15's default strategy WAL-logs every page of the copy; copying the files
        took 20 ms instead of 48 here on an idle machine (fsync is off, so the checkpoints
        it asks for cost little), and no longer under load.
        """
        from psycopg import sql

        with self.connect() as conn:
            query = sql.SQL("CREATE DATABASE {} OWNER {} TEMPLATE {}").format(
                sql.Identifier(name), sql.Identifier(owner), sql.Identifier(template)
            )
            if conn.info.server_version >= 150000:
                query += sql.SQL(" STRATEGY FILE_COPY")
            conn.execute(query)

    def drop_database(self, name: str) -> None:
        """``DROP DATABASE IF EXISTS name WITH (FORCE)``: its connections are cut first."""
        from psycopg import sql

        with self.connect() as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )

    def diagnostics(self) -> str:
        """The end of the server's log."""
        try:
            tail = self.log_path.read_text(encoding="utf8", errors="replace")[-4000:]
        except FileNotFoundError:
            return f"(no {self.log_path})"
        return f"--- {self.log_path}:\n{tail}"

    def _prepare_root(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        socket_path = self.socket_dir / f".s.PGSQL.{self.port}"
        if len(os.fsencode(socket_path)) > _MAX_SOCKET_PATH:
            raise PostgresError(f"{socket_path} is too long for a Unix socket: use a shorter root")
        account = self._account
        if account is None:
            return
        os.chown(self.root, account.uid, account.gid)
        self.root.chmod(0o755)  # clients of other users may use the socket
        closed = [p for p in self.root.parents if not _can_traverse(p, account)]
        if closed:
            raise PostgresError(
                f"{account.name} cannot reach {self.root}: {closed[0]} is closed to it "
                "(set TMPDIR to a directory under /tmp, or pass another root)"
            )

    def _initdb(self, timeout: float) -> None:
        command = [
            str(self.bin_dir / "initdb"),
            "-D",
            str(self.data_dir),
            "-U",
            SUPERUSER,
            "-A",
            "trust",
            "-E",
            "UTF8",
            "--locale=C",
            "--no-sync",
        ]
        with self.log_path.open("ab") as log:
            try:
                subprocess.run(
                    command,
                    cwd=self.root,
                    env=self._env(),
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    timeout=timeout,
                    check=True,
                    **self._as_account(),
                )
            except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as exc:
                raise PostgresError(f"initdb failed: {exc}\n{self.diagnostics()}") from None
        (self.data_dir / "pg_hba.conf").write_text(PG_HBA)  # initdb's file: owner, mode kept

    def _ensure_password_role(self) -> None:
        from psycopg import sql

        with self.connect() as conn:
            if conn.execute(
                "SELECT 1 FROM pg_roles WHERE rolname = %s", (PASSWORD_USER,)
            ).fetchone():
                return
            conn.execute(
                sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(
                    sql.Identifier(PASSWORD_USER), sql.Literal(self.password)
                )
            )

    def _wait_ready(self, timeout: float) -> None:
        import psycopg

        assert self._proc is not None
        deadline = time.monotonic() + timeout
        while True:
            if self._proc.poll() is not None:
                raise PostgresError(
                    f"postgres exited with {self._proc.returncode} while starting\n"
                    + self.diagnostics()
                )
            try:
                with self.connect(connect_timeout=2) as conn:
                    conn.execute("SELECT 1")
                    return
            except psycopg.OperationalError:  # refused, or "the database system is starting up"
                pass
            if time.monotonic() > deadline:
                raise PostgresError(
                    f"PostgreSQL not ready within {timeout} s\n" + self.diagnostics()
                )
            time.sleep(0.02)

    def _env(self) -> dict[str, str]:
        # A PGDATA, PGPORT or PGHOST meant for some other server must not leak in.
        env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
        env["LC_ALL"] = "C"  # server messages in English, whatever the locale here
        return env

    def _as_account(self) -> dict[str, Any]:
        """Popen keywords: run as the unprivileged account, die with this thread."""
        preexec = _die_with_parent(os.getpid())
        account = self._account
        if account is None:
            return {"preexec_fn": preexec}
        return {
            "user": account.uid,
            "group": account.gid,
            "extra_groups": [],
            "preexec_fn": preexec,
        }


def _new_server() -> PostgresServer:
    """A not yet started server; skips or fails (as the environment asks) when it cannot be."""
    bin_dir = find_bin_dir()
    missing = ""
    if bin_dir is None:
        missing = f"no initdb in {DEBIAN_BIN_GLOB} or on PATH (apt-get install postgresql)"
    elif not _has_binaries(bin_dir):
        missing = f"no initdb and postgres in {bin_dir}"
    else:
        try:
            import psycopg  # noqa: F401
        except ImportError:
            missing = "psycopg is not installed (pip install 'psycopg[binary]>=3.2,<4')"
    if missing:
        if os.environ.get(REQUIRE_ENV_VAR, "") not in ("", "0"):
            pytest.fail(f"{REQUIRE_ENV_VAR} is set, and {missing}", pytrace=False)
        pytest.skip(f"{missing}: tests that need a real PostgreSQL are skipped")
    return PostgresServer(bin_dir=bin_dir)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """One PostgreSQL per session (per xdist worker): take a fresh database, never stop it."""
    server = _new_server()
    try:
        server.start()
        yield server
    finally:
        server.close()


@pytest.fixture
def postgres_dsn(postgres_server: PostgresServer) -> Iterator[str]:
    """A URL to an empty database of this test's own on the session server, dropped after."""
    name = f"fw_test_{secrets.token_hex(6)}"
    postgres_server.create_database(name)
    try:
        yield postgres_server.dsn(name)
    finally:
        postgres_server.drop_database(name)


@pytest.fixture
def private_postgres() -> Iterator[PostgresServer]:
    """A started PostgreSQL of this test's own, free to be stopped and restarted."""
    server = _new_server()
    try:
        server.start()
        yield server
    finally:
        server.close()

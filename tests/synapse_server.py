"""A real Synapse homeserver on 127.0.0.1 for tests: config, process lifecycle, users.

Synapse is AGPL-3.0, so it lives in its own venv (``.venv-synapse``, made by
``tests/run.sh``) and runs as a child process; nothing here imports it. The
interpreter is ``$FLEETWARDEN_SYNAPSE_PYTHON`` or ``<repo>/.venv-synapse/bin/python``.

One :class:`SynapseServer` owns one data directory and one port for its whole
life, so ``stop()`` then ``start()`` brings back the same server with the same
users, rooms and access tokens.
"""

from __future__ import annotations

import asyncio
import base64
import ctypes
import hashlib
import hmac
import json
import os
import secrets
import signal
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

import yaml

from tests import ports

REPO_ROOT = Path(__file__).resolve().parents[1]
PYTHON_ENV_VAR = "FLEETWARDEN_SYNAPSE_PYTHON"
SERVER_NAME = "localhost"

# Every rc_* limit Synapse 1.163 reads (synapse/config/ratelimiting.py), raised so
# that no test trips one by accident. The defaults break a bot: rc_message allows
# 10 sends then 0.2/s, rc_login.address 5 logins per IP.
_HIGH = {"per_second": 10_000, "burst_count": 100_000}
RATE_LIMITS: dict[str, Any] = {
    "rc_message": _HIGH,
    "rc_registration": _HIGH,
    "rc_registration_token_validity": _HIGH,
    "rc_login": {"address": _HIGH, "account": _HIGH, "failed_attempts": _HIGH},
    "rc_admin_redaction": _HIGH,
    "rc_joins": {"local": _HIGH, "remote": _HIGH},
    "rc_joins_per_room": _HIGH,
    "rc_key_requests": _HIGH,
    "rc_3pid_validation": _HIGH,
    "rc_invites": {"per_room": _HIGH, "per_user": _HIGH, "per_issuer": _HIGH},
    "rc_third_party_invite": _HIGH,
    "rc_media_create": _HIGH,
    "rc_presence": {"per_user": _HIGH},
    "rc_delayed_event_mgmt": _HIGH,
    "rc_room_creation": _HIGH,
    "rc_reports": _HIGH,
    "rc_user_directory": _HIGH,
    "rc_profile": _HIGH,
}

_PR_SET_PDEATHSIG = 1
# Resolved here, not in the forked child: preexec_fn runs between fork and exec,
# where loading a library could deadlock on a lock another thread held at fork.
_prctl = ctypes.CDLL(None, use_errno=True).prctl


class SynapseError(RuntimeError):
    """Synapse could not be started, or answered a request with an error."""


class Registered(NamedTuple):
    user_id: str
    access_token: str
    device_id: str


class AccessEntry(NamedTuple):
    """One line of Synapse's access log: a client request it finished serving."""

    method: str
    path: str  # without the query string
    status: int
    user: str | None  # the requester's user id, None when unauthenticated


def synapse_python() -> Path:
    """The interpreter of the venv Synapse is installed in."""
    configured = os.environ.get(PYTHON_ENV_VAR)
    if configured:
        return Path(configured)
    return REPO_ROOT / ".venv-synapse" / "bin" / "python"


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now (:mod:`tests.ports`)."""
    return ports.free_port()


def _die_with_parent(parent: int) -> Callable[[], None]:
    """A preexec_fn: the child gets SIGTERM when the thread that forked it dies."""

    def preexec() -> None:
        _prctl(_PR_SET_PDEATHSIG, signal.SIGTERM.value, 0, 0, 0)
        if os.getppid() != parent:  # the parent died before prctl took effect
            os._exit(1)

    return preexec


class SynapseServer:
    """One Synapse process serving the client API on ``127.0.0.1:<port>``.

    ``start()`` writes the config on first use and returns once
    ``/_matrix/client/versions`` answers 200; ``stop()`` sends SIGTERM. Both may
    be called again: the port, the database and the signing key are kept.

    The parent-death signal fires when the *thread* that called ``start()``
    exits, so call ``start()`` from the main thread (not ``asyncio.to_thread``).
    """

    def __init__(self, root: Path, *, python: Path | None = None, port: int | None = None) -> None:
        self.root = root
        self.python = python if python is not None else synapse_python()
        self.port = port if port is not None else free_port()
        self.shared_secret = secrets.token_urlsafe(32)
        self.config_path = root / "homeserver.yaml"
        self.log_path = root / "homeserver.log"  # WARNING and above
        self.access_log_path = root / "access.log"  # one line per request served
        self.console_path = root / "console.log"  # stdout/stderr before logging is set up
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    def start(self, timeout: float = 30.0) -> None:
        """Start Synapse and wait until it serves the client API."""
        if self.running:
            raise SynapseError("Synapse is already running")
        if not self.python.exists():
            raise SynapseError(
                f"no Synapse interpreter at {self.python}: run `bash tests/run.sh` to create "
                f".venv-synapse, or set {PYTHON_ENV_VAR}"
            )
        if not self.config_path.exists():
            self._write_config()
        with self.console_path.open("ab") as console:
            self._proc = subprocess.Popen(
                [str(self.python), "-m", "synapse.app.homeserver", "-c", str(self.config_path)],
                cwd=self.root,
                stdin=subprocess.DEVNULL,
                stdout=console,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=_die_with_parent(os.getpid()),
            )
        try:
            self._wait_ready(timeout)
        except BaseException:
            self.stop()
            raise

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM Synapse and wait for it; SIGKILL if it lingers. Safe to repeat."""
        proc, self._proc = self._proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

    def restart(self, timeout: float = 30.0) -> None:
        self.stop()
        self.start(timeout)

    def register(self, username: str, password: str, *, admin: bool = False) -> Registered:
        """Create a user through the shared-secret admin API; returns its login."""
        url = "/_synapse/admin/v1/register"
        nonce = self._request("GET", url)["nonce"]
        mac = hmac.new(self.shared_secret.encode(), digestmod=hashlib.sha1)
        mac.update(b"\0".join([nonce.encode(), username.encode(), password.encode()]))
        mac.update(b"\0admin" if admin else b"\0notadmin")
        body = {
            "nonce": nonce,
            "username": username,
            "password": password,
            "admin": admin,
            "mac": mac.hexdigest(),
        }
        reply = self._request("POST", url, body)
        return Registered(reply["user_id"], reply["access_token"], reply["device_id"])

    async def register_async(
        self, username: str, password: str, *, admin: bool = False
    ) -> Registered:
        """:meth:`register` off the event loop."""
        return await asyncio.to_thread(self.register, username, password, admin=admin)

    def access_log(self) -> list[AccessEntry]:
        """Every request served so far, across restarts, oldest first.

        Synapse logs a request after sending its response, so the last entry can
        lag the client by a few milliseconds: poll rather than read once.
        """
        try:
            lines = self.access_log_path.read_text(encoding="utf8").splitlines()
        except FileNotFoundError:
            return []
        return [entry for line in lines if (entry := _parse_access_line(line)) is not None]

    def request_count(self, path: str, method: str | None = None) -> int:
        """How many requests for exactly ``path`` (no query string) Synapse has served."""
        return sum(
            1
            for entry in self.access_log()
            if entry.path == path and (method is None or entry.method == method)
        )

    def _request(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(
            self.base_url + path,
            data=data,
            method=method,
            headers={"Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return json.load(response)
        except urllib.error.HTTPError as exc:
            detail = exc.read().decode(errors="replace")
            raise SynapseError(f"{method} {path}: HTTP {exc.code} {detail}") from None

    def _wait_ready(self, timeout: float) -> None:
        assert self._proc is not None
        deadline = time.monotonic() + timeout
        url = self.base_url + "/_matrix/client/versions"
        while True:
            if self._proc.poll() is not None:
                raise SynapseError(
                    f"Synapse exited with {self._proc.returncode} while starting\n"
                    + self._diagnostics()
                )
            try:
                with urllib.request.urlopen(url, timeout=2) as response:
                    if response.status == 200:
                        return
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            if time.monotonic() > deadline:
                raise SynapseError(f"Synapse not ready within {timeout} s\n" + self._diagnostics())
            time.sleep(0.05)

    def _diagnostics(self) -> str:
        parts = []
        for path in (self.console_path, self.log_path):
            if path.exists():
                tail = path.read_text(encoding="utf8", errors="replace")[-4000:]
                parts.append(f"--- {path}:\n{tail}")
        return "\n".join(parts)

    def _write_config(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        key_path = self.root / "signing.key"
        seed = base64.b64encode(secrets.token_bytes(32)).decode().rstrip("=")
        key_path.write_text(f"ed25519 a_{secrets.token_hex(3)} {seed}\n")
        log_config_path = self.root / "log.yaml"
        log_config = {
            "version": 1,
            "formatters": {
                "precise": {"format": "%(asctime)s - %(name)s - %(levelname)s - %(message)s"},
                "bare": {"format": "%(message)s"},
            },
            "handlers": {
                "file": {
                    "class": "logging.FileHandler",
                    "formatter": "precise",
                    "filename": str(self.log_path),
                    "encoding": "utf8",
                },
                "access": {
                    "class": "logging.FileHandler",
                    "formatter": "bare",
                    "filename": str(self.access_log_path),
                    "encoding": "utf8",
                },
            },
            "loggers": {
                "synapse.access": {"level": "INFO", "handlers": ["access"], "propagate": False},
            },
            "root": {"level": "WARNING", "handlers": ["file"]},
            "disable_existing_loggers": False,
        }
        log_config_path.write_text(yaml.safe_dump(log_config))
        config = {
            "server_name": SERVER_NAME,
            "pid_file": str(self.root / "homeserver.pid"),
            "listeners": [
                {
                    "port": self.port,
                    "bind_addresses": ["127.0.0.1"],
                    "type": "http",
                    "tls": False,
                    "x_forwarded": False,
                    "resources": [{"names": ["client"], "compress": False}],
                }
            ],
            "database": {"name": "sqlite3", "args": {"database": str(self.root / "homeserver.db")}},
            "log_config": str(log_config_path),
            "media_store_path": str(self.root / "media_store"),
            "signing_key_path": str(key_path),
            "registration_shared_secret": self.shared_secret,
            "enable_registration": False,
            "trusted_key_servers": [],
            "suppress_key_server_warning": True,
            "federation_domain_whitelist": [],
            "presence": {"enabled": False},
            "report_stats": False,
            "bcrypt_rounds": 4,
            **RATE_LIMITS,
        }
        self.config_path.write_text(yaml.safe_dump(config, sort_keys=False))


def _parse_access_line(line: str) -> AccessEntry | None:
    # '127.0.0.1 - 8008 - {@a:localhost} Processed request: … 123B 200 "GET /p?q HTTP/1.1" "UA" …'
    try:
        user = line.split("{", 1)[1].split("}", 1)[0]
        head, request = line.split('"', 2)[:2]
        status = int(head.split()[-1].rstrip("!"))  # "!": the client went away first
        method, target = request.split(" ", 2)[:2]
    except (IndexError, ValueError):
        return None
    return AccessEntry(method, target.split("?", 1)[0], status, user if user != "None" else None)

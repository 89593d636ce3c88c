"""How ``fleetwarden status`` reaches the running dashboard from this machine, and knows it
is the dashboard before it sends a token.

Besides its port, the dashboard listens on a Unix socket in the state dir,
``dashboard.sock`` (0600, in a directory only Fleetwarden's user may enter), and makes a
new status token there at every start (``dashboard-status-token``, 0600). ``status``
connects to the socket, asks the kernel who listens on it (``SO_PEERCRED``), and sends the
token only to the state dir's owner or root. The token opens the API over this socket
alone: a copy of it, or an old one, opens nothing on the port.

Why a socket and not the port with a proof (a challenge answered with a second secret): a
port on 127.0.0.1 belongs to whoever listens first, so a local user who held it while
Fleetwarden was down would be asked, and could relay the challenge to the real dashboard
on another address. Only Fleetwarden's user can make a socket in the state dir, the
kernel vouches for its listener, and no second secret is needed.
"""

from __future__ import annotations

import contextlib
import http.client
import os
import secrets
import socket
import ssl
import stat
import struct
from collections.abc import Iterator
from pathlib import Path

from fleet.lane_files import chmod_itself
from fleet.private_files import write_private

STATUS_TOKEN_FILE = "dashboard-status-token"
"""In the state dir, mode 0600: the bearer token ``fleetwarden status`` sends."""
STATUS_SOCKET_FILE = "dashboard.sock"
"""In the state dir, mode 0600: the Unix socket ``fleetwarden status`` asks."""
_SUN_PATH_MAX = 100  # sockaddr_un.sun_path is 108 bytes with its NUL; keep a margin


class NotTheDashboard(OSError):
    """Something other than Fleetwarden's user listens on the status (or control) socket."""


def new_status_token(state_dir: Path) -> str:
    """A new status token, written 0600 over the last one: a token from before this start
    opens nothing."""
    token = secrets.token_urlsafe(32)
    write_private(state_dir / STATUS_TOKEN_FILE, token + "\n")
    return token


def listen(state_dir: Path, name: str = STATUS_SOCKET_FILE) -> socket.socket:
    """The status socket (or another of the state dir's, ``name``), bound in ``state_dir``
    (one left by an earlier start replaced), 0600, listening. Raises ``OSError``."""
    path = state_dir / name
    with contextlib.suppress(FileNotFoundError):
        path.unlink()
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        with _short(path) as where:
            sock.bind(where)
        chmod_itself(path, 0o600, stat.S_IFSOCK)
        sock.listen(128)
        sock.setblocking(False)
    except BaseException:
        sock.close()
        raise
    return sock


def forget(state_dir: Path, name: str = STATUS_SOCKET_FILE) -> None:
    """Remove the status socket, or ``name`` (its server stopped)."""
    with contextlib.suppress(FileNotFoundError):
        (state_dir / name).unlink()


def peer_uid(sock: socket.socket) -> int:
    """The uid of the process at the other end of Unix socket ``sock``, as the kernel
    says (``SO_PEERCRED``)."""
    creds = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    _pid, uid, _gid = struct.unpack("3i", creds)
    return int(uid)


def connect(state_dir: Path, timeout: float, name: str = STATUS_SOCKET_FILE) -> socket.socket:
    """A connection to the dashboard's status socket (or the state dir's socket ``name``),
    once the kernel said its listener is the state dir's owner or root. Raises
    :class:`NotTheDashboard`, or ``OSError`` when nothing listens (``FileNotFoundError``,
    ``ConnectionRefusedError``)."""
    path = state_dir / name
    owner = os.stat(state_dir).st_uid
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.settimeout(timeout)
        with _short(path) as where:
            sock.connect(where)
        uid = peer_uid(sock)
        if uid not in (owner, 0):
            raise NotTheDashboard(
                f"uid {uid} listens on {path}, not the state dir's owner (uid {owner})"
            )
    except BaseException:
        sock.close()
        raise
    return sock


class StatusConnection(http.client.HTTPConnection):
    """HTTP over the status socket: the request is written only once :func:`connect`
    vouched for the listener."""

    def __init__(self, state_dir: Path, timeout: float) -> None:
        super().__init__("localhost", timeout=timeout)
        self._state_dir = state_dir

    def connect(self) -> None:
        self.sock = connect(self._state_dir, float(self.timeout or 15.0))


class PinnedConnection(http.client.HTTPSConnection):
    """HTTPS to the dashboard's port, for a user who may not enter the state dir: the
    request is written only once the server showed the first certificate of the config's
    ``tls_cert`` (and so holds its key). Pinned, not checked against a CA: a certificate a
    public CA gave someone else, for any name, proves nothing here. Raises ``OSError`` or
    ``ValueError`` when ``cert`` cannot be read as PEM."""

    def __init__(self, host: str, port: int, cert: Path, timeout: float) -> None:
        pem = cert.read_text()
        end = pem.index("-----END CERTIFICATE-----") + len("-----END CERTIFICATE-----")
        self._pinned = ssl.PEM_cert_to_DER_cert(pem[pem.index("-----BEGIN CERTIFICATE-----") : end])
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE  # the pin below is the check
        super().__init__(host, port, timeout=timeout, context=context)

    def connect(self) -> None:
        super().connect()
        assert isinstance(self.sock, ssl.SSLSocket)
        if self.sock.getpeercert(binary_form=True) != self._pinned:
            self.sock.close()
            raise NotTheDashboard(
                f"the server on {self.host}:{self.port} did not show the dashboard's tls_cert"
            )


@contextlib.contextmanager
def _short(path: Path) -> Iterator[str]:
    """``path`` as a socket address: itself, or through its directory's descriptor
    (``/proc/self/fd/N/NAME``) when a deep state dir makes it longer than a socket's
    address may be."""
    if len(os.fsencode(path)) < _SUN_PATH_MAX:
        yield str(path)
        return
    fd = os.open(path.parent, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        yield f"/proc/self/fd/{fd}/{path.name}"
    finally:
        os.close(fd)

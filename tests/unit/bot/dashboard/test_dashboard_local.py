"""The dashboard against the machine it runs on, on a real aiohttp server: its session cookie
is set only for its own name, and ``fleetwarden status`` sends a token only to the real
dashboard (its socket in the state dir, the kernel vouching for the listener), a token
made anew at every start."""

from __future__ import annotations

import asyncio
import os
import socket
import ssl
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import cast

import aiohttp
import pytest

from bot.acl import Acl, Grant, Role
from bot.cli.status.command import StatusError, fetch
from bot.config.dashboard import DashboardSection, DashboardSettings
from bot.config.reading.load import parse_config
from bot.dashboard.access.signin import SignIns
from bot.dashboard.access.status_door import (
    STATUS_SOCKET_FILE,
    STATUS_TOKEN_FILE,
    StatusConnection,
)
from bot.dashboard.pages.metrics import Metrics
from bot.dashboard.pages.views import Views
from bot.dashboard.serving.server import DashboardServer
from fleet.ledger import Ledger
from fleet.timing.clock import ManualClock
from tests.postgres_server import free_port
from tests.tls_cert import self_signed
from tests.unit.bot.dashboard.test_dashboard_server import ALICE, FixedViews


def server_for(
    settings: DashboardSettings, ledger: Ledger, clock: ManualClock, state_dir: Path
) -> DashboardServer:
    return DashboardServer(
        settings,
        views=cast(Views, FixedViews()),
        signins=SignIns(ledger.dashboard, Acl([Grant(ALICE, Role.VIEWER)]), clock),
        metrics=Metrics(),
        state_dir=state_dir,
        environ={},
    )


async def over_socket(state_dir: Path, token: str, host: str) -> int:
    """``GET /api/fleet`` through the status socket with ``token``; the status code."""
    return await asyncio.to_thread(_over_socket, state_dir, token, host)


def _over_socket(state_dir: Path, token: str, host: str) -> int:
    connection = StatusConnection(state_dir, 5.0)
    try:
        connection.request(
            "GET", "/api/fleet", headers={"Host": host, "Authorization": f"Bearer {token}"}
        )
        return connection.getresponse().status
    finally:
        connection.close()


async def test_the_session_cookie_is_set_for_the_dashboards_own_name_alone(
    ledger: Ledger, clock: ManualClock, tmp_path: Path
) -> None:
    """On loopback the dashboard makes a name of its own at start; a sign-in posted to
    `127.0.0.1` is refused before the link is spent (its cookie would reach every port of
    that address), and one posted to the own name sets a host-only cookie."""
    port = free_port()
    settings = DashboardSection(listen=f"127.0.0.1:{port}").settings(tmp_path)
    server = server_for(settings, ledger, clock, tmp_path)
    await server.start()
    name = settings.own_name
    assert name is not None and name.endswith(".localhost")
    assert settings.public_url == f"http://{name}:{port}"
    base = f"http://127.0.0.1:{port}"
    post = {"Sec-Fetch-Site": "same-origin"}
    try:
        async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
            secret = await server._signins.issue("matrix", ALICE, ())
            assert secret is not None
            async with http.post(
                f"{base}/signin", data={"link": secret}, headers=post, allow_redirects=False
            ) as reply:
                assert reply.status == 403 and "Set-Cookie" not in reply.headers
                told = await reply.text()
                assert "Open the link exactly as the bot sent it" in told
                assert name not in told  # its own name is never said without a link
            async with http.post(
                f"{base}/signin",
                data={"link": secret},
                headers={**post, "Host": f"{name}:{port}"},
                allow_redirects=False,
            ) as reply:
                assert reply.status == 303  # the link was still good
                cookie = reply.headers["Set-Cookie"]
        assert cookie.startswith("fw_session=") and "HttpOnly" in cookie
        assert "Domain" not in cookie and "SameSite=Strict" in cookie
    finally:
        await server.stop()


async def test_the_status_token_is_new_at_every_start_and_opens_only_the_socket(
    ledger: Ledger, clock: ManualClock, tmp_path: Path
) -> None:
    """Each start writes a new token (0600) and opens the socket (0600); the token reads
    the API through the socket, never through the port, and the last start's token is
    refused after a restart."""
    port = free_port()
    settings = DashboardSection(listen=f"127.0.0.1:{port}").settings(tmp_path)
    server = server_for(settings, ledger, clock, tmp_path)
    await server.start()
    host = f"{settings.own_name}:{port}"
    try:
        before = (tmp_path / STATUS_TOKEN_FILE).read_text().strip()
        assert (tmp_path / STATUS_TOKEN_FILE).stat().st_mode & 0o777 == 0o600
        assert (tmp_path / STATUS_SOCKET_FILE).stat().st_mode & 0o777 == 0o600
        assert await over_socket(tmp_path, before, host) == 200
        assert await over_socket(tmp_path, "wrong", host) == 401
        async with aiohttp.ClientSession() as http:
            auth = {"Authorization": f"Bearer {before}", "Host": host}
            async with http.get(f"http://127.0.0.1:{port}/api/fleet", headers=auth) as reply:
                assert reply.status == 401
    finally:
        await server.stop()
    assert not (tmp_path / STATUS_SOCKET_FILE).exists()
    restarted = server_for(settings, ledger, clock, tmp_path)
    await restarted.start()
    try:
        after = (tmp_path / STATUS_TOKEN_FILE).read_text().strip()
        assert after != before
        assert await over_socket(tmp_path, before, host) == 401
        assert await over_socket(tmp_path, after, host) == 200
    finally:
        await restarted.stop()


@pytest.fixture
def squatter() -> Iterator[socket.socket]:
    """A local user's listener on a free port of 127.0.0.1, holding it while Fleetwarden is
    down; closed on exit."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(8)
    sock.setblocking(False)
    try:
        yield sock
    finally:
        sock.close()


def test_status_sends_no_token_to_whoever_holds_the_port(
    tmp_path: Path, squatter: socket.socket
) -> None:
    """The orchestrator down, its port squatted, the last token still in the state dir:
    status says the dashboard cannot be reached, and never connected to the port."""
    port = squatter.getsockname()[1]
    config = parse_config(
        f"state_dir: ./state\ndashboard: {{listen: 127.0.0.1:{port}}}\n",
        "f.yaml",
        base_dir=tmp_path,
    )
    (tmp_path / "state").mkdir()
    (tmp_path / "state" / STATUS_TOKEN_FILE).write_text("t" * 43 + "\n")
    with pytest.raises(StatusError, match=r"cannot reach the dashboard at .*dashboard\.sock"):
        fetch(config, {}, "fleet", None)
    with pytest.raises(BlockingIOError):
        squatter.accept()  # nothing ever connected


SQUAT_SOCKET = """
import os, socket, sys
sock = socket.socket(socket.AF_UNIX)
sock.bind(sys.argv[1])
os.chmod(sys.argv[1], 0o666)
os.setuid(65534)  # nobody: the listener's credentials are taken at listen()
sock.listen(1)
print("ready", flush=True)
conn, _ = sock.accept()
data = b""
while chunk := conn.recv(65536):
    data += chunk
print(repr(data), flush=True)
"""


@pytest.mark.skipif(os.geteuid() != 0, reason="another user's listener needs root to make")
def test_status_sends_no_token_to_a_socket_another_user_listens_on(tmp_path: Path) -> None:
    """A socket in the state dir whose listener is neither the state dir's owner nor root
    is refused before anything is written to it."""
    state = tmp_path / "state"
    state.mkdir(mode=0o755)
    (state / STATUS_TOKEN_FILE).write_text("secret-status-token\n")
    config = parse_config(
        f"state_dir: ./state\ndashboard: {{listen: 127.0.0.1:{free_port()}}}\n",
        "f.yaml",
        base_dir=tmp_path,
    )
    squat = subprocess.Popen(
        [sys.executable, "-c", SQUAT_SOCKET, str(state / STATUS_SOCKET_FILE)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert squat.stdout is not None and squat.stdout.readline() == "ready\n"
        with pytest.raises(StatusError, match=r"uid 65534 listens on .*it was sent no token"):
            fetch(config, {}, "fleet", None)
        said, _ = squat.communicate(timeout=10)
        assert said.strip() == "b''"
    finally:
        squat.kill()
        squat.wait()


async def test_a_metrics_token_goes_over_the_port_only_to_the_dashboards_certificate(
    ledger: Ledger, clock: ManualClock, tmp_path: Path, squatter: socket.socket
) -> None:
    """A user without the state dir: status sends the metrics token to the port only over
    TLS, once the server showed the config's own certificate. A squatter with another
    certificate is sent no request; without TLS nothing is sent at all."""
    cert, key = self_signed(tmp_path, "fleet.example.org")
    port = free_port()
    section = (
        f"dashboard: {{listen: 127.0.0.1:{port}, tls_cert: {cert}, tls_key: {key}, "
        "metrics_token_env: FW_T}\n"
    )
    served = parse_config("state_dir: ./state\n" + section, "f.yaml", base_dir=tmp_path)
    other = parse_config("state_dir: ./other\n" + section, "f.yaml", base_dir=tmp_path)
    assert served.dashboard is not None
    environ = {"FW_T": "metrics-token"}
    server = DashboardServer(
        served.dashboard,
        views=cast(Views, FixedViews()),
        signins=SignIns(ledger.dashboard, Acl([]), clock),
        metrics=Metrics(),
        state_dir=served.state_dir,
        environ=environ,
    )
    await server.start()
    try:
        data = await asyncio.to_thread(fetch, other, environ, "fleet", None)
        assert data["agents"] == []
    finally:
        await server.stop()
    squatter_cert, squatter_key = self_signed(tmp_path, "squatter.example.org")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(squatter_cert, squatter_key)
    received: list[bytes] = []
    with socket.create_server(("127.0.0.1", port)) as listener:

        def squat() -> None:
            conn, _ = listener.accept()
            with context.wrap_socket(conn, server_side=True) as tls:
                received.append(tls.recv(65536))

        thread = threading.Thread(target=squat, daemon=True)
        thread.start()
        with pytest.raises(StatusError, match="did not show the dashboard's tls_cert"):
            fetch(other, environ, "fleet", None)
        thread.join(timeout=10)
    assert received == [b""]  # the handshake, then the connection closed unasked
    plain = parse_config(
        "state_dir: ./other\ndashboard: "
        f"{{listen: 127.0.0.1:{squatter.getsockname()[1]}, metrics_token_env: FW_T}}\n",
        "f.yaml",
        base_dir=tmp_path,
    )
    with pytest.raises(StatusError, match="has not run with its dashboard on here yet"):
        fetch(plain, environ, "fleet", None)
    with pytest.raises(BlockingIOError):
        squatter.accept()  # nothing ever connected

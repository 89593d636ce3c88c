"""A locked agent in the real bubblewrap sandbox, behind its real egress door: an allow-list
that names `localhost` reaches no port of the host's 127.0.0.1, plain HTTP to another
port is refused, look-alike names and IP literals are refused, and each refusal is the
agent's, counted."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from fleet.backends.process import shim_argv
from fleet.model import AgentSpec, LaunchPlan
from fleet.names import AgentName
from fleet.sandbox.egress.egress_proxy import Refusal
from fleet.sandbox.service import Sandboxes, SandboxSettings
from tests import sandbox_need

pytestmark = [
    pytest.mark.integration,
    sandbox_need.BWRAP,
]

CLIENT = """
import socket, sys
for raw in sys.argv[1:]:
    s = socket.create_connection(("127.0.0.1", 3128), timeout=10)
    s.sendall(raw.encode().decode("unicode_escape").encode())
    print(repr(s.recv(300)[:40]))
    s.close()
"""


class Book:
    def __init__(self) -> None:
        self.noted: list[Refusal] = []

    def note(self, refusal: Refusal) -> None:
        self.noted.append(refusal)

    async def start(self) -> None:
        pass

    async def stop(self) -> None:
        pass


@pytest.fixture
async def host_server() -> AsyncIterator[int]:
    """A server on the host's 127.0.0.1 that answers anything with a secret."""

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 11\r\n\r\nhost-secret")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(answer, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()
        await server.wait_closed()


async def test_an_allow_list_naming_localhost_reaches_no_port_of_the_host(
    tmp_path: Path, host_server: int
) -> None:
    """Through its egress door, CONNECT and plain HTTP to `localhost` at the host server's
    port, 443 and 80 are refused (it resolves to loopback); a look-alike, an IP literal and
    port 8080 too; the server is never reached and every refusal is counted for the agent."""
    book = Book()
    sandboxes = Sandboxes(SandboxSettings(state_dir=tmp_path / "state", hidden=()))
    await sandboxes.start(book)  # type: ignore[arg-type]
    if sandboxes.problem is not None:
        sandbox_need.missing(sandboxes.problem)
    name = AgentName("coder")
    spec = AgentSpec(name=name, runtime="command", egress_allow=("localhost", "github.com"))
    (tmp_path / "work").mkdir()
    (tmp_path / "home").mkdir()
    port = host_server
    asks = [
        f"CONNECT localhost:{port} HTTP/1.1\\r\\nHost: x\\r\\n\\r\\n",
        "CONNECT localhost:443 HTTP/1.1\\r\\nHost: x\\r\\n\\r\\n",
        f"GET http://localhost:{port}/ HTTP/1.1\\r\\nHost: x\\r\\n\\r\\n",
        "GET http://localhost/ HTTP/1.1\\r\\nHost: x\\r\\n\\r\\n",
        "GET http://github.com:8080/ HTTP/1.1\\r\\nHost: x\\r\\n\\r\\n",
        "CONNECT github.com.evil.example:443 HTTP/1.1\\r\\nHost: x\\r\\n\\r\\n",
        "CONNECT githuB.com.:443 HTTP/1.1\\r\\nHost: x\\r\\n\\r\\n",
        f"CONNECT 127.0.0.1:{port} HTTP/1.1\\r\\nHost: x\\r\\n\\r\\n",
    ]
    plan = LaunchPlan(
        argv=(sys.executable, "-I", "-c", CLIENT, *asks),
        env={"PATH": "/usr/bin:/bin"},
        cwd=tmp_path / "work",
    )
    try:
        wrapped = await sandboxes.wrap(spec, plan, tmp_path / "home", [])
        run_dir = tmp_path / "run"
        run_dir.mkdir()
        # Through the agent shim, as the backends start it: as root it runs the sandbox as
        # the agent's own uid, which the door's socket belongs to.
        _, out, err = await through_shim(wrapped, run_dir)
    finally:
        await sandboxes.release(name)
        await sandboxes.stop()
    lines = out.decode().splitlines()
    assert len(lines) == len(asks), (out, err)
    for line in lines:
        assert "HTTP/1.1 403" in line, lines
    assert b"host-secret" not in out
    assert len(book.noted) == len(asks) and {r.agent for r in book.noted} == {"coder"}
    assert sum("loopback" in r.why for r in book.noted) == 2, [r.why for r in book.noted]


async def through_shim(wrapped: LaunchPlan, run_dir: Path) -> tuple[int, bytes, bytes]:
    """Run the sandboxed ``wrapped`` plan through the agent shim, as the backends start it,
    to its end (a minute at most: killed then, and on any failure); its status and output."""
    process = await asyncio.create_subprocess_exec(
        *shim_argv(sys.executable, run_dir, wrapped),
        start_new_session=True,  # the shim ends its own process group when the agent ends
        env=dict(wrapped.env),
        cwd=str(wrapped.cwd),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        out, err = await asyncio.wait_for(process.communicate(), 60)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    return process.returncode or 0, out, err

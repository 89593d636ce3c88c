"""The MCP door's room: real MCP servers (the SDK's own over streamable HTTP on loopback,
npm's ``server-everything`` over stdio) behind the door on the real heartbeat endpoint, and
the agents' side as an MCP client of the SDK or plain HTTP (:mod:`tests.integration.mcp.rig`);
and the SDK's server behind a real OAuth token endpoint (:mod:`tests.integration.mcp.oauth_rig`)."""

from __future__ import annotations

import os
import select
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.integration.mcp.oauth_rig import CLIENT_ID, CLIENT_SECRET, SCOPE, OAuthMcp
from tests.integration.mcp.rig import CREDENTIAL, REPO, HttpMcp


@pytest.fixture
def http_mcp(tmp_path: Path) -> Iterator[HttpMcp]:
    """The test MCP server (:mod:`tests.integration.mcp.mcp_http_server`) listening, stopped
    after the test."""
    record = tmp_path / "mcp-server" / "authorizations.jsonl"
    record.parent.mkdir()
    env = {**os.environ, "MCP_TEST_TOKEN": CREDENTIAL}
    argv = [sys.executable, "-m", "tests.integration.mcp.mcp_http_server", str(record)]
    process = subprocess.Popen(
        argv, cwd=REPO, env=env, stdout=subprocess.PIPE, start_new_session=True
    )
    try:
        port = _first_line(process, within=30.0)
        yield HttpMcp(f"http://127.0.0.1:{port}/mcp", record)
    finally:
        stop_server(process)


def _first_line(process: subprocess.Popen[bytes], within: float) -> int:
    assert process.stdout is not None
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        ready, _, _ = select.select([process.stdout], [], [], 0.1)
        if ready:
            line = process.stdout.readline()
            if line.strip():
                return int(line)
        if process.poll() is not None:
            raise AssertionError(f"the test MCP server exited ({process.returncode})")
    raise AssertionError(f"the test MCP server did not listen within {within} s")


@pytest.fixture
def oauth_mcp(tmp_path: Path) -> Iterator[Callable[..., OAuthMcp]]:
    """Starts the test MCP server behind its own OAuth token endpoint
    (:mod:`tests.integration.mcp.oauth_mcp_server`), its tokens good for ``seconds``, its
    metadata naming ``advertised`` as its token endpoint (its own by default); each one
    started is stopped after the test."""
    started: list[subprocess.Popen[bytes]] = []

    def start(seconds: int = 3600, advertised: str = "") -> OAuthMcp:
        record = tmp_path / f"oauth-server-{len(started)}"
        record.mkdir()
        env = {
            **os.environ,
            "OAUTH_CLIENT_ID": CLIENT_ID,
            "OAUTH_CLIENT_SECRET": CLIENT_SECRET,
            "OAUTH_TOKEN_SECONDS": str(seconds),
            "OAUTH_SCOPE": SCOPE,
            "OAUTH_ADVERTISED_TOKEN_URL": advertised,
        }
        argv = [sys.executable, "-m", "tests.integration.mcp.oauth_mcp_server", str(record)]
        process = subprocess.Popen(
            argv, cwd=REPO, env=env, stdout=subprocess.PIPE, start_new_session=True
        )
        started.append(process)
        port = _first_line(process, within=30.0)
        return OAuthMcp(f"http://127.0.0.1:{port}/mcp", record / "authorizations.jsonl")

    try:
        yield start
    finally:
        for process in started:
            stop_server(process)


def stop_server(process: subprocess.Popen[bytes]) -> None:
    """End a test server's process (terminated, killed after 10 s) and close its pipe."""
    process.terminate()
    try:
        process.wait(10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
    if process.stdout is not None:
        process.stdout.close()

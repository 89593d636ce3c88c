"""The MCP door's room: real MCP servers (the SDK's own over streamable HTTP on loopback,
npm's ``server-everything`` over stdio) behind the door on the real heartbeat endpoint, and
the agents' side as an MCP client of the SDK or plain HTTP (:mod:`tests.integration.mcp.rig`)."""

from __future__ import annotations

import os
import select
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

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
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if process.stdout is not None:
            process.stdout.close()


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

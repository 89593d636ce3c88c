"""Tests for fleet.watchdog.heartbeat: the loopback heartbeat endpoint, and the stub
agent beating on it."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import socket
import stat
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from fleet.connections.token import TOKEN_HEADER
from fleet.errors import InvalidAgentName
from fleet.runtimes.stub import STUB_AGENT
from fleet.watchdog.heartbeat import (
    MAX_BODY,
    STATE_FILE,
    HeartbeatServer,
    HeartbeatState,
    parse_beat,
)

AGENT = "coder-1"
DEADLINE = 10.0  # seconds any awaited event may take before the test fails


class Beats:
    """The ``on_beat`` callback: records every beat, in order, and lets tests await them."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, str]] = []
        self._queue: asyncio.Queue[tuple[str, str]] = asyncio.Queue()
        self.fail = False

    async def __call__(self, agent: str, kind: str) -> None:
        if self.fail:
            raise RuntimeError("ledger is down")
        self.seen.append((agent, kind))
        self._queue.put_nowait((agent, kind))

    async def until(self, kind: str) -> None:
        """Wait for a beat of ``kind``, passing over others."""
        async with asyncio.timeout(DEADLINE):
            while (await self._queue.get())[1] != kind:
                pass


@pytest.fixture
def beats() -> Beats:
    return Beats()


@pytest.fixture
async def heartbeat_server(tmp_path: Path, beats: Beats) -> AsyncIterator[HeartbeatServer]:
    started = HeartbeatServer(tmp_path / "state", beats)
    await started.start()
    yield started
    await started.stop()


@pytest.fixture
async def heartbeat_http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


async def post(
    http: aiohttp.ClientSession, url: str, token: str | None, body: bytes | None = None
) -> tuple[int, bytes]:
    headers = {} if token is None else {TOKEN_HEADER: token}
    async with http.post(url, data=body, headers=headers) as response:
        return response.status, await response.read()


# -- beats and refusals --------------------------------------------------------------------


async def test_beat_reaches_callback_with_kind(
    heartbeat_server: HeartbeatServer, beats: Beats, heartbeat_http: aiohttp.ClientSession
) -> None:
    """A beat with the right token answers 204 after the callback got (agent, kind)."""
    url, token = heartbeat_server.url_for(AGENT), heartbeat_server.token_for(AGENT)
    assert url == f"http://127.0.0.1:{heartbeat_server.port}/heartbeat/{AGENT}"
    assert await post(heartbeat_http, url, token, b'{"state": "working"}') == (204, b"")
    assert await post(heartbeat_http, url, token, b'{"state": "waiting", "extra": 1}') == (204, b"")
    assert await post(heartbeat_http, url, token) == (204, b"")
    assert beats.seen == [(AGENT, "working"), (AGENT, "waiting"), (AGENT, "beat")]


async def test_wrong_token_or_unknown_agent_is_forbidden(
    heartbeat_server: HeartbeatServer,
    beats: Beats,
    heartbeat_http: aiohttp.ClientSession,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Wrong, missing or another agent's token, an unknown or invalid name: 403, no detail,
    no callback, one warning per known agent, one for all unknown names (none of which is
    logged: anyone can send one), and no token in any log line."""
    caplog.set_level(logging.DEBUG, logger="fleet.watchdog.heartbeat")
    token = heartbeat_server.token_for(AGENT)
    other = heartbeat_server.token_for("other")
    url = heartbeat_server.url_for(AGENT)
    assert await post(heartbeat_http, url, "not-the-token") == (403, b"")
    assert await post(heartbeat_http, url, "not-the-token") == (403, b"")
    assert await post(heartbeat_http, url, None) == (403, b"")
    assert await post(heartbeat_http, url, other) == (403, b"")
    assert await post(heartbeat_http, url.replace(AGENT, "nobody"), token) == (403, b"")
    assert await post(heartbeat_http, url.replace(AGENT, "Bad_Name"), token) == (403, b"")
    assert beats.seen == []
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert sum(AGENT in message for message in warnings) == 1
    assert not any("nobody" in message for message in warnings)
    assert sum("an unknown agent" in message for message in warnings) == 1
    assert not any("Bad_Name" in message for message in warnings)
    assert token not in caplog.text and other not in caplog.text


async def test_a_revoked_token_is_refused_saying_its_run_is_over(
    heartbeat_server: HeartbeatServer,
    beats: Beats,
    heartbeat_http: aiohttp.ClientSession,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A token revoked (its run ended) gets 403, and the one warning names the agent and
    says its run is over — also once the agent holds its next run's token, which is new."""
    caplog.set_level(logging.WARNING, logger="fleet.watchdog.heartbeat")
    url, old = heartbeat_server.url_for(AGENT), heartbeat_server.token_for(AGENT)
    assert heartbeat_server.revoke(AGENT) is True
    assert await post(heartbeat_http, url, old) == (403, b"")
    new = heartbeat_server.token_for(AGENT)
    assert new != old
    assert await post(heartbeat_http, url, new) == (204, b"")
    assert await post(heartbeat_http, url, old) == (403, b"")
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    said = f"refused a heartbeat for {AGENT}: the token of a run that is over"
    assert sum(message.startswith(said) for message in warnings) == 2, warnings
    assert old not in caplog.text and new not in caplog.text
    assert beats.seen == [(AGENT, "beat")]


async def test_oversize_body_is_refused(
    heartbeat_server: HeartbeatServer, beats: Beats, heartbeat_http: aiohttp.ClientSession
) -> None:
    """A body over 4 KiB answers 413, with or without a Content-Length, and is not a beat."""
    url, token = heartbeat_server.url_for(AGENT), heartbeat_server.token_for(AGENT)
    big = b'{"state": "working", "pad": "' + b"x" * MAX_BODY + b'"}'
    assert (await post(heartbeat_http, url, token, big))[0] == 413

    async def chunked() -> AsyncIterator[bytes]:
        for _ in range(8):
            yield b" " * 1024

    async with heartbeat_http.post(url, data=chunked(), headers={TOKEN_HEADER: token}) as response:
        assert response.status == 413
    assert beats.seen == []


async def test_malformed_body_is_a_bad_request(
    heartbeat_server: HeartbeatServer, beats: Beats, heartbeat_http: aiohttp.ClientSession
) -> None:
    """A body that is not {"state": "working"|"waiting"} answers 400 and is not a beat."""
    url, token = heartbeat_server.url_for(AGENT), heartbeat_server.token_for(AGENT)
    for body in (b"not json", b"[1]", b'{"state": "sleeping"}', b'{"state": 3}'):
        assert (await post(heartbeat_http, url, token, body))[0] == 400
    assert beats.seen == []
    assert parse_beat(b"  ") == "beat" and parse_beat(b"{}") == "beat"


async def test_failing_callback_is_a_server_error(
    heartbeat_server: HeartbeatServer, beats: Beats, heartbeat_http: aiohttp.ClientSession
) -> None:
    """When the callback raises, the agent hears 500 and the server keeps serving."""
    url, token = heartbeat_server.url_for(AGENT), heartbeat_server.token_for(AGENT)
    beats.fail = True
    assert (await post(heartbeat_http, url, token))[0] == 500
    beats.fail = False
    assert (await post(heartbeat_http, url, token))[0] == 204


async def test_revoked_token_is_forbidden(
    heartbeat_server: HeartbeatServer, beats: Beats, heartbeat_http: aiohttp.ClientSession
) -> None:
    """After revoke, the old token is refused and a new token_for issues a different one."""
    url, token = heartbeat_server.url_for(AGENT), heartbeat_server.token_for(AGENT)
    assert heartbeat_server.revoke(AGENT) is True
    assert heartbeat_server.revoke(AGENT) is False
    assert (await post(heartbeat_http, url, token))[0] == 403
    assert heartbeat_server.token_for(AGENT) != token
    assert beats.seen == []


async def test_tokens_are_per_agent_and_stable(heartbeat_server: HeartbeatServer) -> None:
    """token_for returns the same token for an agent, different ones across agents, and
    refuses names outside the agent-name pattern."""
    first = heartbeat_server.token_for(AGENT)
    assert heartbeat_server.token_for(AGENT) == first
    assert heartbeat_server.token_for("coder-2") != first
    assert len(first) == 32  # token_urlsafe(24)
    with pytest.raises(InvalidAgentName):
        heartbeat_server.token_for("../etc")
    with pytest.raises(InvalidAgentName):
        heartbeat_server.url_for("a/b")


async def test_tokens_need_start(tmp_path: Path, beats: Beats) -> None:
    """Tokens are loaded by start(): asking before it is a programming error; start is
    one-shot."""
    fresh = HeartbeatServer(tmp_path, beats)
    with pytest.raises(RuntimeError):
        fresh.token_for(AGENT)
    await fresh.start()
    try:
        with pytest.raises(RuntimeError):
            await fresh.start()
    finally:
        await fresh.stop()
    assert fresh.state is HeartbeatState.STOPPED


# -- persistence and binding ----------------------------------------------------------------


async def test_token_and_port_survive_restart(
    tmp_path: Path, beats: Beats, heartbeat_http: aiohttp.ClientSession
) -> None:
    """A new server on the same state dir binds the same port and accepts the old token
    once the start's sweep says its run goes on; the state file is the owner's only."""
    first = HeartbeatServer(tmp_path, beats)
    await first.start()
    token, url = first.token_for(AGENT), first.url_for(AGENT)
    await first.stop()

    saved = json.loads((tmp_path / STATE_FILE).read_text())
    assert saved == {"version": 1, "port": first.port, "tokens": {AGENT: token}}
    assert stat.S_IMODE((tmp_path / STATE_FILE).stat().st_mode) == 0o600
    assert os.listdir(tmp_path) == [STATE_FILE]  # no temporary left over

    second = HeartbeatServer(tmp_path, beats)
    await second.start()
    try:
        assert second.port == first.port
        assert second.url_for(AGENT) == url
        assert second.token_for(AGENT) == token
        assert second.keep_only([AGENT]) == []  # the start's sweep: its run goes on
        assert (await post(heartbeat_http, url, token))[0] == 204
    finally:
        await second.stop()
    assert beats.seen == [(AGENT, "beat")]


async def test_taken_port_falls_back_with_warning(
    tmp_path: Path,
    beats: Beats,
    heartbeat_http: aiohttp.ClientSession,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """When the saved port is taken, the server listens elsewhere, warns, keeps the tokens
    and saves the new port."""
    first = HeartbeatServer(tmp_path, beats)
    await first.start()
    token = first.token_for(AGENT)
    await first.stop()

    with socket.socket() as blocker:
        blocker.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        blocker.bind(("127.0.0.1", first.port))
        blocker.listen()
        second = HeartbeatServer(tmp_path, beats)
        with caplog.at_level(logging.WARNING, logger="fleet.connections.loopback"):
            await second.start()
        try:
            assert second.port != first.port
            warning = next(r for r in caplog.records if r.levelno == logging.WARNING)
            assert str(first.port) in warning.getMessage()
            assert "missed" in warning.getMessage()
            assert token not in caplog.text
            second.keep_only([AGENT])  # the start's sweep: its run goes on
            assert (await post(heartbeat_http, second.url_for(AGENT), token))[0] == 204
            assert json.loads((tmp_path / STATE_FILE).read_text())["port"] == second.port
        finally:
            await second.stop()


def _listeners(table: str, port: int) -> list[str]:
    """Local addresses (kernel hex) of sockets listening on ``port`` in a /proc/net table."""
    if not os.path.exists(table):
        return []
    found = []
    for line in Path(table).read_text().splitlines()[1:]:
        fields = line.split()
        address, hex_port = fields[1].rsplit(":", 1)
        if int(hex_port, 16) == port and fields[3] == "0A":  # 0A: TCP_LISTEN
            found.append(address)
    return found


async def test_binds_loopback_only(tmp_path: Path, beats: Beats) -> None:
    """The kernel sees the endpoint listening on 127.0.0.1 only, also with an explicit port."""
    if sys.platform != "linux":
        pytest.skip("reads the kernel's socket tables in /proc/net")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        wanted = probe.getsockname()[1]
    for port in (0, wanted):
        heartbeat_server = HeartbeatServer(tmp_path / str(port), beats, port=port)
        await heartbeat_server.start()
        try:
            assert port in (0, heartbeat_server.port)
            assert _listeners("/proc/net/tcp", heartbeat_server.port) == ["0100007F"]  # 127.0.0.1
            assert _listeners("/proc/net/tcp6", heartbeat_server.port) == []
        finally:
            await heartbeat_server.stop()


# -- the stub agent ------------------------------------------------------------------------


async def _read_until(stream: asyncio.StreamReader, text: str) -> None:
    async with asyncio.timeout(DEADLINE):
        while text not in (await stream.readline()).decode():
            if stream.at_eof():
                raise AssertionError(f"stub agent ended before saying {text!r}")


async def test_stub_agent_beats_until_it_hangs(
    heartbeat_server: HeartbeatServer, beats: Beats, tmp_path: Path
) -> None:
    """The stub agent beats "working" on its prompt, then "waiting"; after `hang` it stays
    alive but neither beats nor answers."""
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "FLEETWARDEN_HEARTBEAT_URL": heartbeat_server.url_for("stub-1"),
        "FLEETWARDEN_HEARTBEAT_TOKEN": heartbeat_server.token_for("stub-1"),
    }
    argv = ["--heartbeat-interval", "0.1", "--step-delay", "0.2", "--prompt", "count to 3"]
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-I",
        str(STUB_AGENT),
        *argv,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        env=env,
        cwd=tmp_path,
    )
    assert proc.stdin is not None and proc.stdout is not None
    try:
        await beats.until("working")
        await beats.until("waiting")
        assert {agent for agent, _ in beats.seen} == {"stub-1"}
        await _read_until(proc.stdout, "waiting for input")

        proc.stdin.write(b"hang\n")
        await proc.stdin.drain()
        await _read_until(proc.stdout, "hanging")  # said after the last beat has landed
        drained = len(beats.seen)
        proc.stdin.write(b"hello\n")
        await proc.stdin.drain()
        await asyncio.sleep(1.0)  # a negative check: ten intervals with no beat
        assert len(beats.seen) == drained
        assert proc.returncode is None

        proc.terminate()
        rest, _ = await asyncio.wait_for(proc.communicate(), timeout=10.0)
        assert b"received: hello" not in rest
        assert proc.returncode == 0
    finally:
        if proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()


async def test_stub_agent_beats_share_a_connection_and_outlive_a_restart(
    tmp_path: Path, beats: Beats
) -> None:
    """The stub's beats go on one kept-alive connection; when the endpoint restarts (and
    so closes it), the next beat is sent again on a new one and lands."""
    from fleet.runtimes.stub_agent import Heartbeat

    state = tmp_path / "state"
    first = HeartbeatServer(state, beats)
    await first.start()
    heart = Heartbeat(first.url_for("stub-1"), first.token_for("stub-1"), interval=60.0)
    try:
        for kind in ("working", "waiting", "working"):
            heart.state = kind
            await asyncio.to_thread(heart.beat_once)
        assert beats.seen == [("stub-1", "working"), ("stub-1", "waiting"), ("stub-1", "working")]
        assert first.admission.open == 1  # three beats, one connection
    finally:
        await first.stop()

    second = HeartbeatServer(state, beats)
    await second.start()
    second.keep_only(["stub-1"])  # the start's sweep: its run goes on
    try:
        heart.state = "waiting"
        await asyncio.to_thread(heart.beat_once)
        assert beats.seen[-1] == ("stub-1", "waiting")
        assert len(beats.seen) == 4
        assert second.admission.open == 1
    finally:
        heart.stop()
        await second.stop()

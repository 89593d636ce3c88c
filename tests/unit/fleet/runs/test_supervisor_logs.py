"""Tests for fleet.supervisor.fleet reading agents' logs: off the event loop and bounded, so that a
viewer's ``watch`` or ``logs`` of a huge log never stalls the heartbeat endpoint."""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from fleet.backends.process import SubprocessBackend
from fleet.connections.token import TOKEN_HEADER
from fleet.ledger import Ledger
from fleet.runs.launch.launch_kit import LaunchKit, RunDoors
from fleet.runtimes import default_registry
from fleet.supervisor.admission.request import LaunchRequest
from fleet.supervisor.fleet import Fleet, FleetSettings
from fleet.timing.clock import SystemClock
from fleet.transcript import logtail
from fleet.transcript.logtail import Tail
from fleet.watchdog.heartbeat import HeartbeatServer
from tests.fakes.doubles.launches import real_fleet, reap_open_runs
from tests.fakes.doubles.stores import fleet_stores

AGENT = "coder-1"
LAST_STATE = "2200000 of 2200000"
GUARD = 30.0  # seconds before a test that would hang fails instead


@pytest.fixture
async def beating_fleet(tmp_path: Path) -> AsyncIterator[tuple[Fleet, HeartbeatServer]]:
    """A Fleet whose stub agents beat on a real heartbeat endpoint, in one event loop; every
    agent still running at the end is killed."""
    ledger = await Ledger.open(tmp_path / "ledger.db", SystemClock())
    beats: list[tuple[str, str]] = []

    async def on_beat(agent: str, kind: str) -> None:
        beats.append((agent, kind))

    server = HeartbeatServer(tmp_path / "state", on_beat)
    backend = SubprocessBackend()
    fleet = real_fleet(
        stores=fleet_stores(ledger),
        clock=SystemClock(),
        kit=LaunchKit(
            runtimes=default_registry(),
            backends={"subprocess": backend},
            settings=FleetSettings(state_dir=tmp_path, stop_grace=2.0, reply_wait=0.5),
            environ=os.environ,
            doors=RunDoors(heartbeats=server),
        ),
    )
    try:
        await server.start()
        await fleet.start()
        yield fleet, server
    finally:
        await fleet.stop()
        await reap_open_runs(ledger, backend)
        await server.stop()
        await ledger.close()


async def ended_agent_with_a_huge_cr_log(fleet: Fleet, state_dir: Path) -> Path:
    """An agent that ran and was stopped, whose log then holds a 35 MB ``\\r``-only
    progress bar."""
    await fleet.spawn(LaunchRequest(AGENT))
    await fleet.stop_agent(AGENT)
    log = state_dir / "agents" / AGENT / "output.log"
    with log.open("ab") as fh:
        fh.write(b"".join(b"%7d of 2200000\r" % i for i in range(1, 2_200_001)))
    return log


async def test_heartbeats_are_answered_while_watch_reads_a_huge_log(
    beating_fleet: tuple[Fleet, HeartbeatServer], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``watch`` of an ended agent whose log is a 35 MB \\r-only progress bar: the log is
    read in a worker thread, and the heartbeat endpoint answers a beat while that read is
    under way (the read waits for the answer before it goes on); the snapshot is the bar's
    last state."""
    fleet, server = beating_fleet
    await ended_agent_with_a_huge_cr_log(fleet, tmp_path)
    started, answered = threading.Event(), threading.Event()
    seen: dict[str, object] = {}
    real_tail = logtail.tail

    def watched_tail(path: Path, count: int, **limits: int) -> Tail:
        seen["thread"] = threading.current_thread()
        started.set()
        # On the event loop, this wait would block the answer it waits for: it times out.
        seen["answered during the read"] = answered.wait(GUARD)
        return real_tail(path, count, **limits)

    monkeypatch.setattr(logtail, "tail", watched_tail)
    async with asyncio.timeout(2 * GUARD):
        snapshot = asyncio.create_task(fleet.snapshot(AGENT))
        assert await asyncio.to_thread(started.wait, GUARD)
        async with (
            aiohttp.ClientSession() as http,
            http.post(
                server.url_for(AGENT), headers={TOKEN_HEADER: server.token_for(AGENT)}
            ) as response,
        ):
            assert response.status == 204
        answered.set()
        text = await snapshot
    assert seen["thread"] is not threading.main_thread()
    assert seen["answered during the read"] is True
    assert text.splitlines()[-1] == LAST_STATE


async def test_logs_of_a_huge_cr_log_are_read_bounded_off_the_loop(
    beating_fleet: tuple[Fleet, HeartbeatServer], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``logs`` of the same log reads at most the tail's cap, in a worker thread, and shows
    the progress bar as its last state."""
    fleet, _ = beating_fleet
    log = await ended_agent_with_a_huge_cr_log(fleet, tmp_path)
    reads: list[tuple[int, threading.Thread]] = []
    real_pread = os.pread

    def counted(fd: int, length: int, offset: int) -> bytes:
        data = real_pread(fd, length, offset)
        reads.append((len(data), threading.current_thread()))
        return data

    monkeypatch.setattr(logtail.os, "pread", counted)
    lines = await fleet.logs(AGENT, 40)
    assert lines == [LAST_STATE]
    assert log.stat().st_size > 30_000_000
    assert sum(size for size, _ in reads) == logtail.MAX_READ
    assert all(thread is not threading.main_thread() for _, thread in reads)

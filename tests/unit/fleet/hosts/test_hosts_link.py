"""Tests for fleet.hosts.link.connection's HostLink without SSH: a fake dialer, a manual clock
and a sleep that moves it, so the reconnect loop's timing is exact."""

from __future__ import annotations

import asyncio
import itertools
import random
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any, cast

import asyncssh
import pytest

from fleet.hosts.errors import HostDown, HostError, HostKeyUnknown
from fleet.hosts.link.backoff import Backoff
from fleet.hosts.link.connection import HostLink, LinkSettings, LinkState
from fleet.hosts.link.dial import Watcher
from fleet.hosts.schema import HostEntry
from fleet.timing.clock import ManualClock

ENTRY = HostEntry.model_validate(
    {"name": "box2", "ssh": "fw@127.0.0.2:2222", "key_file": "/k/id", "known_hosts": "/k/kh"}
)
WAIT = 5.0


class FakeConnection:
    """What the link uses of an asyncssh connection: run, close, wait_closed."""

    def __init__(self) -> None:
        self.closed = asyncio.Event()
        self.commands: list[str] = []

    def close(self) -> None:
        self.closed.set()

    async def wait_closed(self) -> None:
        await self.closed.wait()

    async def run(self, command: str, **options: Any) -> SimpleNamespace:
        self.commands.append(command)
        return SimpleNamespace(exit_status=0, exit_signal=None, stdout="ok\n", stderr="")


class Rig:
    """A dialer that fails or connects as told, and the time of every attempt."""

    def __init__(self, clock: ManualClock, outcomes: list[Exception | None]) -> None:
        self.clock = clock
        self.outcomes = iter(outcomes)
        self.attempts: list[float] = []
        self.sleeps: list[float] = []
        self.connections: list[FakeConnection] = []

    async def dial(
        self, entry: HostEntry, env: Mapping[str, str], settings: LinkSettings
    ) -> tuple[asyncssh.SSHClientConnection, Watcher]:
        self.attempts.append(self.clock.monotonic())
        outcome = next(self.outcomes, None)
        if outcome is not None:
            raise outcome
        conn = FakeConnection()
        self.connections.append(conn)
        return cast(asyncssh.SSHClientConnection, conn), Watcher()

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.clock.advance(seconds)
        await asyncio.sleep(0)

    def link(self, backoff: Backoff) -> HostLink:
        return HostLink(
            ENTRY, env={}, clock=self.clock, sleep=self.sleep, backoff=backoff, dialer=self.dial
        )


@pytest.fixture
def dial_clock() -> ManualClock:
    return ManualClock(datetime(2026, 11, 23, 9, 0, tzinfo=UTC))


async def until(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + WAIT
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {WAIT} s: {what}")
        await asyncio.sleep(0)


async def test_failed_attempts_back_off_exponentially_then_connect(dial_clock: ManualClock) -> None:
    """Unreachable, the link stays down and waits 1, 2, 4, 8 s between attempts; the
    fifth connects, and the state's `since` is when it went down, then connected."""
    rig = Rig(dial_clock, [HostError("unreachable")] * 4)
    link = rig.link(Backoff(1.0, 30.0, jitter=0.0))
    await link.start()
    try:
        await link.wait_for(LinkState.CONNECTED, wait=WAIT)
        gaps = [b - a for a, b in itertools.pairwise(rig.attempts)]
        assert gaps == [1.0, 2.0, 4.0, 8.0]
        assert link.attempts == 5 and link.error is None
        assert link.since == datetime(2026, 11, 23, 9, 0, 15, tzinfo=UTC)
    finally:
        await link.stop()
    assert link.state is LinkState.STOPPED and rig.connections[0].closed.is_set()


async def test_attempts_never_come_faster_than_once_a_second(dial_clock: ManualClock) -> None:
    """However short the backoff, two attempts are at least min_interval (1 s) apart."""
    rig = Rig(dial_clock, [HostError("unreachable")] * 20)
    link = rig.link(Backoff(0.05, 0.2, rng=random.Random(1)))
    await link.start()
    try:
        await until(lambda: len(rig.attempts) >= 20, "twenty attempts")
    finally:
        await link.stop()
    gaps = [b - a for a, b in itertools.pairwise(rig.attempts)]
    assert min(gaps) >= 1.0 - 1e-9


async def test_a_refused_host_key_waits_for_the_operator(dial_clock: ManualClock) -> None:
    """A host-key refusal is not retried on a timer: the link is `refused` with the
    message, rechecking only its files, until retry() asks for one more attempt."""
    rig = Rig(dial_clock, [HostKeyUnknown("run `fleetwarden hosts trust box2`")])
    link = rig.link(Backoff())
    await link.start()
    try:
        status = await link.wait_for(LinkState.REFUSED, wait=WAIT)
        assert status.error == "run `fleetwarden hosts trust box2`"
        await until(lambda: len(rig.sleeps) >= 50, "fifty rechecks")
        assert link.attempts == 1 and set(rig.sleeps) == {LinkSettings().refused_recheck}
        with pytest.raises(HostDown, match=r"host box2 is refused: run `fleetwarden hosts"):
            await link.run(["true"])
        link.retry()
        await link.wait_for(LinkState.CONNECTED, wait=WAIT)
        assert link.attempts == 2
    finally:
        await link.stop()


async def test_a_dropped_connection_is_down_then_reconnected(dial_clock: ManualClock) -> None:
    """When the connection closes the link is `down` saying why, and reconnects after
    the first backoff wait."""
    rig = Rig(dial_clock, [None, HostError("refused by the network")])
    link = rig.link(Backoff(1.0, 30.0, jitter=0.0))
    await link.start()
    try:
        await link.wait_for(LinkState.CONNECTED, wait=WAIT)
        rig.connections[0].close()
        await until(lambda: link.attempts == 3, "two more attempts")
        await link.wait_for(LinkState.CONNECTED, wait=WAIT)
        assert rig.attempts[1] - rig.attempts[0] == 1.0
        assert rig.attempts[2] - rig.attempts[1] == 2.0
    finally:
        await link.stop()


async def test_run_sends_one_quoted_line_and_needs_a_connection(dial_clock: ManualClock) -> None:
    """run() sends shlex.join(argv) on the connection; before it is up, HostDown."""
    rig = Rig(dial_clock, [])
    link = rig.link(Backoff())
    with pytest.raises(HostDown, match="host box2 is new"):
        await link.run(["true"])
    await link.start()
    try:
        await link.wait_for(LinkState.CONNECTED, wait=WAIT)
        done = await link.run(["echo", "$(id)", "a b"])
        assert done.ok and done.stdout == "ok\n"
        assert rig.connections[0].commands == ["echo '$(id)' 'a b'"]
        with pytest.raises(RuntimeError, match="already started"):
            await link.start()
    finally:
        await link.stop()
        await link.stop()  # a second stop does nothing
    with pytest.raises(HostDown, match="host box2 is stopped"):
        await link.run(["true"])

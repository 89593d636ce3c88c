"""Tests for the comms block at launch (fleet.runs.launch.preamble through the LaunchKit, made by
fleet.peers.roster): a real Fleet, real subprocesses, the stub agent. The block is told
before a run's prompt (never twice), the same text is in the agent's
`$HOME/.fleetwarden/PEERS.md`, and that file is written again when a peer starts or ends."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

import pytest

from fleet.backends.process import SubprocessBackend
from fleet.ledger import Ledger
from fleet.model import AgentSpec, AgentState
from fleet.names import AgentName
from fleet.peers.roster import PeerRoster
from fleet.runs.launch.launch_kit import LaunchKit, RunDoors
from fleet.runs.launch.preamble import prompted
from fleet.runs.layout import AgentPaths
from fleet.runtimes import default_registry
from fleet.supervisor.admission.request import LaunchRequest
from fleet.supervisor.fleet import Fleet, FleetSettings
from fleet.timing.clock import SystemClock
from tests.fakes.doubles.launches import real_fleet
from tests.fakes.doubles.stores import fleet_stores

HEADER = "[fleetwarden] You are agent {} on host local."

CODER = AgentSpec(
    name=AgentName("coder"),
    runtime="stub",
    prompt="count to 2",
    purpose="writes the payments service",
    talks_to=(AgentName("reviewer"),),
)
REVIEWER = AgentSpec(name=AgentName("reviewer"), runtime="stub", purpose="reviews PRs")
LONER = AgentSpec(name=AgentName("loner"), runtime="stub", prompt="count to 1")


@dataclass
class Rig:
    """A started Fleet on a ledger in ``tmp_path``, its peer roster wired as the app does."""

    ledger: Ledger
    state_dir: Path
    backend: SubprocessBackend = field(default_factory=SubprocessBackend)
    fleet: Fleet | None = None

    async def start(self, roster: list[AgentSpec]) -> tuple[Fleet, PeerRoster]:
        fleet: Fleet | None = None

        def now() -> list[AgentSpec]:
            assert fleet is not None
            return fleet.roster()

        peers = PeerRoster(roster=now, agents=self.ledger.agents, state_dir=self.state_dir)
        fleet = real_fleet(
            stores=fleet_stores(self.ledger),
            roster={spec.name: spec for spec in roster},
            clock=SystemClock(),
            kit=LaunchKit(
                runtimes=default_registry(),
                backends={"subprocess": self.backend},
                settings=FleetSettings(state_dir=self.state_dir, stop_grace=2.0),
                environ=os.environ,
                doors=RunDoors(preamble=peers.preamble),
            ),
        )
        fleet.subscribe(peers.on_fleet_event)
        self.fleet = fleet
        await fleet.start()
        await peers.refresh()
        return fleet, peers

    def peers_file(self, name: str) -> Path:
        return AgentPaths.of(self.state_dir, AgentName(name)).home / ".fleetwarden" / "PEERS.md"

    def log(self, name: str) -> str:
        return AgentPaths.of(self.state_dir, AgentName(name)).log.read_text()

    async def cleanup(self) -> None:
        if self.fleet is not None:
            await self.fleet.stop()
        for record in await self.ledger.agents.list_agents():
            run = await self.ledger.runs.last_run(record.name)
            if run is None:
                continue
            if self.backend.is_alive(run.handle):
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(run.handle.pgid, signal.SIGKILL)
            async with asyncio.timeout(10):
                await self.backend.wait(run.handle)


@pytest.fixture
async def peer_launch_rig(tmp_path: Path) -> AsyncIterator[Rig]:
    ledger = await Ledger.open(tmp_path / "ledger.db", SystemClock())
    made = Rig(ledger, tmp_path)
    try:
        yield made
    finally:
        try:
            await made.cleanup()
        finally:
            await ledger.close()


async def eventually(check: Callable[[], bool], within: float = 10.0) -> None:
    async with asyncio.timeout(within):
        # Polling on purpose: another process writes what is checked.
        while not check():  # noqa: ASYNC110
            await asyncio.sleep(0.02)


async def test_the_block_comes_before_the_prompt_and_in_home(peer_launch_rig: Rig) -> None:
    fleet, peers = await peer_launch_rig.start([CODER, REVIEWER])
    await fleet.spawn(LaunchRequest("coder"))
    await eventually(lambda: "stub: done" in peer_launch_rig.log("coder"))
    log = peer_launch_rig.log("coder")
    # The stub says its prompt: the block first, its own prompt after it.
    assert f"stub: working on: {HEADER.format('coder')}" in log
    told = log.split("stub: working on: ", 1)[1]
    assert told.index("Your peers (the agents you may message):") < told.index("count to 2")
    assert "stub: step 1/3" not in log and "stub: 2" in log  # `count to 2` still read
    written = peer_launch_rig.peers_file("coder").read_text()
    assert written == peers.block(await fleet.spec("coder"))  # the text the prompt was told
    assert written.splitlines()[0] == HEADER.format("coder")
    assert "- reviewer on host local (stub) — not running: reviews PRs" in written.splitlines()
    record = await peer_launch_rig.ledger.agents.get_agent("coder")
    assert record is not None and record.prompt == "count to 2"  # the ledger keeps its own


async def test_an_agent_without_a_prompt_is_told_by_its_file(peer_launch_rig: Rig) -> None:
    """The reviewer has a role and is coder's peer, but no prompt: its run gets no prompt,
    its HOME gets the file."""
    fleet, _ = await peer_launch_rig.start([CODER, REVIEWER])
    await fleet.spawn(LaunchRequest("reviewer"))
    await eventually(lambda: "waiting for input" in peer_launch_rig.log("reviewer"))
    assert "working on" not in peer_launch_rig.log("reviewer")
    written = peer_launch_rig.peers_file("reviewer").read_text()
    assert written.splitlines()[0] == HEADER.format("reviewer")
    assert "- coder on host local (stub) — not running: writes the payments service" in written


async def test_an_agent_without_peers_is_told_nothing(peer_launch_rig: Rig) -> None:
    fleet, _ = await peer_launch_rig.start([CODER, REVIEWER, LONER])
    await fleet.spawn(LaunchRequest("loner"))
    await eventually(lambda: "stub: done" in peer_launch_rig.log("loner"))
    assert "stub: working on: count to 1" in peer_launch_rig.log("loner")
    assert "[fleetwarden]" not in peer_launch_rig.log("loner")
    assert not peer_launch_rig.peers_file("loner").exists()


async def test_a_prompt_that_holds_the_block_is_not_told_it_twice(peer_launch_rig: Rig) -> None:
    told = f"{HEADER.format('coder')}\nalready told\n\ncount to 2"
    fleet, _ = await peer_launch_rig.start([replace(CODER, prompt=told), REVIEWER])
    await fleet.spawn(LaunchRequest("coder"))
    await eventually(lambda: "stub: done" in peer_launch_rig.log("coder"))
    assert peer_launch_rig.log("coder").count(HEADER.format("coder")) == 1
    assert "Your peers" not in peer_launch_rig.log("coder")


def test_a_prompt_that_only_quotes_the_first_line_is_still_told_the_block() -> None:
    block = f"{HEADER.format('coder')}\nYour peers (the agents you may message): reviewer"
    quoting = f"Fix the bug. The log said: {HEADER.format('coder')} and then stopped."
    told = prompted(replace(CODER, prompt=quoting), block).prompt
    assert told == f"{block}\n\n{quoting}"
    again = prompted(replace(CODER, prompt=told), block).prompt
    assert again == told  # never twice


async def test_the_file_is_written_again_when_a_peer_starts_and_ends(peer_launch_rig: Rig) -> None:
    fleet, _ = await peer_launch_rig.start([CODER, REVIEWER])
    await fleet.spawn(LaunchRequest("coder"))
    before = "- reviewer on host local (stub) — not running: reviews PRs"
    after = "- reviewer on host local (stub) — live: reviews PRs"
    assert before in peer_launch_rig.peers_file("coder").read_text().splitlines()
    await fleet.spawn(LaunchRequest("reviewer"))  # its start is heard before the spawn returns
    assert after in peer_launch_rig.peers_file("coder").read_text().splitlines()
    await fleet.stop_agent("reviewer")
    await eventually(lambda: before in peer_launch_rig.peers_file("coder").read_text().splitlines())
    status = await fleet.status("coder")
    assert status.state is AgentState.RUNNING


async def test_a_reload_that_changes_talks_to_reaches_the_block_and_the_file(
    peer_launch_rig: Rig,
) -> None:
    fleet, peers = await peer_launch_rig.start([CODER, REVIEWER])
    await fleet.spawn(LaunchRequest("coder"))
    tester = AgentSpec(name=AgentName("tester"), runtime="stub", purpose="runs the tests")
    changed = replace(CODER, talks_to=(AgentName("tester"),))
    await fleet.apply_roster({s.name: s for s in (changed, REVIEWER, tester)})
    assert peers.may_talk(await fleet.spec("coder"), "tester")
    assert not peers.may_talk(await fleet.spec("coder"), "reviewer")
    assert await peers.rewrite() == 1  # coder runs; the others have not started
    assert await peers.rewrite() == 0  # written only where what it says has changed
    lines = peer_launch_rig.peers_file("coder").read_text().splitlines()
    assert "- tester on host local (stub) — not running: runs the tests" in lines
    assert not any(line.startswith("- reviewer") for line in lines)

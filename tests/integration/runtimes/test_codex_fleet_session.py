"""A Codex agent as a live session in the real Fleet, sandboxed (bubblewrap, egress
locked, its own uid when root) with the session driver and the approvals service: the
real pinned ``codex app-server`` against the fake provider. What it asks reaches the
approvals; an answer goes back to the same process; ``send`` and ``interrupt`` act in-band."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from fleet.approvals.service import Approvals
from fleet.backends.process import SubprocessBackend
from fleet.ledger import Ledger
from fleet.ledger.records.approvals import ApprovalRequest, Decision
from fleet.model import AgentSpec, AgentState, PermissionMode
from fleet.names import AgentName
from fleet.runs.launch.launch_kit import LaunchKit, RunDoors, RunPlace
from fleet.runtimes import default_registry
from fleet.sandbox.service import Sandboxes, SandboxSettings
from fleet.supervisor.admission.request import LaunchRequest
from fleet.supervisor.fleet import Fleet, FleetSettings
from fleet.timing.clock import SystemClock
from tests import sandbox_need
from tests.fakes.doubles.launches import real_fleet
from tests.fakes.doubles.stores import fleet_stores
from tests.fakes.provider.server import Accepted, FakeProvider, Turn
from tests.integration.runtimes.codex_live import MODEL
from tests.integration.runtimes.test_codex_live_session import DONE, EDIT, SLOW, TOUCH
from tests.integration.runtimes.test_real_clis import bin_dir, cli, node_dir

pytestmark = [
    pytest.mark.integration,
    pytest.mark.agent_cli,
    sandbox_need.BWRAP,
]

KEY = "test-key-codex-fleet"
NAME = AgentName("cx-1")
DEADLINE = 60.0


@dataclass
class Rig:
    fleet: Fleet
    ledger: Ledger
    approvals: Approvals
    fake: FakeProvider
    make: Callable[[Approvals], Fleet]  # another Fleetwarden on the same state and ledger

    async def restart(self) -> None:
        """Stop this Fleetwarden (the agent runs on) and start a new one, which reattaches."""
        await self.fleet.stop()
        self.approvals = Approvals(self.ledger.approvals, SystemClock())
        self.fleet = self.make(self.approvals)
        await self.fleet.start()

    async def lines(self) -> list[str]:
        return await self.fleet.logs(NAME, 2000)

    async def until(self, what: str, found: Callable[[], object]) -> object:
        """Poll ``found()`` (sync or async) until it is truthy."""
        stop = time.monotonic() + DEADLINE
        while time.monotonic() < stop:
            value = found()
            if asyncio.iscoroutine(value):
                value = await value
            if value:
                return value
            await asyncio.sleep(0.05)
        tail = "\n".join((await self.lines())[-30:])
        raise AssertionError(f"no {what} within {DEADLINE} s; the log ends:\n{tail}")

    async def turns_over(self, count: int) -> None:
        async def done() -> bool:
            return sum('"method":"turn/completed"' in line for line in await self.lines()) >= count

        await self.until(f"{count} turns over", done)

    async def asked(self) -> ApprovalRequest:
        async def first() -> ApprovalRequest | None:
            pending = await self.approvals.pending(NAME)
            return pending[0] if pending else None

        found = await self.until("approval request", first)
        assert isinstance(found, ApprovalRequest)
        return found

    async def workdir(self) -> Path:
        run = await self.ledger.runs.last_run(NAME)
        assert run is not None
        start = await self.ledger.runs.run_start(run.id)
        assert start is not None and start.workdir
        return Path(start.workdir)

    def heard(self) -> str:
        body = self.fake.requests[-1].body
        return json.dumps(body.get("input") if isinstance(body, dict) else None)


@pytest.fixture
async def codex_rig(tmp_path: Path, request: pytest.FixtureRequest) -> AsyncIterator[Rig]:
    cli("codex")
    turns: tuple[Turn, ...] = request.param
    state = tmp_path / "state"
    async with FakeProvider(*turns, default=DONE, accept=Accepted(frozenset({KEY}))) as fake:
        ledger = await Ledger.open(tmp_path / "ledger.db", SystemClock())
        approvals = Approvals(ledger.approvals, SystemClock())
        sandboxes = Sandboxes(SandboxSettings(state_dir=state, hidden=(tmp_path,)))
        assert await sandboxes.start() is None
        path = [str(bin_dir()), str(node_dir()), "/usr/local/bin", "/usr/bin", "/bin"]
        spec = AgentSpec(
            name=NAME,
            runtime="codex",
            model=MODEL,
            secret_env=("OPENAI_API_KEY",),
            egress="locked",
            permissions=PermissionMode.ASK,
        )

        def make(approvals: Approvals) -> Fleet:
            return real_fleet(
                stores=fleet_stores(ledger),
                clock=SystemClock(),
                kit=LaunchKit(
                    runtimes=default_registry(),
                    backends={"subprocess": SubprocessBackend()},
                    settings=FleetSettings(
                        state_dir=state,
                        reply_wait=0.1,
                        provider_urls={"openai": f"{fake.base_url}/a/{NAME}"},
                    ),
                    environ={
                        "PATH": ":".join(dict.fromkeys(path)),
                        "LANG": "C.UTF-8",
                        "OPENAI_API_KEY": KEY,
                    },
                    doors=RunDoors(approvals=approvals),
                    place=RunPlace(sandboxes=sandboxes),
                ),
                roster={NAME: spec},
            )

        codex_rig = Rig(make(approvals), ledger, approvals, fake, make)
        await codex_rig.fleet.start()
        try:
            yield codex_rig
        finally:
            record = await ledger.agents.get_agent(NAME)
            if record is not None and record.state.is_live:  # a live session waits on
                await codex_rig.fleet.stop_agent(NAME)
            await codex_rig.fleet.stop()
            await sandboxes.stop()
            await ledger.close()


@pytest.mark.parametrize(
    "codex_rig", [(TOUCH, Turn(text="made it"), EDIT, Turn(text="not edited"))], indirect=True
)
async def test_asks_are_answered_from_the_approvals_in_one_process(codex_rig: Rig) -> None:
    """With ``ask``: the command is an approval request; allowed, it runs in the sandbox.
    A ``send`` reaches the same process; its edit is asked, denied with a reason: the file
    stays unwritten and the model hears the reason."""
    await codex_rig.fleet.spawn(LaunchRequest(NAME, prompt="make a file"))
    request = await codex_rig.asked()
    assert (request.tool, request.subject, request.channel) == (
        "commandExecution",
        "touch made.txt",
        "codex-app-server",
    )
    work = await codex_rig.workdir()
    assert not (work / "made.txt").exists()
    await codex_rig.approvals.answer(
        request.id, by="@op:hs", decision=Decision.ALLOW, how="command"
    )
    await codex_rig.turns_over(1)
    assert (work / "made.txt").exists()
    first = await codex_rig.ledger.runs.last_run(NAME)

    await codex_rig.fleet.send(NAME, "now edit hello.txt")
    request = await codex_rig.asked()
    assert (request.tool, request.subject) == ("fileChange", "hello.txt")
    assert "hello.txt (add)" in request.detail
    await codex_rig.approvals.answer(
        request.id, by="@op:hs", decision=Decision.DENY, how="reply", reason="leave it alone"
    )
    await codex_rig.turns_over(2)
    assert not (work / "hello.txt").exists()
    assert "The operator denied `hello.txt`: leave it alone" in codex_rig.heard()
    run = await codex_rig.ledger.runs.last_run(NAME)
    assert first is not None and run is not None and run.id == first.id  # one process
    assert (run.handle.run_dir / "sandbox.json").exists()
    record = await codex_rig.ledger.agents.get_agent(NAME)
    assert record is not None and record.state is AgentState.RUNNING


@pytest.mark.parametrize("codex_rig", [(SLOW, Turn(text="after the interrupt"))], indirect=True)
async def test_interrupt_ends_the_turn_and_the_agent_stays(codex_rig: Rig) -> None:
    """``interrupt`` ends the running turn; the process stays and the next ``send`` is a
    turn of the same run."""
    await codex_rig.fleet.spawn(LaunchRequest(NAME, prompt="talk slowly"))

    async def streaming() -> bool:
        return any('"method":"turn/started"' in line for line in await codex_rig.lines()) and bool(
            codex_rig.fake.requests
        )

    await codex_rig.until("a running turn", streaming)
    said = await codex_rig.fleet.interrupt(NAME)
    assert "interrupted" in said
    await codex_rig.turns_over(1)
    assert any('"status":"interrupted"' in line for line in await codex_rig.lines())
    await codex_rig.fleet.send(NAME, "go on")
    await codex_rig.turns_over(2)
    assert any("after the interrupt" in line for line in await codex_rig.lines())
    record = await codex_rig.ledger.agents.get_agent(NAME)
    assert record is not None and record.state is AgentState.RUNNING


@pytest.mark.parametrize(
    "codex_rig", [(TOUCH, Turn(text="made it after the restart"))], indirect=True
)
async def test_an_ask_survives_a_restart_of_fleetwarden(codex_rig: Rig) -> None:
    """An ask open while Fleetwarden restarts is still open after it (not asked twice);
    answered then, the answer reaches the same Codex process and the command runs."""
    await codex_rig.fleet.spawn(LaunchRequest(NAME, prompt="make a file"))
    request = await codex_rig.asked()
    work = await codex_rig.workdir()
    first = await codex_rig.ledger.runs.last_run(NAME)
    await codex_rig.restart()
    assert [r.id for r in await codex_rig.approvals.pending(NAME)] == [request.id]
    await codex_rig.approvals.answer(
        request.id, by="@op:hs", decision=Decision.ALLOW, how="command"
    )
    await codex_rig.turns_over(1)
    assert (work / "made.txt").exists()
    run = await codex_rig.ledger.runs.last_run(NAME)
    assert first is not None and run is not None and run.id == first.id
    assert any("made it after the restart" in line for line in await codex_rig.lines())

"""The real pi and opencode, sandboxed (as root, like CI), ask the operator through the ask
door before a shell command; the answer decides whether it runs, a deny's reason reaches
the model, an ``allow:`` pattern passes unasked, and an ask outlives a restart of
Fleetwarden's endpoint and approvals."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from fleet.approvals.ask_door import AskDoor, ledger_terms
from fleet.approvals.service import ApprovalEvent, Approvals
from fleet.backends.process import SubprocessBackend
from fleet.ledger import Ledger
from fleet.ledger.records.approvals import ApprovalRequest, ApprovalState, Decision
from fleet.model import AgentSpec, AgentState, PermissionMode
from fleet.names import AgentName
from fleet.runs.launch.launch_kit import LaunchKit, RunDoors, RunPlace
from fleet.runs.layout import AgentPaths
from fleet.runtimes import default_registry
from fleet.sandbox.service import Sandboxes, SandboxSettings
from fleet.supervisor.admission.request import LaunchRequest
from fleet.supervisor.fleet import Fleet, FleetSettings
from fleet.timing.clock import SystemClock
from fleet.watchdog.heartbeat import HeartbeatServer
from tests import sandbox_need
from tests.fakes.doubles.launches import real_fleet
from tests.fakes.doubles.stores import fleet_stores
from tests.fakes.provider.server import Accepted, FakeProvider, ToolCall, Turn
from tests.integration.runtimes.test_fleet_real_clis import KEY, REPLY, ended
from tests.integration.runtimes.test_real_clis import bin_dir, cli, node_dir

pytestmark = [
    pytest.mark.integration,
    pytest.mark.agent_cli,
    sandbox_need.BWRAP,
]

DEADLINE = 90.0
STARTER = "@ann:example.org on matrix"
MADE = "made-by-the-agent.txt"
COMMAND = f"echo fleetwarden > {MADE}"


def shell_call(runtime: str) -> ToolCall:
    """The model runs a shell command (opencode's bash tool wants a description too)."""
    args: dict[str, Any] = {"command": COMMAND}
    if runtime == "opencode":
        args["description"] = "write a file"
    return ToolCall("bash", args)


@dataclass
class Rig:
    """A fleet whose heartbeat endpoint has the ask door; ``asked`` gets each request opened."""

    tmp: Path
    ledger: Ledger
    sandboxes: Sandboxes
    fake: FakeProvider
    approvals: Approvals = field(init=False)
    beats: HeartbeatServer = field(init=False)
    asked: asyncio.Queue[ApprovalRequest] = field(default_factory=asyncio.Queue)
    beaten: list[tuple[str, str]] = field(default_factory=list)  # (agent, kind) as they came
    fleet: Fleet | None = None

    async def serve(self) -> None:
        """(Re)start the endpoint and the approvals over the same state dir and ledger."""
        self.approvals = Approvals(self.ledger.approvals, SystemClock())

        async def listener(event: ApprovalEvent) -> None:
            if event.opened:
                self.asked.put_nowait(event.request)

        self.approvals.subscribe(listener)
        door = AskDoor(
            self.approvals,
            ledger_terms(self.ledger.agents, self.ledger.runs),
            SystemClock(),
            poll_seconds=2.0,
        )

        async def on_beat(agent: str, kind: str) -> None:
            self.beaten.append((agent, kind))
            await self.ledger.heartbeats.record_heartbeat(agent, kind)

        self.beats = HeartbeatServer(self.tmp / "state", on_beat, asks=door)
        await self.beats.start()

    async def spawn(self, spec: AgentSpec, prompt: str = "make the file") -> None:
        path = [str(bin_dir()), str(node_dir()), "/usr/local/bin", "/usr/bin", "/bin"]
        self.fleet = real_fleet(
            stores=fleet_stores(self.ledger),
            clock=SystemClock(),
            kit=LaunchKit(
                runtimes=default_registry(),
                backends={"subprocess": SubprocessBackend()},
                settings=FleetSettings(
                    state_dir=self.tmp / "state",
                    reply_wait=0.1,
                    provider_urls={"anthropic": f"{self.fake.base_url}/a/{spec.name}"},
                ),
                environ={
                    "PATH": ":".join(dict.fromkeys(path)),
                    "LANG": "C.UTF-8",
                    "ANTHROPIC_API_KEY": KEY,
                },
                doors=RunDoors(heartbeats=self.beats, approvals=self.approvals),
                place=RunPlace(sandboxes=self.sandboxes),
            ),
            roster={spec.name: spec},
        )
        await self.fleet.start()
        await self.fleet.spawn(LaunchRequest(spec.name, prompt=prompt, by=STARTER, collect=False))

    async def next_ask(self) -> ApprovalRequest:
        async with asyncio.timeout(DEADLINE):
            return await self.asked.get()

    def made(self, name: str) -> Path:
        return AgentPaths.of(self.tmp / "state", AgentName(name)).work / MADE

    async def logs(self, name: str) -> str:
        assert self.fleet is not None
        return "\n".join(await self.fleet.logs(name, 200))


@pytest.fixture
async def gates_rig(tmp_path: Path) -> AsyncIterator[Rig]:
    ledger = await Ledger.open(tmp_path / "ledger.db", SystemClock())
    sandboxes = Sandboxes(SandboxSettings(state_dir=tmp_path / "state", hidden=(tmp_path,)))
    assert await sandboxes.start() is None
    async with FakeProvider(default=Turn(text=REPLY), accept=Accepted(frozenset({KEY}))) as fake:
        gates_rig = Rig(tmp_path, ledger, sandboxes, fake)
        await gates_rig.serve()
        try:
            yield gates_rig
        finally:
            if gates_rig.fleet is not None:
                await gates_rig.fleet.stop()
            await gates_rig.beats.stop()
            await sandboxes.stop()
            await ledger.close()


def spec(runtime: str, mode: PermissionMode, **more: Any) -> AgentSpec:
    name = AgentName(f"{runtime}-gate")
    return AgentSpec(
        name=name,
        runtime=runtime,
        secret_env=("ANTHROPIC_API_KEY",),
        egress="locked",
        permissions=mode,
        **more,
    )


def tool_results(fake: FakeProvider) -> str:
    """Every tool result the CLI sent back to the model, as text."""
    texts = []
    for request in fake.requests:
        for message in (request.body or {}).get("messages", []) if request.body else []:
            content = message.get("content")
            if isinstance(content, list):
                texts += [str(b.get("content")) for b in content if b.get("type") == "tool_result"]
    return "\n".join(texts)


RUNTIMES = ["pi", "opencode"]


@pytest.mark.parametrize("runtime", RUNTIMES)
async def test_a_shell_command_waits_for_the_operator_and_runs_once_allowed(
    runtime: str, gates_rig: Rig
) -> None:
    """``ask``: the command is asked through the door (tool, command line); it does not run
    until the operator allows it, then it runs and the agent finishes. The gate's
    heartbeats say working, then waiting while the ask waits."""
    cli(runtime)
    gates_rig.fake.add(Turn(text="", tool=shell_call(runtime)))
    agent = spec(runtime, PermissionMode.ASK)
    await gates_rig.spawn(agent)
    request = await gates_rig.next_ask()
    assert (request.agent, request.tool, request.subject) == (agent.name, "bash", COMMAND)
    assert request.channel == "hook" and request.pattern == f"Bash({COMMAND})"
    assert request.starter == STARTER  # who may answer besides the operators
    assert not gates_rig.made(agent.name).exists()
    await gates_rig.approvals.answer(
        request.id, by="@op:hs", decision=Decision.ALLOW, how="command"
    )
    assert await ended(gates_rig.ledger, agent.name, DEADLINE) is AgentState.EXITED, (
        await gates_rig.logs(agent.name)
    )
    assert gates_rig.made(agent.name).read_text().strip() == "fleetwarden"
    assert REPLY in await gates_rig.logs(agent.name)
    kinds = [kind for who, kind in gates_rig.beaten if who == agent.name]
    assert "working" in kinds and "waiting" in kinds[kinds.index("working") :], kinds
    assert kinds[-1] == "waiting", kinds  # the turn ended: alive, waiting for the next


@pytest.mark.parametrize("runtime", RUNTIMES)
async def test_a_deny_blocks_the_command_and_the_model_reads_the_reason(
    runtime: str, gates_rig: Rig
) -> None:
    """A deny with a reason: the command never runs, the model's next request carries the
    operator's reason as the tool's error, and the agent goes on to finish."""
    cli(runtime)
    gates_rig.fake.add(Turn(text="", tool=shell_call(runtime)))
    agent = spec(runtime, PermissionMode.ASK)
    await gates_rig.spawn(agent)
    request = await gates_rig.next_ask()
    reason = "not on a friday 7f3a"
    await gates_rig.approvals.answer(
        request.id, by="@op:hs", decision=Decision.DENY, how="reply", reason=reason
    )
    assert await ended(gates_rig.ledger, agent.name, DEADLINE) is AgentState.EXITED, (
        await gates_rig.logs(agent.name)
    )
    assert not gates_rig.made(agent.name).exists()
    assert f"The operator denied this: {reason}" in tool_results(gates_rig.fake)


@pytest.mark.parametrize("runtime", RUNTIMES)
async def test_an_allow_pattern_runs_the_command_without_asking(
    runtime: str, gates_rig: Rig
) -> None:
    """``edits`` with an allow rule covering the whole command (its redirection too): the
    command runs, decided by the rule, and the operator is asked nothing."""
    cli(runtime)
    gates_rig.fake.add(Turn(text="", tool=shell_call(runtime)))
    agent = spec(runtime, PermissionMode.EDITS, allow=(f"Bash({COMMAND})",))
    await gates_rig.spawn(agent)
    assert await ended(gates_rig.ledger, agent.name, DEADLINE) is AgentState.EXITED, (
        await gates_rig.logs(agent.name)
    )
    assert gates_rig.made(agent.name).read_text().strip() == "fleetwarden"
    run = await gates_rig.ledger.runs.last_run(agent.name)
    assert run is not None
    decided = await gates_rig.ledger.approvals.approvals_of_run(run.id)
    assert all(r.how == "rule" and r.state is ApprovalState.ALLOWED for r in decided)


@pytest.mark.parametrize("runtime", RUNTIMES)
async def test_a_rule_never_covers_a_redirection_to_a_file(runtime: str, gates_rig: Rig) -> None:
    """``allow: ["Bash(echo *)"]`` does not cover `echo … > file`: the operator is asked."""
    cli(runtime)
    gates_rig.fake.add(Turn(text="", tool=shell_call(runtime)))
    agent = spec(runtime, PermissionMode.EDITS, allow=("Bash(echo *)",))
    await gates_rig.spawn(agent)
    request = await gates_rig.next_ask()
    assert request.subject == COMMAND and request.state is ApprovalState.OPEN
    await gates_rig.approvals.answer(request.id, by="@op:hs", decision=Decision.DENY, how="command")
    assert await ended(gates_rig.ledger, agent.name, DEADLINE) is AgentState.EXITED
    assert not gates_rig.made(agent.name).exists()


@pytest.mark.parametrize("runtime", RUNTIMES)
async def test_an_edit_in_the_workdir_passes_and_a_command_is_asked_under_edits(
    runtime: str, gates_rig: Rig
) -> None:
    """``edits``: a file write inside the workdir runs unasked; the shell command after it
    is asked (denied here, so it never runs)."""
    cli(runtime)
    name = f"{runtime}-gate"
    work = AgentPaths.of(gates_rig.tmp / "state", AgentName(name)).work
    target = {"pi": {"path": "notes.txt"}, "opencode": {"filePath": str(work / "notes.txt")}}
    gates_rig.fake.add(
        Turn(text="", tool=ToolCall("write", {**target[runtime], "content": "noted"})),
        Turn(text="", tool=shell_call(runtime)),
    )
    agent = spec(runtime, PermissionMode.EDITS)
    await gates_rig.spawn(agent)
    request = await gates_rig.next_ask()
    assert request.tool == "bash"
    assert (work / "notes.txt").read_text() == "noted"
    await gates_rig.approvals.answer(request.id, by="@op:hs", decision=Decision.DENY, how="command")
    assert await ended(gates_rig.ledger, agent.name, DEADLINE) is AgentState.EXITED, (
        await gates_rig.logs(agent.name)
    )
    assert not gates_rig.made(agent.name).exists()


@pytest.mark.parametrize("runtime", RUNTIMES)
async def test_an_ask_outlives_a_restart_of_the_endpoint_and_is_answered_after_it(
    runtime: str, gates_rig: Rig
) -> None:
    """The endpoint and the approvals stop while the CLI waits; new ones over the same
    state dir and ledger (its run's token confirmed by the start's sweep) take the answer,
    the waiting CLI gets it and goes on."""
    cli(runtime)
    gates_rig.fake.add(Turn(text="", tool=shell_call(runtime)))
    agent = spec(runtime, PermissionMode.ASK)
    await gates_rig.spawn(agent)
    request = await gates_rig.next_ask()
    port = gates_rig.beats.port
    await gates_rig.beats.stop()
    await gates_rig.serve()
    assert gates_rig.beats.port == port
    gates_rig.beats.keep_only([agent.name])  # the start's sweep: its run goes on, its token with it
    await gates_rig.approvals.answer(
        request.id, by="@op:hs", decision=Decision.ALLOW, how="command"
    )
    assert await ended(gates_rig.ledger, agent.name, DEADLINE) is AgentState.EXITED, (
        await gates_rig.logs(agent.name)
    )
    assert gates_rig.made(agent.name).read_text().strip() == "fleetwarden"
    assert len(await gates_rig.ledger.approvals.approvals_of_run(request.run_id)) == 1


async def until(check: Callable[[], bool], seconds: float) -> None:
    """Poll ``check`` until it holds; fail after ``seconds``."""
    async with asyncio.timeout(seconds):
        for _ in itertools.count():
            if check():
                return
            await asyncio.sleep(0.05)


def user_turns(fake: FakeProvider) -> list[str]:
    """The user's texts the provider saw, in the order it first saw them."""
    seen: list[str] = []
    for request in fake.requests:
        for message in (request.body or {}).get("messages", []) if request.body else []:
            content = message.get("content") if message.get("role") == "user" else None
            for part in content if isinstance(content, list) else []:
                text = str(part.get("text", "")) if part.get("type") == "text" else ""
                if text and text not in seen:
                    seen.append(text)
    return seen


async def test_sends_to_a_busy_pi_are_turns_of_one_process_in_order(gates_rig: Rig) -> None:
    """pi's live session: two sends while the first turn runs are turns of the same
    process, in order; then the session ends the process, exit 0."""
    cli("pi")
    gates_rig.fake.add(Turn(text="first answer, slowly " * 10, delay_between_events=0.05))
    agent = spec("pi", PermissionMode.EDITS)
    await gates_rig.spawn(agent, prompt="turn one")
    run = await gates_rig.ledger.runs.last_run(agent.name)
    assert run is not None and gates_rig.fleet is not None
    assert await gates_rig.fleet.send(agent.name, "turn two") is None
    assert await gates_rig.fleet.send(agent.name, "turn three") is None
    assert await ended(gates_rig.ledger, agent.name, DEADLINE) is AgentState.EXITED, (
        await gates_rig.logs(agent.name)
    )
    last = await gates_rig.ledger.runs.last_run(agent.name)
    assert last is not None and last.id == run.id and last.exit_code == 0
    assert user_turns(gates_rig.fake) == ["turn one", "turn two", "turn three"]


async def test_interrupt_ends_pis_turn_and_keeps_the_process(gates_rig: Rig) -> None:
    """``interrupt`` ends pi's slow turn; the process stays, waiting; the next ``send`` is
    a turn of that same process, after which the session ends it."""
    cli("pi")
    gates_rig.fake.add(Turn(text="slowly " * 400, delay_between_events=0.05))
    agent = spec("pi", PermissionMode.EDITS)
    await gates_rig.spawn(agent, prompt="take your time")
    run = await gates_rig.ledger.runs.last_run(agent.name)
    assert run is not None and gates_rig.fleet is not None
    await until(lambda: any(r.method == "POST" for r in gates_rig.fake.requests), DEADLINE)
    said = await gates_rig.fleet.interrupt(agent.name, by="ann")
    assert "interrupted" in said
    # The slow turn alone would take 20 s.
    await until(lambda: gates_rig.beaten[-1:] == [(agent.name, "waiting")], 10.0)
    record = await gates_rig.ledger.agents.get_agent(agent.name)
    assert record is not None and record.state.is_live
    await gates_rig.fleet.send(agent.name, "go on")
    assert await ended(gates_rig.ledger, agent.name, DEADLINE) is AgentState.EXITED
    last = await gates_rig.ledger.runs.last_run(agent.name)
    assert last is not None and last.id == run.id
    assert user_turns(gates_rig.fake)[-1] == "go on"


async def test_interrupt_while_pi_asks_withdraws_the_ask(gates_rig: Rig) -> None:
    """``interrupt`` while pi's command waits for the operator: the gate stops waiting and
    withdraws the ask (closed, never run); pi stays, and the next ``send`` is its turn."""
    cli("pi")
    gates_rig.fake.add(Turn(text="", tool=shell_call("pi")))
    agent = spec("pi", PermissionMode.ASK)
    await gates_rig.spawn(agent)
    request = await gates_rig.next_ask()
    assert gates_rig.fleet is not None
    await gates_rig.fleet.interrupt(agent.name, by="ann")
    closed = await asyncio.wait_for(gates_rig.approvals.wait(request.id), DEADLINE)
    assert closed.state is ApprovalState.CLOSED and "interrupted" in (closed.reason or "")
    record = await gates_rig.ledger.agents.get_agent(agent.name)
    assert record is not None and record.state.is_live
    await gates_rig.fleet.send(agent.name, "go on")
    assert await ended(gates_rig.ledger, agent.name, DEADLINE) is AgentState.EXITED
    assert not gates_rig.made(agent.name).exists()
    assert user_turns(gates_rig.fake)[-1] == "go on"

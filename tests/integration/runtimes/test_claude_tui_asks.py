"""Claude Code's TUI in tmux asks through its blocking ``PermissionRequest`` hook: the real
pinned CLI against the strict fake provider, the real heartbeat endpoint taking the hook's
ask, the approvals service holding it until answered as the chat would."""

from __future__ import annotations

import shutil
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from fleet.approvals.service import Approvals
from fleet.backends.tmux import TmuxBackend
from fleet.ledger import Ledger
from fleet.ledger.records.approvals import ApprovalRequest, Decision
from fleet.model import AgentSpec, PermissionMode
from fleet.names import AgentName
from fleet.runs.launch.launch_kit import LaunchKit, RunDoors
from fleet.runtimes import default_registry
from fleet.supervisor.admission.request import LaunchRequest
from fleet.supervisor.fleet import Fleet, FleetSettings
from fleet.timing.clock import SystemClock
from fleet.watchdog.heartbeat import HeartbeatServer
from tests.fakes.doubles.launches import real_fleet
from tests.fakes.doubles.stores import fleet_stores
from tests.fakes.provider.server import Accepted, FakeProvider, Turn
from tests.integration.console_bot import kill_run_group
from tests.integration.runtimes.test_claude_sessions import eventually, write
from tests.integration.runtimes.test_real_clis import bin_dir, cli, node_dir

pytestmark = [pytest.mark.integration, pytest.mark.agent_cli]

NAME = AgentName("tui")
KEY = "fake-tui-asks-key-0123456789abcdefghij"
REASON = "not that one"


def content(path: Path) -> str | None:
    """The file's text, ``None`` if there is no such file."""
    try:
        return path.read_text()
    except FileNotFoundError:
        return None


@dataclass
class Rig:
    fake: FakeProvider
    ledger: Ledger
    backend: TmuxBackend
    work: Path
    state: Path
    approvals: Approvals | None = None
    fleet: Fleet | None = None
    beats: HeartbeatServer | None = None

    async def start(self) -> Fleet:
        """Fleetwarden's side: the heartbeat endpoint (on its saved port), the approvals
        service and the fleet — anew, as after a restart."""
        clock = SystemClock()
        ledger = self.ledger

        async def on_beat(agent: str, kind: str) -> None:
            await ledger.heartbeats.record_heartbeat(agent, kind)

        self.beats = HeartbeatServer(self.state, on_beat)
        await self.beats.start()
        self.approvals = Approvals(ledger.approvals, clock)
        path = [str(bin_dir()), str(node_dir()), "/usr/local/bin", "/usr/bin", "/bin"]
        spec = AgentSpec(
            NAME,
            "claude",
            backend="tmux",
            prompt="write the files",
            workdir=self.work,
            secret_env=("ANTHROPIC_API_KEY",),
            permissions=PermissionMode.ASK,
            sandbox="none",
        )
        self.fleet = real_fleet(
            stores=fleet_stores(ledger),
            clock=clock,
            kit=LaunchKit(
                runtimes=default_registry(),
                backends={"tmux": self.backend},
                settings=FleetSettings(
                    state_dir=self.state,
                    reply_wait=0.1,
                    stop_grace=5.0,
                    provider_urls={"anthropic": self.fake.base_url},
                ),
                environ={
                    "PATH": ":".join(dict.fromkeys(path)),
                    "LANG": "C.UTF-8",
                    "ANTHROPIC_API_KEY": KEY,
                },
                doors=RunDoors(heartbeats=self.beats, approvals=self.approvals),
            ),
            roster={NAME: spec},
        )
        self.beats.take_asks(self.fleet.sessions.hook_asks.ask)
        await self.fleet.start()
        return self.fleet

    async def stop(self) -> None:
        """Fleetwarden's side stops; the agent runs on."""
        if self.fleet is not None:
            await self.fleet.stop()
        if self.beats is not None:
            await self.beats.stop()

    async def next_ask(self, seen: set[str]) -> ApprovalRequest:
        assert self.approvals is not None
        approvals = self.approvals

        async def fresh() -> ApprovalRequest | None:
            found = [r for r in await approvals.pending(NAME) if r.id not in seen]
            return found[0] if found else None

        request = await eventually(fresh, f"{NAME} asks")
        seen.add(request.id)
        return request


@pytest.fixture
async def claude_tui_rig(tmp_path: Path) -> AsyncIterator[Rig]:
    cli("claude")
    if shutil.which("tmux") is None:
        pytest.fail("tmux is not installed; run `bash tests/run.sh`, which installs it")
    work = tmp_path / "work"
    work.mkdir()
    async with FakeProvider(
        default=Turn(text="done"), accept=Accepted(api_keys=frozenset({KEY}))
    ) as fake:
        ledger = await Ledger.open(tmp_path / "ledger.db", SystemClock())
        backend = TmuxBackend(f"fw-tui-asks-{uuid.uuid4().hex[:8]}")
        claude_tui_rig = Rig(fake, ledger, backend, work, tmp_path / "state")
        await claude_tui_rig.start()
        try:
            yield claude_tui_rig
        finally:
            run = await ledger.runs.last_run(NAME)
            if run is not None and run.ended_at is None:
                kill_run_group(run.handle)
            await claude_tui_rig.stop()
            await backend.shutdown_server()
            await ledger.close()


async def test_a_tui_asks_through_its_hook_and_gets_each_answer(claude_tui_rig: Rig) -> None:
    """The TUI's Write is asked (tool, path) through the hook: allow writes the file; deny
    with a reason leaves the next one unwritten and the model is told the reason."""
    # The TUI also asks the model for a title, which takes one of the scripted turns:
    # three writes, of which the first two the agent makes are asked.
    files = [claude_tui_rig.work / f"file-{n}.txt" for n in range(3)]
    claude_tui_rig.fake.add(*(write(path, f"{path.name}\n") for path in files))
    assert claude_tui_rig.fleet is not None and claude_tui_rig.approvals is not None
    await claude_tui_rig.fleet.spawn(LaunchRequest(NAME, collect=False))
    seen: set[str] = set()
    first = await claude_tui_rig.next_ask(seen)
    assert (first.tool, first.channel) == ("Write", "hook")
    allowed = Path(first.subject)
    assert allowed in files and f"{allowed.name}" in first.detail

    async def waiting() -> bool:  # recorded just after the request is opened
        return (await claude_tui_rig.ledger.heartbeats.last_heartbeats())[NAME][1] == "waiting"

    await eventually(waiting, "the agent seen waiting on its ask")
    await claude_tui_rig.approvals.answer(
        first.id, by="ann", decision=Decision.ALLOW, how="reaction"
    )

    async def written() -> bool:
        return content(allowed) is not None

    await eventually(written, "the allowed file written")
    second = await claude_tui_rig.next_ask(seen)
    denied = Path(second.subject)
    assert denied in files and denied != allowed
    await claude_tui_rig.approvals.answer(
        second.id, by="ann", decision=Decision.DENY, how="reply", reason=REASON
    )

    async def told() -> bool:
        bodies = [str(r.body) for r in claude_tui_rig.fake.requests if r.method == "POST"]
        return any(REASON in body for body in bodies)

    await eventually(told, "the model told the reason")
    assert content(allowed) == f"{allowed.name}\n" and content(denied) is None
    done = await claude_tui_rig.approvals.get(second.id)
    assert done.delivered_at is not None


async def test_a_hook_ask_survives_a_restart_of_fleetwarden(claude_tui_rig: Rig) -> None:
    """Fleetwarden restarts while the TUI's hook waits: the hook asks again, finds the same
    request (not a second one), and the answer given after the restart reaches the TUI."""
    files = [claude_tui_rig.work / f"late-{n}.txt" for n in range(2)]
    claude_tui_rig.fake.add(*(write(path, "late\n") for path in files))
    assert claude_tui_rig.fleet is not None
    await claude_tui_rig.fleet.spawn(LaunchRequest(NAME, collect=False))
    request = await claude_tui_rig.next_ask(set())
    await claude_tui_rig.stop()
    await claude_tui_rig.start()
    assert claude_tui_rig.approvals is not None
    approvals = claude_tui_rig.approvals

    async def asked_again() -> bool:  # the hook's retry is held by the new endpoint
        assert claude_tui_rig.beats is not None
        return claude_tui_rig.beats.admission.in_flight(NAME) > 0

    await eventually(asked_again, "the hook asking the restarted Fleetwarden")
    (still,) = await approvals.pending(NAME)
    assert still.id == request.id
    await approvals.answer(request.id, by="ann", decision=Decision.ALLOW, how="command")
    target = Path(request.subject)

    async def written() -> bool:
        return content(target) == "late\n"

    await eventually(written, "the file written after the restart")

"""Codex's TUI in tmux asks through its blocking ``PreToolUse`` hook: the real pinned CLI
against the fake provider, the real tmux backend, the real heartbeat endpoint taking the
hook's ask and the approvals service holding it until answered as the chat would."""

from __future__ import annotations

import json
import shutil
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from aiohttp import web

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
from tests.fakes.provider.server import Accepted, FakeProvider, ToolCall, Turn
from tests.fakes.provider.sse import Api, Json
from tests.integration.console_bot import kill_run_group
from tests.integration.runtimes.test_claude_sessions import eventually
from tests.integration.runtimes.test_codex_tui_heartbeats import MODEL
from tests.integration.runtimes.test_real_clis import bin_dir, cli, node_dir

pytestmark = [pytest.mark.integration, pytest.mark.agent_cli]

NAME = AgentName("cxtui")
KEY = "fake-codex-tui-asks-key-0123456789"
REASON = "not in this folder"
TITLE_ASK = "Do not answer the request."  # in Codex's TUI's request for a title


class TitledProvider(FakeProvider):
    """The fake provider, answering the TUI's side request for a thread title (made while
    its first turn runs) apart from the script, so the script's turns stay in order."""

    async def _answer(self, request: web.Request, api: Api, body: Json) -> web.StreamResponse:
        if TITLE_ASK in json.dumps(body.get("input")):
            self.script.appendleft(Turn(text="Make the files"))
        return await super()._answer(request, api, body)


def touch(name: str) -> Turn:
    return Turn(text="", tool=ToolCall("exec_command", {"cmd": f"touch {name}"}))


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

    async def start(self) -> None:
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
            "codex",
            backend="tmux",
            model=MODEL,
            prompt="make the files",
            workdir=self.work,
            secret_env=("OPENAI_API_KEY",),
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
                    provider_urls={"openai": self.fake.base_url},
                ),
                environ={
                    "PATH": ":".join(dict.fromkeys(path)),
                    "LANG": "C.UTF-8",
                    "OPENAI_API_KEY": KEY,
                    # Codex sets up its own sandbox's helpers in CODEX_HOME, unless that lies
                    # under the temporary directory (as a test's state dir does).
                    "TMPDIR": str(self.state.parent / "agent-tmp"),
                },
                doors=RunDoors(heartbeats=self.beats, approvals=self.approvals),
            ),
            roster={NAME: spec},
        )
        self.beats.take_asks(self.fleet.sessions.hook_asks.ask)
        await self.fleet.start()

    async def stop(self) -> None:
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

        try:
            request = await eventually(fresh, f"{NAME} asks")
        except AssertionError:
            assert self.fleet is not None
            screen = await self.fleet.snapshot(NAME)
            raise AssertionError(f"no ask; the screen:\n{screen}") from None
        seen.add(request.id)
        return request


@pytest.fixture
async def codex_tui_rig(tmp_path: Path) -> AsyncIterator[Rig]:
    cli("codex")
    if shutil.which("tmux") is None:
        pytest.fail("tmux is not installed; run `bash tests/run.sh`, which installs it")
    work = tmp_path / "work"
    work.mkdir()
    (tmp_path / "agent-tmp").mkdir()
    patch = "*** Begin Patch\n*** Add File: hello.txt\n+hello\n*** End Patch\n"
    edit = Turn(text="", tool=ToolCall("apply_patch", freeform=patch))
    turns = (touch("allowed.txt"), edit, touch("denied.txt"), Turn(text="done"))
    accept = Accepted(api_keys=frozenset({KEY}))
    async with TitledProvider(
        *turns, default=Turn(text="(done)"), models=(MODEL,), accept=accept
    ) as fake:
        ledger = await Ledger.open(tmp_path / "ledger.db", SystemClock())
        backend = TmuxBackend(f"fw-codex-tui-asks-{uuid.uuid4().hex[:8]}")
        codex_tui_rig = Rig(fake, ledger, backend, work, tmp_path / "state")
        await codex_tui_rig.start()
        try:
            yield codex_tui_rig
        finally:
            run = await ledger.runs.last_run(NAME)
            if run is not None and run.ended_at is None:
                kill_run_group(run.handle)
            await codex_tui_rig.stop()
            await backend.shutdown_server()
            await ledger.close()


async def test_codex_tui_asks_through_its_hook_and_gets_each_answer(codex_tui_rig: Rig) -> None:
    """With ``ask``, each call of Codex's TUI is asked through its hook in chat terms (Bash
    and the command line; an edit and its file): allow runs it; deny with a reason does
    not, and the model is told the reason."""
    assert codex_tui_rig.fleet is not None and codex_tui_rig.approvals is not None
    await codex_tui_rig.fleet.spawn(LaunchRequest(NAME, collect=False))
    seen: set[str] = set()
    first = await codex_tui_rig.next_ask(seen)
    assert (first.tool, first.subject, first.channel) == ("Bash", "touch allowed.txt", "hook")
    await codex_tui_rig.approvals.answer(
        first.id, by="ann", decision=Decision.ALLOW, how="reaction"
    )

    async def made() -> bool:
        return (codex_tui_rig.work / "allowed.txt").exists()

    await eventually(made, "the allowed command run")
    edit = await codex_tui_rig.next_ask(seen)
    assert (edit.tool, edit.subject) == ("fileChange", "hello.txt")
    assert "+hello" in edit.detail
    await codex_tui_rig.approvals.answer(edit.id, by="ann", decision=Decision.ALLOW, how="command")

    async def edited() -> bool:
        return (codex_tui_rig.work / "hello.txt").exists()

    await eventually(edited, "the allowed edit made")
    second = await codex_tui_rig.next_ask(seen)
    assert second.subject == "touch denied.txt"
    await codex_tui_rig.approvals.answer(
        second.id, by="ann", decision=Decision.DENY, how="reply", reason=REASON
    )

    async def told() -> bool:
        bodies = [str(r.body) for r in codex_tui_rig.fake.requests if r.method == "POST"]
        return any(REASON in body for body in bodies)

    await eventually(told, "the model told the reason")
    assert not (codex_tui_rig.work / "denied.txt").exists()

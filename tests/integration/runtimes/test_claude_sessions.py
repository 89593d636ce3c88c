"""Headless Claude Code as a live session, driven by the real Fleet: the real pinned CLI,
sandboxed (bubblewrap, egress locked) against the strict fake provider, its asks answered
through the approvals service as the chat would. One process per session: turns written to
its stdin in order, an interrupt that keeps it, asks that survive a restart of
Fleetwarden, and the permission modes mapped onto Claude Code's own."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, TypeVar

import pytest

from fleet.approvals.service import Approvals
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
from fleet.transcript.events import ToolFailed, Waiting
from tests import sandbox_need
from tests.fakes.doubles.launches import real_fleet
from tests.fakes.doubles.stores import fleet_stores
from tests.fakes.provider.server import Accepted, FakeProvider, ToolCall, Turn
from tests.integration.console_bot import kill_run_group
from tests.integration.runtimes.test_real_clis import bin_dir, cli, node_dir

pytestmark = [
    pytest.mark.integration,
    pytest.mark.agent_cli,
    sandbox_need.BWRAP,
]

NAME = AgentName("live")
KEY = "fake-session-key-0123456789abcdefghij"
DEADLINE = 60.0
T = TypeVar("T")


async def eventually(check: Callable[[], Awaitable[T | None]], what: str) -> T:
    """Poll ``check`` until it returns something truthy; fail saying ``what``."""
    deadline = time.monotonic() + DEADLINE
    delay = 0.02
    while True:
        found = await check()
        if found:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {DEADLINE} s: {what}")
        await asyncio.sleep(delay)
        delay = min(delay * 2, 0.2)


@dataclass
class Rig:
    fake: FakeProvider
    ledger: Ledger
    tmp: Path
    work: Path
    sandboxes: Sandboxes
    fleets: list[Fleet] = field(default_factory=list)
    approvals: Approvals | None = None

    async def fleet(self, spec: AgentSpec) -> Fleet:
        """A Fleet over this rig's state dir and ledger (a new one: a restart)."""
        self.approvals = Approvals(self.ledger.approvals, SystemClock())
        path = [str(bin_dir()), str(node_dir()), "/usr/local/bin", "/usr/bin", "/bin"]
        fleet = real_fleet(
            stores=fleet_stores(self.ledger),
            clock=SystemClock(),
            kit=LaunchKit(
                runtimes=default_registry(),
                backends={"subprocess": SubprocessBackend()},
                settings=FleetSettings(
                    state_dir=self.tmp / "state",
                    reply_wait=0.1,
                    stop_grace=5.0,
                    provider_urls={"anthropic": self.fake.base_url},
                ),
                environ={
                    "PATH": ":".join(dict.fromkeys(path)),
                    "LANG": "C.UTF-8",
                    "ANTHROPIC_API_KEY": KEY,
                },
                doors=RunDoors(approvals=self.approvals),
                place=RunPlace(sandboxes=self.sandboxes),
            ),
            roster={spec.name: spec},
        )
        await fleet.start()
        self.fleets.append(fleet)
        return fleet

    def spec(self, mode: PermissionMode, **kwargs: Any) -> AgentSpec:
        return AgentSpec(
            NAME,
            "claude",
            workdir=self.work,
            secret_env=("ANTHROPIC_API_KEY",),
            permissions=mode,
            egress="locked",
            **kwargs,
        )

    async def pending(self) -> ApprovalRequest:
        """The one open request of the agent, once there is one."""
        assert self.approvals is not None
        approvals = self.approvals

        async def one() -> ApprovalRequest | None:
            found = await approvals.pending(NAME)
            return found[0] if found else None

        return await eventually(one, f"{NAME} asks")

    async def ended(self) -> AgentState:
        async def done() -> AgentState | None:
            record = await self.ledger.agents.get_agent(NAME)
            return None if record is None or record.state.is_live else record.state

        return await eventually(done, f"{NAME}'s run ended")

    def log(self) -> str:
        return AgentPaths.of(self.tmp / "state", NAME).log.read_text()


@pytest.fixture
async def headless_rig(tmp_path: Path) -> AsyncIterator[Rig]:
    cli("claude")  # fails with "run bash tests/run.sh" when the CLIs are not installed
    work = tmp_path / "work"
    work.mkdir()
    async with FakeProvider(accept=Accepted(api_keys=frozenset({KEY}))) as fake:
        ledger = await Ledger.open(tmp_path / "ledger.db", SystemClock())
        sandboxes = Sandboxes(SandboxSettings(state_dir=tmp_path / "state", hidden=(tmp_path,)))
        assert await sandboxes.start() is None
        headless_rig = Rig(fake, ledger, tmp_path, work, sandboxes)
        try:
            yield headless_rig
        finally:
            run = await ledger.runs.last_run(NAME)
            if run is not None and run.ended_at is None:
                kill_run_group(run.handle)
            for fleet in headless_rig.fleets:
                await fleet.stop()
            await sandboxes.stop()
            await ledger.close()


def write(path: Path, content: str) -> Turn:
    return Turn(text="", tool=ToolCall("Write", {"file_path": str(path), "content": content}))


def bash(command: str) -> Turn:
    return Turn(text="", tool=ToolCall("Bash", {"command": command, "description": "run it"}))


def asked_messages(fake: FakeProvider, texts: tuple[str, ...]) -> list[str]:
    """Which of ``texts`` the provider saw as user messages, in the order it first saw them."""
    seen: list[str] = []
    for request in fake.requests:
        if request.method != "POST" or not isinstance(request.body, dict):
            continue
        for message in request.body.get("messages", []):
            if message.get("role") != "user":
                continue
            content = message.get("content")
            parts = (
                [content]
                if isinstance(content, str)
                else [str(p.get("text", "")) for p in content or [] if isinstance(p, dict)]
            )
            for text in texts:
                if text not in seen and any(part.strip() == text for part in parts):
                    seen.append(text)
    return seen


# -- ask ---------------------------------------------------------------------------------


async def test_ask_mode_asks_before_a_write_and_allow_writes_it(headless_rig: Rig) -> None:
    """In ``ask`` mode a Write is asked (tool, path, head of the content); allow writes it."""
    target = headless_rig.work / "approved.txt"
    headless_rig.fake.add(write(target, "hello\nworld\n"), Turn(text="written"))
    fleet = await headless_rig.fleet(headless_rig.spec(PermissionMode.ASK))
    await fleet.spawn(LaunchRequest(NAME, prompt="write the file", collect=False))
    request = await headless_rig.pending()
    assert (request.tool, request.subject, request.channel) == (
        "Write",
        str(target),
        "claude-stream",
    )
    assert "hello" in request.detail
    assert not target.exists()
    record = await headless_rig.ledger.agents.get_agent(NAME)
    assert record is not None and record.state.is_live
    beats = await headless_rig.ledger.heartbeats.last_heartbeats()
    assert beats[NAME][1] == "waiting"  # the watchdog sees it waiting, never stalled
    assert headless_rig.approvals is not None
    await headless_rig.approvals.answer(
        request.id, by="ann", decision=Decision.ALLOW, how="command"
    )
    assert await headless_rig.ended() is AgentState.EXITED
    assert target.read_text() == "hello\nworld\n"
    (done,) = await headless_rig.ledger.approvals.approvals_of_run(request.run_id)
    assert done.state is ApprovalState.ALLOWED and done.delivered_at is not None


async def test_a_denial_carries_its_reason_to_the_model_and_the_transcript(
    headless_rig: Rig,
) -> None:
    """Deny with a reason: nothing written; the model and the transcript see the reason."""
    target = headless_rig.work / "denied.txt"
    headless_rig.fake.add(write(target, "no\n"), Turn(text="ok, I will not"))
    fleet = await headless_rig.fleet(headless_rig.spec(PermissionMode.ASK))
    await fleet.spawn(LaunchRequest(NAME, prompt="write the file", collect=False))
    request = await headless_rig.pending()
    assert headless_rig.approvals is not None
    reason = "keep the tree clean"
    await headless_rig.approvals.answer(
        request.id, by="ann", decision=Decision.DENY, how="reply", reason=reason
    )
    assert await headless_rig.ended() is AgentState.EXITED
    assert not target.exists()
    events = (await fleet.outputs.transcript(NAME, 50)).events
    failed = [e for e in events if isinstance(e, ToolFailed)]
    assert failed and failed[0].tool == "Write" and reason in failed[0].error, events
    assert any(isinstance(e, Waiting) and "Write" in e.reason for e in events), events
    said_to_model = [str(r.body) for r in headless_rig.fake.requests if r.method == "POST"]
    assert any(reason in body for body in said_to_model)


async def test_an_unanswered_ask_is_denied_as_a_timeout(headless_rig: Rig) -> None:
    """Past ``approval_timeout`` the ask is denied by the session's own deadline, recorded
    as a timeout, and the agent goes on without the file."""
    target = headless_rig.work / "late.txt"
    headless_rig.fake.add(write(target, "late\n"), Turn(text="gave up"))
    fleet = await headless_rig.fleet(headless_rig.spec(PermissionMode.ASK, approval_timeout=0.5))
    await fleet.spawn(LaunchRequest(NAME, prompt="write the file", collect=False))
    request = await headless_rig.pending()
    assert headless_rig.approvals is not None
    async with asyncio.timeout(DEADLINE):  # nobody answers
        timed_out = await headless_rig.approvals.wait(request.id)
    assert timed_out.state is ApprovalState.TIMED_OUT and timed_out.how == "timeout"
    assert await headless_rig.ended() is AgentState.EXITED
    assert not target.exists()
    assert "denied as a timeout" in headless_rig.log()


# -- edits -------------------------------------------------------------------------------


async def test_edits_mode_passes_edits_asks_rm_and_allows_a_pattern(headless_rig: Rig) -> None:
    """``edits``: a write in the workdir passes unasked; ``rm`` is asked (denied here, the
    file stays); a command matching an ``allow:`` pattern runs unasked."""
    (headless_rig.work / "keep.txt").write_text("keep\n")
    made = headless_rig.work / "made.txt"
    headless_rig.fake.add(
        write(made, "made\n"),
        bash("rm -f keep.txt"),
        bash("echo allowed-by-pattern"),
        Turn(text="all done"),
    )
    spec = headless_rig.spec(PermissionMode.EDITS, allow=("Bash(echo allowed-by-pattern)",))
    fleet = await headless_rig.fleet(spec)
    await fleet.spawn(LaunchRequest(NAME, prompt="tidy up", collect=False))
    request = await headless_rig.pending()
    assert (request.tool, request.subject) == ("Bash", "rm -f keep.txt")
    assert request.pattern == "Bash(rm -f keep.txt)"
    assert made.read_text() == "made\n"  # the edit went through without asking
    assert headless_rig.approvals is not None
    await headless_rig.approvals.answer(request.id, by="ann", decision=Decision.DENY, how="command")
    assert await headless_rig.ended() is AgentState.EXITED
    assert (headless_rig.work / "keep.txt").exists()
    assert "allowed-by-pattern" in headless_rig.log()  # the command ran and printed
    assert [
        r.subject for r in await headless_rig.ledger.approvals.approvals_of_run(request.run_id)
    ] == ["rm -f keep.txt"]


async def test_always_teaches_the_agent_the_pattern(headless_rig: Rig) -> None:
    """``always`` allows the ask and every later one matching its pattern, at once."""
    for name in ("a.tmp", "b.tmp"):
        (headless_rig.work / name).write_text("x\n")
    headless_rig.fake.add(
        bash("rm -f a.tmp"), bash("rm -f a.tmp"), bash("rm -f b.tmp"), Turn(text="ok")
    )
    fleet = await headless_rig.fleet(headless_rig.spec(PermissionMode.EDITS))
    await fleet.spawn(LaunchRequest(NAME, prompt="clean", collect=False))
    first = await headless_rig.pending()
    assert headless_rig.approvals is not None
    await headless_rig.approvals.answer(
        first.id, by="ann", decision=Decision.ALWAYS, how="reaction"
    )

    async def third() -> ApprovalRequest | None:
        found = await headless_rig.ledger.approvals.approvals_of_run(first.run_id)
        return found[2] if len(found) == 3 and found[2].state.is_open else None

    # The same command again passes by the learned rule; another command asks.
    asked = await eventually(third, "the ask for another command")
    (_, again, _) = await headless_rig.ledger.approvals.approvals_of_run(first.run_id)
    assert (again.subject, again.how, again.state) == ("rm -f a.tmp", "rule", ApprovalState.ALLOWED)
    assert asked.subject == "rm -f b.tmp"
    await headless_rig.approvals.answer(asked.id, by="ann", decision=Decision.DENY, how="command")
    assert await headless_rig.ended() is AgentState.EXITED
    assert not (headless_rig.work / "a.tmp").exists() and (headless_rig.work / "b.tmp").exists()


async def test_full_mode_runs_everything_unasked_in_its_sandbox(headless_rig: Rig) -> None:
    """``full`` (sandboxed agents only): even ``rm`` runs without asking."""
    (headless_rig.work / "gone.txt").write_text("x\n")
    headless_rig.fake.add(bash("rm -f gone.txt"), Turn(text="removed"))
    fleet = await headless_rig.fleet(headless_rig.spec(PermissionMode.FULL))
    await fleet.spawn(LaunchRequest(NAME, prompt="remove it", collect=False))
    assert await headless_rig.ended() is AgentState.EXITED, headless_rig.log()
    assert not (headless_rig.work / "gone.txt").exists()
    run = await headless_rig.ledger.runs.last_run(NAME)
    assert run is not None and await headless_rig.ledger.approvals.approvals_of_run(run.id) == []


# -- live sessions -----------------------------------------------------------------------


async def test_sends_to_a_busy_agent_are_turns_of_one_process_in_order(headless_rig: Rig) -> None:
    """Two sends while the first turn runs wait their turn: all three are turns of the
    same process, in order; then the process ends its session by itself."""
    slow = Turn(text="first answer, slowly", delay_between_events=0.3)
    headless_rig.fake.add(slow, Turn(text="second answer"), Turn(text="third answer"))
    fleet = await headless_rig.fleet(headless_rig.spec(PermissionMode.EDITS))
    await fleet.spawn(LaunchRequest(NAME, prompt="turn one", collect=False))
    run = await headless_rig.ledger.runs.last_run(NAME)
    assert run is not None
    assert await fleet.send(NAME, "turn two") is None
    assert await fleet.send(NAME, "turn three") is None
    assert await headless_rig.ended() is AgentState.EXITED
    last = await headless_rig.ledger.runs.last_run(NAME)
    assert last is not None and last.id == run.id and last.exit_code == 0
    turns = ("turn one", "turn two", "turn three")
    assert asked_messages(headless_rig.fake, turns) == list(turns)
    log = headless_rig.log()
    assert log.index("first answer") < log.index("second answer") < log.index("third answer")
    assert log.count('"type":"result"') == 3


async def test_interrupt_ends_the_turn_and_keeps_the_agent(headless_rig: Rig) -> None:
    """``interrupt`` ends the turn in progress (its open ask withdrawn and closed); the
    process stays, waiting; the next ``send`` is a turn of that same process."""
    headless_rig.fake.add(bash("rm -rf build"), Turn(text="after the interrupt"))
    fleet = await headless_rig.fleet(headless_rig.spec(PermissionMode.EDITS))
    await fleet.spawn(LaunchRequest(NAME, prompt="clean", collect=False))
    request = await headless_rig.pending()
    run = await headless_rig.ledger.runs.last_run(NAME)
    assert run is not None
    said = await fleet.interrupt(NAME, by="ann")
    assert "interrupted" in said
    assert headless_rig.approvals is not None
    async with asyncio.timeout(DEADLINE):
        closed = await headless_rig.approvals.wait(request.id)
    assert closed.state is ApprovalState.CLOSED and "withdrew" in (closed.reason or "")

    async def waiting() -> bool:
        beats = await headless_rig.ledger.heartbeats.last_heartbeats()
        return (
            beats.get(NAME, (None, ""))[1] == "waiting" and '"type":"result"' in headless_rig.log()
        )

    await eventually(waiting, "the interrupted turn ended, the agent waiting")
    record = await headless_rig.ledger.agents.get_agent(NAME)
    assert record is not None and record.state.is_live
    await fleet.send(NAME, "go on")
    assert await headless_rig.ended() is AgentState.EXITED
    last = await headless_rig.ledger.runs.last_run(NAME)
    assert last is not None and last.id == run.id
    assert "after the interrupt" in headless_rig.log()


async def test_an_ask_survives_a_restart_and_its_answer_lets_the_agent_finish(
    headless_rig: Rig,
) -> None:
    """Fleetwarden restarted while an ask is open: the new one reattaches, the request can
    still be answered, and the agent finishes in the same process."""
    target = headless_rig.work / "after-restart.txt"
    headless_rig.fake.add(write(target, "made it\n"), Turn(text="finished"))
    spec = headless_rig.spec(PermissionMode.ASK)
    first = await headless_rig.fleet(spec)
    await first.spawn(LaunchRequest(NAME, prompt="write the file", collect=False))
    request = await headless_rig.pending()
    run = await headless_rig.ledger.runs.last_run(NAME)
    assert run is not None
    await first.stop()

    await headless_rig.fleet(spec)  # a new Fleet, a new approvals service: the restart
    assert headless_rig.approvals is not None
    (still,) = await headless_rig.approvals.pending(NAME)
    assert still.id == request.id  # read again, not asked again
    await headless_rig.approvals.answer(
        request.id, by="ann", decision=Decision.ALLOW, how="reaction"
    )
    assert await headless_rig.ended() is AgentState.EXITED
    assert target.read_text() == "made it\n"
    last = await headless_rig.ledger.runs.last_run(NAME)
    assert last is not None and last.id == run.id and last.exit_code == 0


async def test_a_cli_killed_while_asking_closes_the_request_saying_why(headless_rig: Rig) -> None:
    """The CLI dies while it asks: the request is closed with why; an answer is refused."""
    headless_rig.fake.add(write(headless_rig.work / "never.txt", "x\n"))
    fleet = await headless_rig.fleet(headless_rig.spec(PermissionMode.ASK))
    await fleet.spawn(LaunchRequest(NAME, prompt="write the file", collect=False))
    request = await headless_rig.pending()
    run = await headless_rig.ledger.runs.last_run(NAME)
    assert run is not None
    os.kill(run.handle.pid, signal.SIGKILL)
    assert await headless_rig.ended() is AgentState.FAILED
    assert headless_rig.approvals is not None
    async with asyncio.timeout(DEADLINE):
        closed = await headless_rig.approvals.wait(request.id)
    assert closed.state is ApprovalState.CLOSED
    assert "ended while asking" in (closed.reason or ""), closed.reason
    with pytest.raises(Exception, match="closed"):
        await headless_rig.approvals.answer(
            request.id, by="ann", decision=Decision.ALLOW, how="command"
        )


async def test_set_permissions_changes_the_mode_in_the_running_session(headless_rig: Rig) -> None:
    """``permissions NAME edits`` on a session started in ``ask``: changed in-band, so the
    next write passes unasked; ``full`` cannot change in-band and says so."""
    first, second = headless_rig.work / "one.txt", headless_rig.work / "two.txt"
    headless_rig.fake.add(write(first, "1\n"), write(second, "2\n"), Turn(text="both"))
    fleet = await headless_rig.fleet(headless_rig.spec(PermissionMode.ASK))
    await fleet.spawn(LaunchRequest(NAME, prompt="write two files", collect=False))
    request = await headless_rig.pending()
    said = await fleet.set_permissions(NAME, PermissionMode.EDITS, by="ann")
    assert "changed in its running session" in said
    assert "from its next run" in await fleet.set_permissions(NAME, PermissionMode.FULL, by="ann")
    assert headless_rig.approvals is not None
    await headless_rig.approvals.answer(
        request.id, by="ann", decision=Decision.ALLOW, how="command"
    )
    assert await headless_rig.ended() is AgentState.EXITED
    assert second.read_text() == "2\n"
    assert len(await headless_rig.ledger.approvals.approvals_of_run(request.run_id)) == 1
    assert (await fleet.spec(NAME)).permissions is PermissionMode.FULL
    assert replace(await fleet.spec(NAME), permissions=PermissionMode.ASK) == headless_rig.spec(
        PermissionMode.ASK
    )

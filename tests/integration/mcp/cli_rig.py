"""What the tests of the real agent CLIs behind the MCP door share: the door with the
token-protected ``my-tracker`` granted to ``coder``, asks on a real ledger's approvals,
Claude Code started as its runtime plans its live session and driven through one turn,
and the checks that a call asked at the door was withdrawn when the CLI gave up on it."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
from collections.abc import AsyncIterator, Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fleet.approvals.ask_door import AskTerms
from fleet.approvals.service import Approvals
from fleet.ledger import Ledger
from fleet.ledger.records.approvals import ApprovalRequest, ApprovalState
from fleet.mcp.asking import McpAsks
from fleet.mcp.hooks import Ask, Outcome
from fleet.mcp.model import HttpServer, McpGrant, McpServer
from fleet.model import PermissionMode
from fleet.timing.clock import SystemClock
from tests.integration.mcp.rig import CREDENTIAL_ENV, Door, HttpMcp, door_on_endpoint
from tests.integration.runtimes.test_real_clis import TIMEOUT
from tests.polling import eventually

AGENT = "coder"
SERVER = "my-tracker"  # a `-` in its name: Codex's namespace is mcp__my_tracker


@contextlib.asynccontextmanager
async def tracker_door(
    tmp_path: Path, http_mcp: HttpMcp, asks: Sequence[Ask] = ()
) -> AsyncIterator[Door]:
    """The door on a real heartbeat endpoint with the test server as :data:`SERVER`, its
    ``Authorization`` held in :data:`CREDENTIAL_ENV`, granted to :data:`AGENT`."""
    server = McpServer(
        SERVER, HttpServer(http_mcp.url, headers_env={"Authorization": CREDENTIAL_ENV})
    )
    grants = {AGENT: [McpGrant(SERVER)]}
    async with door_on_endpoint(tmp_path / "state", [server], grants, asks=asks) as opened:
        yield opened


@dataclass(frozen=True, slots=True)
class Asking:
    """Approvals on a real ledger, and the door's asks through them."""

    approvals: Approvals
    ask: McpAsks


@contextlib.asynccontextmanager
async def asking(tmp_path: Path) -> AsyncIterator[Asking]:
    """The door's asks on a real SQLite ledger in ``tmp_path``, every agent under ``ask``
    with one ask at a time that waits 600 s; the ledger closed when the block ends."""
    ledger = await Ledger.open(tmp_path / "ledger.db", SystemClock())
    approvals = Approvals(ledger.approvals, SystemClock())

    async def terms(agent: str) -> AskTerms:
        return AskTerms(1, 600.0, 5, None, (), (), PermissionMode.ASK)

    ask = McpAsks(approvals, terms, SystemClock())
    await ask.start()
    try:
        yield Asking(approvals, ask)
    finally:
        await ledger.close()


def closed(
    approvals: Approvals, request: ApprovalRequest
) -> Callable[[], Coroutine[Any, Any, bool]]:
    """Whether ``request`` is closed now (for :func:`tests.polling.eventually`)."""

    async def check() -> bool:
        ended = await approvals.get(request.id)
        return ended.state is ApprovalState.CLOSED

    return check


async def asked_then_withdrawn(approvals: Approvals, who: str) -> ApprovalRequest:
    """The one call :data:`AGENT` is asked about, once its ask was withdrawn when ``who``
    (the CLI) gave up on it."""
    [request] = await eventually(lambda: approvals.pending(AGENT), "the call asked", within=TIMEOUT)
    await eventually(closed(approvals, request), f"the ask withdrawn when {who}")
    return request


async def cancelled_at_the_door(approvals: Approvals, door: Door, request: ApprovalRequest) -> None:
    """``request`` was withdrawn, and its call audited cancelled: never relayed."""
    ended = await approvals.get(request.id)
    assert ended.how == "withdrawn", ended
    calls = [a for a in door.audits if a.method == "tools/call"]
    # cancelled at the door: never relayed to the server
    assert [(a.outcome, a.name) for a in calls] == [(Outcome.CANCELLED, "echo")]


async def gives_up(
    approvals: Approvals, door: Door, run: Coroutine[Any, Any, object], who: str
) -> None:
    """``run`` (a headless CLI's whole run) gives up on the call the door asks about: the ask
    is withdrawn, the run ends, and the call is audited cancelled, never relayed."""
    task = asyncio.create_task(run)
    try:
        request = await asked_then_withdrawn(approvals, f"{who} gave up")
        await asyncio.wait_for(task, TIMEOUT)
    finally:
        task.cancel()
    await cancelled_at_the_door(approvals, door, request)


@contextlib.asynccontextmanager
async def claude_session(
    argv: Sequence[str | Path], cwd: Path, env: Mapping[str, str], *, limit: int = 1 << 16
) -> AsyncIterator[asyncio.subprocess.Process]:
    """Claude Code's live session started with ``argv``, its stdin and stdout piped (lines up
    to ``limit`` bytes); its whole process group killed when the block ends."""
    proc = await asyncio.create_subprocess_exec(
        *map(str, argv),
        cwd=cwd,
        env=dict(env),
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
        start_new_session=True,
        limit=limit,
    )
    try:
        yield proc
    finally:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
        await proc.wait()


def say_go(proc: asyncio.subprocess.Process) -> None:
    """The operator's one turn, ``go``, written to the session."""
    assert proc.stdin is not None
    turn = {"type": "user", "message": {"role": "user", "content": "go"}}
    proc.stdin.write(json.dumps(turn).encode() + b"\n")


async def until_result(
    proc: asyncio.subprocess.Process,
    seen: Callable[[dict[str, Any]], None] = lambda event: None,
) -> dict[str, Any]:
    """The session's events, each given to ``seen``, up to its ``result`` (returned)."""
    assert proc.stdout is not None
    event: dict[str, Any] = {}
    while event.get("type") != "result":
        line = await proc.stdout.readline()
        assert line, "claude ended before its result"
        event = json.loads(line)
        seen(event)
    return event

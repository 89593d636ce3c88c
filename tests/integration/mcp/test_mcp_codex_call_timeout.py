"""The real Codex's own timeout on an MCP call (``tool_timeout_sec``): a call held at the door
while it is asked ends on Codex's side when that timeout passes, and the door withdraws the
ask, so a late yes runs nothing. Fleetwarden therefore sets it past the agent's approval
timeout (:func:`fleet.runtimes.mcp_launch.call_seconds`)."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import pytest

from fleet.approvals.ask_door import AskTerms
from fleet.approvals.service import Approvals
from fleet.clock import SystemClock
from fleet.ledger import Ledger
from fleet.ledger.records.approvals import ApprovalState
from fleet.mcp.asking import McpAsks
from fleet.mcp.hooks import Outcome
from fleet.mcp.model import HttpServer, McpGrant, McpServer
from fleet.model import PermissionMode
from fleet.runtimes.codex import CodexRuntime
from tests.fakes.provider import FakeProvider, ToolCall, Turn
from tests.integration.mcp.rig import CREDENTIAL_ENV, HttpMcp, door_on_endpoint
from tests.integration.mcp.test_mcp_launch_clis import AGENT, SERVER, agent, launched
from tests.integration.mcp.test_mcp_launch_clis import fake as fake  # fixtures
from tests.integration.mcp.test_mcp_launch_clis import skill_dir as skill_dir
from tests.integration.runtimes.test_real_clis import TIMEOUT, run_cli
from tests.polling import eventually

pytestmark = [pytest.mark.integration, pytest.mark.agent_cli]


async def test_codex_gives_up_on_a_call_asked_past_its_timeout_and_the_ask_is_withdrawn(
    fake: FakeProvider, http_mcp: HttpMcp, skill_dir: Path, tmp_path: Path
) -> None:
    """With tool_timeout_sec = 2 in the config.toml CodexRuntime writes, `codex exec` gives
    up on a call the door holds while asking, within seconds: the door withdraws the ask and
    audits the call cancelled (never relayed), and the run ends."""
    fake.add(
        Turn(text="", tool=ToolCall("echo", {"text": "too late"}, namespace="mcp__my_tracker"))
    )
    ledger = await Ledger.open(tmp_path / "ledger.db", SystemClock())
    approvals = Approvals(ledger.approvals, SystemClock())

    async def terms(name: str) -> AskTerms:
        return AskTerms(1, 600.0, 5, None, (), (), PermissionMode.ASK)

    ask = McpAsks(approvals, terms, SystemClock())
    await ask.start()
    server = McpServer(
        SERVER, HttpServer(http_mcp.url, headers_env={"Authorization": CREDENTIAL_ENV})
    )
    try:
        async with door_on_endpoint(
            tmp_path / "state", [server], {AGENT: [McpGrant(SERVER)]}, asks=[ask]
        ) as door:
            spec = agent("codex", skill_dir, sandbox="bwrap", model="gpt-5-codex")
            runtime = CodexRuntime()
            plan, ctx = launched(runtime, spec, door, tmp_path, {"openai": fake.base_url})
            config = ctx.home / ".codex" / "config.toml"
            text = config.read_text()
            assert "tool_timeout_sec = " in text
            config.write_text(re.sub(r"tool_timeout_sec = [0-9]+", "tool_timeout_sec = 2", text))
            run = asyncio.create_task(run_cli(runtime.headless_argv(spec), plan.cwd, plan.env))
            try:
                [request] = await eventually(
                    lambda: approvals.pending(AGENT), "the call asked", within=TIMEOUT
                )

                async def withdrawn() -> bool:
                    ended = await approvals.get(request.id)
                    return ended.state is ApprovalState.CLOSED

                await eventually(withdrawn, "the ask withdrawn when Codex gave up")
                await asyncio.wait_for(run, TIMEOUT)
            finally:
                run.cancel()
            ended = await approvals.get(request.id)
            assert ended.how == "withdrawn", ended
            calls = [a for a in door.audits if a.method == "tools/call"]
            # cancelled at the door: never relayed to the server
            assert [(a.outcome, a.name) for a in calls] == [(Outcome.CANCELLED, "echo")]
    finally:
        await ledger.close()

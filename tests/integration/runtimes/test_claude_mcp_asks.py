"""The real Claude Code's own ask for an MCP call, answered by Fleetwarden's ``claude-stream``
protocol as a run would be: for a server the agent is granted it is allowed at once (the
MCP door is the one that asks), so the call runs with nothing asked in chat; for a server
it is not granted it is asked, as any tool is."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from fleet.model import PermissionMode
from fleet.sessions.base import Asked, Effect, Write
from fleet.sessions.claude import ClaudeStream
from tests.fakes.mcp.recorder import McpRecorder
from tests.fakes.provider.server import FakeProvider
from tests.integration.runtimes.test_mcp_clis import (
    answered,
    echo,
    live_claude,
    server,
)
from tests.integration.runtimes.test_real_clis import TIMEOUT, cli_provider, home, work

__all__ = ["cli_provider", "home", "server", "work"]  # fixtures

pytestmark = [pytest.mark.integration, pytest.mark.agent_cli]


async def drive(
    proto: ClaudeStream, fake: FakeProvider, server: McpRecorder, home: Path, work: Path
) -> list[Effect]:
    """Claude Code launched as Fleetwarden runs a live session, its lines fed to ``proto``
    and ``proto``'s writes given to it, until the turn's result; the effects made, writes
    aside (nobody answers an ask: a turn that asks ends when Claude Code gives up)."""
    fake.add(echo("mcp__srv__echo"))
    made: list[Effect] = []

    async with live_claude(fake, server, home, work, limit=1 << 22) as proc:
        assert proc.stdin is not None and proc.stdout is not None

        async def apply(effects: object) -> None:
            assert isinstance(effects, list | tuple) and proc.stdin is not None
            for effect in effects:
                if isinstance(effect, Write):
                    proc.stdin.write(effect.line.encode() + b"\n")
                    await proc.stdin.drain()
                else:
                    made.append(effect)

        async with asyncio.timeout(TIMEOUT):
            await apply(proto.opening("go"))
            while not any(isinstance(e, Asked) for e in made):
                line = await proc.stdout.readline()
                if not line:
                    break
                text = line.decode()
                await apply(proto.feed(text))
                if '"type":"result"' in text.replace(" ", ""):
                    break
    return made


async def test_claudes_ask_for_a_granted_servers_tool_is_allowed_by_the_protocol(
    cli_provider: FakeProvider, server: McpRecorder, home: Path, work: Path
) -> None:
    """Claude Code asks ``can_use_tool`` for ``mcp__srv__echo``; the protocol, told the agent
    has ``srv``, allows it at once: nothing is asked in chat, the call reaches the server and
    its result the model."""
    proto = ClaudeStream(PermissionMode.ASK, servers=frozenset({"srv"}))
    made = await drive(proto, cli_provider, server, home, work)
    assert not any(isinstance(e, Asked) for e in made)
    [call] = server.calls
    assert call.arguments == {"text": "hello"} and answered(cli_provider)


async def test_claudes_ask_for_a_server_not_granted_is_asked_in_chat(
    cli_provider: FakeProvider, server: McpRecorder, home: Path, work: Path
) -> None:
    """For a server the agent is not granted, the same ask is asked like any tool: nothing
    runs until someone answers."""
    proto = ClaudeStream(PermissionMode.ASK, servers=frozenset({"other"}))
    made = await drive(proto, cli_provider, server, home, work)
    [asked] = [e for e in made if isinstance(e, Asked)]
    assert asked.ask.tool == "mcp__srv__echo" and server.calls == []

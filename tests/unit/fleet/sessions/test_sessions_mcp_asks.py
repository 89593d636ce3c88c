"""The CLIs' own asks about MCP calls, as measured in docs/mcp-clis.md: Claude Code's
``can_use_tool`` for ``mcp__srv__echo`` and Codex's ``mcpServer/elicitation/request``. For
a server the agent is granted they are answered yes at once (the MCP door asks, seeing the
call as relayed: never twice); for any other server they are asked (Claude) or declined
(Codex), never left unanswered."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from fleet.model import AgentSpec, McpGrant, PermissionMode
from fleet.names import AgentName
from fleet.sessions.base import Asked, Write
from fleet.sessions.claude import ClaudeStream
from fleet.sessions.codex import CodexAppServer
from fleet.sessions.protocols import protocol_for

ECHO_INPUT = {"text": "hello"}


def claude_asks(native: str, tool: str) -> str:
    request = {
        "subtype": "can_use_tool",
        "tool_name": tool,
        "display_name": "Echo",
        "input": ECHO_INPUT,
        "permission_suggestions": [
            {"type": "addRules", "rules": [{"toolName": tool}], "behavior": "allow"}
        ],
    }
    return json.dumps({"type": "control_request", "request_id": native, "request": request})


def elicitation(ident: int, server: str, kind: str = "mcp_tool_call") -> str:
    params = {
        "threadId": "th",
        "turnId": "tu",
        "serverName": server,
        "mode": "form",
        "message": f'Allow the {server} MCP server to run tool "echo"?',
        "requestedSchema": {"type": "object", "properties": {}},
        "_meta": {
            "codex_approval_kind": kind,
            "tool_name": "echo",
            "tool_params": ECHO_INPUT,
            "persist": ["session", "always"],
        },
    }
    return json.dumps({"method": "mcpServer/elicitation/request", "id": ident, "params": params})


def spec(runtime: str, mode: PermissionMode, *servers: str) -> AgentSpec:
    grants = tuple(McpGrant(server) for server in servers)
    return AgentSpec(AgentName("a1"), runtime=runtime, permissions=mode, mcp=grants)


@pytest.mark.parametrize(
    "mode", [PermissionMode.ASK, PermissionMode.EDITS, PermissionMode.READ_ONLY]
)
def test_claude_allows_a_granted_servers_tool_at_once(mode: PermissionMode) -> None:
    """Claude's ask for a granted server's tool is allowed with its input, in every mode
    that asks; nothing is asked in chat (the door asks)."""
    proto = protocol_for("claude-stream", spec("claude", mode, "srv"), Path("/w"))
    effects = proto.feed(claude_asks("req-1", "mcp__srv__echo"))
    assert not any(isinstance(e, Asked) for e in effects)
    [line] = [json.loads(e.line) for e in effects if isinstance(e, Write)]
    assert line == {
        "type": "control_response",
        "response": {
            "subtype": "success",
            "request_id": "req-1",
            "response": {"behavior": "allow", "updatedInput": ECHO_INPUT},
        },
    }
    assert proto.busy


@pytest.mark.parametrize("tool", ["mcp__other__echo", "mcp__srv2__echo", "mcp__srv", "Bash"])
def test_claude_asks_about_any_other_tool_as_before(tool: str) -> None:
    """A tool of a server not granted (a name merely starting alike too), or no MCP tool at
    all, is asked like any tool."""
    proto = ClaudeStream(PermissionMode.ASK, servers=frozenset({"srv"}))
    effects = proto.feed(claude_asks("req-1", tool))
    [asked] = [e for e in effects if isinstance(e, Asked)]
    assert asked.ask.tool == tool and not any(isinstance(e, Write) for e in effects)


def codex(*servers: str) -> CodexAppServer:
    proto = protocol_for(
        "codex-app-server", spec("codex", PermissionMode.ASK, *servers), Path("/w")
    )
    assert isinstance(proto, CodexAppServer)
    return proto


def answered(effects: object) -> list[dict[str, Any]]:
    assert isinstance(effects, list | tuple)
    return [json.loads(e.line) for e in effects if isinstance(e, Write)]


def test_codex_accepts_a_granted_servers_call_at_once() -> None:
    """Codex's elicitation for a call of a granted server's tool is accepted (an MCP
    elicitation result) under Codex's own id; nothing is asked in chat."""
    effects = codex("srv").feed(elicitation(4, "srv"))
    assert not any(isinstance(e, Asked) for e in effects)
    assert answered(effects) == [{"id": 4, "result": {"action": "accept", "content": {}}}]


def test_codex_declines_a_call_of_a_server_not_granted() -> None:
    """A server Fleetwarden did not give the agent: declined, never an error."""
    effects = codex("srv").feed(elicitation(5, "other"))
    assert answered(effects) == [{"id": 5, "result": {"action": "decline"}}]


def test_codex_other_elicitations_are_still_not_supported() -> None:
    """An elicitation that is not an MCP tool call's approval is answered as before."""
    [line] = answered(codex("srv").feed(elicitation(6, "srv", kind="something_else")))
    assert line["id"] == 6 and line["error"]["code"] == -32601

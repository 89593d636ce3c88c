"""The door speaks for the client (fleet.mcp.door.rules.handshake): an agent's capabilities are
never passed on, the server's requests of the client are answered by the door from the
config (roots) or refused, and the agent's roots change is dropped."""

from __future__ import annotations

from pathlib import Path

import pytest

from fleet.mcp.door.rules.handshake import answer_of, client_handshake, roots_of, server_handshake
from fleet.mcp.door.rules.methods import refusal
from fleet.mcp.model import HttpServer, McpServer, StdioServer
from fleet.mcp.wire import JSONRPCError, JSONRPCNotification, JSONRPCRequest, JSONRPCResponse


def _asked(method: str) -> JSONRPCRequest:
    return JSONRPCRequest(jsonrpc="2.0", id=7, method=method, params={})


def test_the_agents_capabilities_are_replaced_by_the_doors() -> None:
    """Roots, sampling, elicitation, tasks and experimental the agent declares are not
    passed on; the door offers roots (no listChanged) only where the config names folders."""
    agents = {
        "protocolVersion": "2025-06-18",
        "clientInfo": {"name": "x", "version": "1"},
        "capabilities": {
            "roots": {"listChanged": True},
            "sampling": {},
            "elicitation": {},
            "tasks": {},
            "experimental": {"x": {}},
        },
    }
    sent = client_handshake(agents, (Path("/srv/project"),))
    assert sent["capabilities"] == {"roots": {}}
    assert sent["clientInfo"] == agents["clientInfo"]
    assert sent["protocolVersion"] == "2025-06-18"
    assert client_handshake(agents, ())["capabilities"] == {}


def test_roots_are_the_folders_a_stdio_servers_arguments_name(tmp_path: Path) -> None:
    """A stdio server's roots are the directories its arguments name (a relative one
    against its cwd, symlinks resolved); a file, an option or a missing path is none; an
    HTTP server has none."""
    project = tmp_path / "project"
    project.mkdir()
    (tmp_path / "link").symlink_to(project)
    (tmp_path / "script.js").write_text("")
    server = McpServer(
        "files",
        StdioServer(
            "node",
            (str(tmp_path / "script.js"), "--flag", str(tmp_path / "link"), "project", "gone"),
            cwd=str(tmp_path),
        ),
    )
    assert roots_of(server) == (project,)
    assert roots_of(McpServer("web", HttpServer("http://127.0.0.1:9/mcp"))) == ()


def test_roots_list_is_answered_from_the_config() -> None:
    """The server's roots/list gets the config's folders as file URIs; with none, an error."""
    answer = answer_of(_asked("roots/list"), (Path("/srv/my project"),))
    assert isinstance(answer, JSONRPCResponse) and answer.id == 7
    assert answer.result == {"roots": [{"uri": "file:///srv/my%20project", "name": "my project"}]}
    refused = answer_of(_asked("roots/list"), ())
    assert isinstance(refused, JSONRPCError) and refused.error.code == -32601


@pytest.mark.parametrize(
    ("method", "words"),
    [
        ("sampling/createMessage", "no sampling"),
        ("elicitation/create", "no elicitation"),
        ("tasks/get", "no such request"),
        ("anything/else", "no such request"),
    ],
)
def test_a_servers_request_that_would_widen_it_is_refused(method: str, words: str) -> None:
    """Sampling, elicitation and any other request of the client are refused (-32601)."""
    answer = answer_of(_asked(method), (Path("/srv"),))
    assert isinstance(answer, JSONRPCError) and answer.error.code == -32601
    assert words in answer.error.message


def test_a_servers_ping_is_answered() -> None:
    """A server's ping of the client is answered empty by the door."""
    answer = answer_of(_asked("ping"), ())
    assert isinstance(answer, JSONRPCResponse) and answer.result == {}


def test_the_tasks_capability_is_taken_out_of_the_servers_answer() -> None:
    """The server's ``tasks`` capability is taken out of its initialize result, the rest kept."""
    result = {"capabilities": {"tasks": {}, "tools": {}}, "instructions": "hi"}
    assert server_handshake(result) == {"capabilities": {"tools": {}}, "instructions": "hi"}


def test_the_agents_roots_change_is_taken_not_refused() -> None:
    """``notifications/roots/list_changed`` is taken (the session drops it, never relays)."""
    message = JSONRPCNotification(jsonrpc="2.0", method="notifications/roots/list_changed")
    assert refusal(message) is None

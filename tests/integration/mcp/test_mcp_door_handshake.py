"""The door speaks for the client, in front of npm's real ``server-filesystem`` and
``server-everything`` over stdio, with the SDK's own client as the agent: the server is told
the config's folder as its roots by the door, and sees none of the capabilities the agent
declares (roots, sampling, elicitation), so it neither asks the agent nor offers the tools
that would; what it returns has every secret the app holds taken out; an argument's
completion is asked and audited as a call."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import httpx2
import pytest
from mcp.client.context import ClientRequestContext
from mcp.client.session import ClientSession
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPDeprecationWarning, MCPError
from mcp_types import (
    CreateMessageRequestParams,
    CreateMessageResult,
    ElicitRequestParams,
    ElicitResult,
    ErrorData,
    ListRootsResult,
    PromptReference,
    Root,
    TextContent,
)

from fleet.mcp.hooks import McpCall, Outcome, Verdict
from fleet.mcp.model import McpGrant, McpServer, StdioServer
from fleet.redaction.known import EnvSecrets
from fleet.redaction.redactor import Redactor
from tests.integration.mcp.rig import (
    door_on_endpoint,
    everything_bin,
    filesystem_bin,
    text_of,
)
from tests.polling import eventually

pytestmark = pytest.mark.integration

AGENT = "coder"
# Made up, in the shape of an Anthropic key (the redactor must know it), and joined here so
# that no line of the repository holds a key-shaped literal a secret scanner would flag.
PROVIDER_KEY = "-".join(("sk", "ant", "api03", "provider-key-held-by-the-app-9Xq2"))


class _Widening:
    """The agent's side of the handshake, as hostile as the SDK lets it be: it declares
    roots, sampling and elicitation, and would answer each with the whole disk or a yes."""

    def __init__(self) -> None:
        self.asked: list[str] = []

    async def roots(self, context: ClientRequestContext) -> ListRootsResult | ErrorData:
        self.asked.append("roots/list")
        return ListRootsResult(roots=[Root(uri="file:///", name="all")])  # type: ignore[arg-type]

    async def sampling(
        self, context: ClientRequestContext, params: CreateMessageRequestParams
    ) -> CreateMessageResult | ErrorData:
        self.asked.append("sampling/createMessage")
        return CreateMessageResult(
            role="assistant", content=TextContent(type="text", text="yes"), model="m"
        )

    async def elicitation(
        self, context: ClientRequestContext, params: ElicitRequestParams
    ) -> ElicitResult | ErrorData:
        self.asked.append("elicitation/create")
        return ElicitResult(action="accept", content={})


@contextlib.asynccontextmanager
async def _widening_client(
    url: str, token: str, widening: _Widening
) -> AsyncIterator[ClientSession]:
    """The SDK's client on ``url``, declaring roots, sampling and elicitation."""
    async with (
        httpx2.AsyncClient(headers={"Authorization": f"Bearer {token}"}) as http,
        streamable_http_client(url, http_client=http) as (read, write),
        ClientSession(
            read,
            write,
            list_roots_callback=widening.roots,
            sampling_callback=widening.sampling,
            elicitation_callback=widening.elicitation,
        ) as session,
    ):
        await session.initialize()
        yield session


async def test_the_filesystem_server_is_told_the_configs_folder_not_the_agents(
    tmp_path: Path,
) -> None:
    """server-filesystem given a project folder asks for roots (the door offers them) and is
    answered by the door with that folder; the agent declaring roots is never asked, and a
    0600 file beside the project stays out of reach."""
    project = tmp_path / "project"
    project.mkdir()
    (project / "notes.txt").write_text("in the project\n")
    beside = tmp_path / "beside.txt"
    beside.write_text("not in the project\n")
    beside.chmod(0o600)
    server = McpServer("files", StdioServer(filesystem_bin(), (str(project),)))
    widening = _Widening()
    errors = tmp_path / "server-errors.log"
    with errors.open("w") as errlog:
        async with (
            door_on_endpoint(
                tmp_path / "state", [server], {AGENT: [McpGrant("files")]}, errlog=errlog
            ) as door,
            _widening_client(door.url(AGENT, "files"), door.token(AGENT), widening) as session,
        ):
            told = "Updated allowed directories from MCP roots: 1 valid directories"
            await eventually(lambda: told in errors.read_text(), "roots told", within=30)
            with pytest.warns(MCPDeprecationWarning):  # roots are deprecated since 2026-07-28
                await session.send_roots_list_changed()  # taken by the door, never relayed
            allowed = text_of(await session.call_tool("list_allowed_directories", {}))
            inside = text_of(
                await session.call_tool("read_text_file", {"path": str(project / "notes.txt")})
            )
            outside = await session.call_tool("read_text_file", {"path": str(beside)})
    assert widening.asked == []
    assert allowed.splitlines()[1:] == [str(project.resolve())], allowed
    assert inside == "in the project\n"
    assert outside.is_error and "not in the project" not in text_of(outside)


async def test_the_server_sees_none_of_the_agents_capabilities(tmp_path: Path) -> None:
    """server-everything offers its roots, sampling and elicitation tools only to a client
    that declares them: through the door, whatever the agent declares, it offers none, and
    never asks the agent anything."""
    work = tmp_path / "every"
    work.mkdir()
    server = McpServer("every", StdioServer(everything_bin(), cwd=str(work)))
    widening = _Widening()
    async with (
        door_on_endpoint(tmp_path / "state", [server], {AGENT: [McpGrant("every")]}) as door,
        _widening_client(door.url(AGENT, "every"), door.token(AGENT), widening) as session,
    ):
        tools = {tool.name for tool in (await session.list_tools()).tools}
    assert "echo" in tools
    offered = {"get-roots-list", "trigger-sampling-request", "trigger-elicitation-request"}
    assert not offered & tools, offered & tools
    assert widening.asked == []


async def test_a_secret_the_app_holds_is_taken_out_of_what_is_relayed(tmp_path: Path) -> None:
    """A server that shows a value the app holds (a provider key in its environment) gives
    the agent its label, not the value, though it is not the server's own credential."""
    work = tmp_path / "every"
    work.mkdir()
    leaky = StdioServer(everything_bin(), env={"LEFT_OVER": PROVIDER_KEY}, cwd=str(work))
    server = McpServer("every", leaky)
    app = Redactor([EnvSecrets(["ANTHROPIC_API_KEY"], {"ANTHROPIC_API_KEY": PROVIDER_KEY})])
    async with (
        door_on_endpoint(
            tmp_path / "state", [server], {AGENT: [McpGrant("every")]}, redactor=app
        ) as door,
        _widening_client(door.url(AGENT, "every"), door.token(AGENT), _Widening()) as session,
    ):
        env = text_of(await session.call_tool("get-env", {}))
    assert PROVIDER_KEY not in env
    assert '"LEFT_OVER": "[redacted: ANTHROPIC_API_KEY]"' in env, env


async def test_a_completion_is_asked_and_audited(tmp_path: Path) -> None:
    """completion/complete is asked before it reaches the server (denied: the server never
    completes, the agent is told why) and audited either way, named by its prompt."""
    work = tmp_path / "every"
    work.mkdir()
    server = McpServer("every", StdioServer(everything_bin(), cwd=str(work)))
    asked: list[McpCall] = []

    async def ask(call: McpCall) -> Verdict:
        asked.append(call)
        return Verdict(call.arguments.get("argument", {}).get("value") == "Eng", "as a test")

    ref = PromptReference(type="ref/prompt", name="completable-prompt")
    async with (
        door_on_endpoint(
            tmp_path / "state", [server], {AGENT: [McpGrant("every")]}, asks=[ask]
        ) as door,
        _widening_client(door.url(AGENT, "every"), door.token(AGENT), _Widening()) as session,
    ):
        allowed = await session.complete(ref, {"name": "department", "value": "Eng"})
        with pytest.raises(MCPError) as denied:
            await session.complete(ref, {"name": "department", "value": "S"})
        await eventually(lambda: len(door.audits) == 2, "two audits", within=10)
    assert allowed.completion.values == ["Engineering"]
    assert "denied: as a test" in denied.value.message
    assert [(c.method, c.tool) for c in asked] == [
        ("completion/complete", "completable-prompt")
    ] * 2
    assert asked[0].arguments["ref"] == {"type": "ref/prompt", "name": "completable-prompt"}
    rows = [(a.method, a.name, a.outcome) for a in door.audits]
    assert rows == [
        ("completion/complete", "completable-prompt", Outcome.OK),
        ("completion/complete", "completable-prompt", Outcome.DENIED),
    ]
    assert "Engineering" in door.audits[0].result

"""The MCP door in front of a real MCP server (the SDK's, on loopback) protected by a real
OAuth token endpoint: Fleetwarden gets the access token with the client credentials it
holds (from the configured endpoint, or one found from the server's metadata), keeps it
for every session until it expires or is refused, then gets another; the server sees the
issued token; the agent never sees the token nor the client secret, in no answer, error
or log line; a wrong secret fails the session with Fleetwarden's words, in the log."""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import aiohttp
import httpx2
import pytest
from mcp.client.session import ClientSession
from mcp.client.streamable_http import streamable_http_client
from mcp_types import TextContent

from bot.app.assembly import redactor
from bot.app.logs import RedactSecrets
from bot.config import parse_config
from fleet.mcp.model import McpGrant, McpServer
from tests.integration.mcp.oauth_rig import CLIENT_SECRET, HELD, ID_ENV, SECRET_ENV, OAuthMcp
from tests.integration.mcp.rig import Door, door_on_endpoint
from tests.polling import eventually

pytestmark = pytest.mark.integration

AGENT = "coder"
Start = Callable[..., OAuthMcp]


@contextlib.asynccontextmanager
async def the_door(
    tmp_path: Path, server: McpServer, environ: dict[str, str] | None = None
) -> AsyncIterator[Door]:
    grants = {AGENT: [McpGrant(server.name, frozenset({"echo", "whoami"}))]}
    async with door_on_endpoint(
        tmp_path / "state", [server], grants, environ=HELD if environ is None else environ
    ) as door:
        yield door


@contextlib.asynccontextmanager
async def agent(door: Door) -> AsyncIterator[ClientSession]:
    """The agent's MCP client (the SDK's) at its door, with its run's token."""
    token = door.token(AGENT)
    async with (
        httpx2.AsyncClient(headers={"Authorization": f"Bearer {token}"}) as http,
        streamable_http_client(door.url(AGENT, "tracker"), http_client=http) as (read, write),
        ClientSession(read, write) as session,
    ):
        await session.initialize()
        yield session


async def initialize_refused(door: Door) -> str:
    """The agent's initialize, refused 502 with no session left: the error's words."""
    message = {"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {}}
    headers = {"Authorization": f"Bearer {door.token(AGENT)}", "Accept": "application/json"}
    async with (
        aiohttp.ClientSession() as http,
        http.post(door.url(AGENT, "tracker"), json=message, headers=headers) as answer,
    ):
        assert answer.status == 502
        said: str = json.loads(await answer.text())["error"]["message"]
    assert door.door.sessions() == []
    return said


def text_of(result: object) -> str:
    content = getattr(result, "content", [])
    return "".join(c.text for c in content if isinstance(c, TextContent))


async def test_the_server_sees_the_issued_token_and_the_agent_never_does(
    tmp_path: Path, oauth_mcp: Start, caplog: pytest.LogCaptureFixture
) -> None:
    """Every request reaches the server with the one token issued (shared by two
    sessions); the tool echoing it gives the agent a label; neither the token nor the
    client secret is in any answer, audit or log line as the app's logs write it."""
    caplog.set_level(logging.DEBUG)
    mcp = oauth_mcp()
    config = parse_config(
        f"mcp:\n  tracker:\n    url: {mcp.url}\n    oauth:\n      token_url: {mcp.token_url}\n"
        f"      client_id_env: {ID_ENV}\n      client_secret_env: {SECRET_ENV}\n",
        "fleetwarden.yaml",
        base_dir=tmp_path,
    )
    logs = RedactSecrets(redactor(config, HELD))
    said: list[str] = []
    async with the_door(tmp_path, config.mcp["tracker"]) as door:
        for _ in range(2):
            async with agent(door) as session:
                said.append((await session.list_tools()).model_dump_json())
                said.append(text_of(await session.call_tool("echo", {"text": "hi"})))
                said.append(text_of(await session.call_tool("whoami", {})))
        audits = await eventually(lambda: len(door.audits) == 4 and door.audits, "4 calls")
    [token] = mcp.issued()
    assert set(mcp.authorizations()) == {f"Bearer {token}"}
    assert said[1] == "hi"
    assert said[2] == "you sent Authorization: Bearer [redacted: MCP OAuth token of tracker]"
    logged = [r.getMessage() for r in caplog.records if logs.filter(r)]
    reach = [*said, *(json.dumps(a.result) + a.arguments for a in audits), *logged]
    for text in reach:
        assert token not in text and CLIENT_SECRET not in text


async def test_the_token_endpoint_is_found_from_the_servers_metadata(
    tmp_path: Path, oauth_mcp: Start
) -> None:
    """With no token_url, the endpoint named by the metadata of the authorization server
    the server's protected-resource metadata names is asked, and its token sent."""
    mcp = oauth_mcp()
    async with the_door(tmp_path, mcp.server(discover=True)) as door, agent(door) as session:
        assert text_of(await session.call_tool("echo", {"text": "found"})) == "found"
    [token] = mcp.issued()
    assert set(mcp.authorizations()) == {f"Bearer {token}"}


async def test_an_expired_token_is_renewed_before_the_server_refuses_it(
    tmp_path: Path, oauth_mcp: Start
) -> None:
    """Tokens good for a second: a call past one's end goes with a new token, got before
    the server would refuse the old; every call is answered."""
    mcp = oauth_mcp(seconds=1)
    async with the_door(tmp_path, mcp.server()) as door, agent(door) as session:

        async def renewed() -> bool:
            assert text_of(await session.call_tool("echo", {"text": "on"})) == "on"
            return len(mcp.issued()) >= 2

        await eventually(renewed, "a second token got as the first expired")
    first, second, *_ = mcp.issued()
    seen = mcp.authorizations()
    assert seen.index(f"Bearer {second}") > seen.index(f"Bearer {first}")
    assert set(seen) <= {f"Bearer {t}" for t in mcp.issued()}


async def test_a_token_the_server_refuses_is_renewed_and_the_call_answered(
    tmp_path: Path, oauth_mcp: Start
) -> None:
    """The server forgets its tokens: the next call is refused 401 upstream, a new token is
    got and the call sent again with it, answered; the agent sees only the answer."""
    mcp = oauth_mcp()
    async with the_door(tmp_path, mcp.server()) as door, agent(door) as session:
        assert text_of(await session.call_tool("echo", {"text": "one"})) == "one"
        await mcp.revoke()
        assert text_of(await session.call_tool("echo", {"text": "two"})) == "two"
    first, second = mcp.issued()
    seen = mcp.authorizations()
    renewed = seen.index(f"Bearer {second}")
    assert f"Bearer {first}" in seen[:renewed]
    assert set(seen[renewed:]) == {f"Bearer {second}"}


async def test_a_wrong_secret_fails_the_session_with_fleetwardens_words(
    tmp_path: Path, oauth_mcp: Start, caplog: pytest.LogCaptureFixture
) -> None:
    """A client secret the token endpoint refuses: the agent's initialize is refused 502
    naming the server and that its credential is missing or refused, nothing more; the
    log says the endpoint refused the client credentials (HTTP 401, invalid_client) and
    which variables to check, never the secret; the MCP server is never sent a request."""
    caplog.set_level(logging.DEBUG)
    mcp = oauth_mcp()
    wrong = {ID_ENV: HELD[ID_ENV], SECRET_ENV: "not-the-secret-Qx81"}
    async with the_door(tmp_path, mcp.server(), wrong) as door:
        said = await initialize_refused(door)
    assert said == "the credential for MCP server tracker is missing or refused"
    assert (
        f"MCP server tracker got no OAuth token: its token endpoint {mcp.base} refused "
        "Fleetwarden's client credentials (HTTP 401, invalid_client). Check "
        f"{ID_ENV} and {SECRET_ENV} in Fleetwarden's environment, and mcp.tracker.oauth"
    ) in caplog.text
    assert "not-the-secret" not in caplog.text and "not-the-secret" not in said
    assert mcp.issued() == [] and mcp.authorizations() == []


async def test_a_plain_http_endpoint_off_loopback_is_never_sent_the_secret(
    tmp_path: Path, oauth_mcp: Start, caplog: pytest.LogCaptureFixture
) -> None:
    """Metadata naming a plain-http token endpoint on another host: the session fails
    before the secret is sent anywhere, the log saying to give an https token_url."""
    mcp = oauth_mcp(advertised="http://auth.example.com/oauth/token")
    async with the_door(tmp_path, mcp.server(discover=True)) as door:
        assert (
            await initialize_refused(door)
            == "the credential for MCP server tracker is missing or refused"
        )
    assert (
        "MCP server tracker got no OAuth token: its token endpoint http://auth.example.com is "
        "not an https:// address, and the client secret never crosses the network "
        "unencrypted: give mcp.tracker.oauth.token_url as https://…"
    ) in caplog.text
    assert mcp.issued() == [] and mcp.authorizations() == []


@pytest.mark.parametrize("where", ["another-port", "another-host"])
async def test_metadata_naming_a_token_endpoint_off_the_servers_origin_is_refused(
    tmp_path: Path, oauth_mcp: Start, caplog: pytest.LogCaptureFixture, where: str
) -> None:
    """Without token_url, metadata naming a token endpoint off the server's own origin (a
    token endpoint on another loopback port that takes the same client, or the server's
    own by another host name): the session fails before the secret is sent anywhere, the
    log telling the operator to pin token_url."""
    started: list[OAuthMcp] = []
    if where == "another-port":
        started.append(oauth_mcp())
        mcp = oauth_mcp(advertised=started[0].token_url)
        shown = started[0].base
    else:
        mcp = oauth_mcp(advertised="http://localhost:{port}/oauth/token")
        shown = mcp.base.replace("127.0.0.1", "localhost")
    started.append(mcp)
    async with the_door(tmp_path, mcp.server(discover=True)) as door:
        assert (
            await initialize_refused(door)
            == "the credential for MCP server tracker is missing or refused"
        )
    assert (
        f"MCP server tracker got no OAuth token: its metadata names the token endpoint "
        f"{shown}, not on the server's own origin {mcp.base}"
    ) in caplog.text
    assert "give mcp.tracker.oauth.token_url" in caplog.text
    assert all(server.issued() == [] for server in started) and mcp.authorizations() == []

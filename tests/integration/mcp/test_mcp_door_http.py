"""The MCP door on the real heartbeat endpoint in front of a real token-protected MCP server
(the SDK's, over streamable HTTP on loopback), reached by the SDK's own MCP client and by
plain HTTP as a ``command`` agent would: the server sees the held credential and never the
agent's token, the agent sees its allowed tools only and never the credential, a tool not
allowed is refused at the door, a hanging server is timed out, and every call is audited."""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from mcp.shared.exceptions import MCPError

from fleet.mcp.door import routes
from fleet.mcp.hooks import McpCall, Outcome, Verdict
from fleet.mcp.model import HttpServer, McpGrant, McpServer
from tests.integration.mcp.rig import (
    CREDENTIAL,
    CREDENTIAL_ENV,
    Door,
    HttpMcp,
    door_on_endpoint,
    sdk_client,
    text_of,
)
from tests.polling import eventually

pytestmark = pytest.mark.integration

AGENT = "coder"
OTHER = "reviewer"
ALLOWED = frozenset({"echo", "add", "whoami", "hang", "huge", "count", "announce"})


def tracker(mcp: HttpMcp, timeout: float = 30.0) -> McpServer:
    return McpServer(
        "tracker",
        HttpServer(mcp.url, headers_env={"Authorization": CREDENTIAL_ENV}),
        timeout=timeout,
    )


@contextlib.asynccontextmanager
async def the_door(tmp_path: Path, mcp: HttpMcp, **options: object) -> AsyncIterator[Door]:
    """The door with ``tracker`` granted to :data:`AGENT` (its tools :data:`ALLOWED`) and
    to no one else."""
    timeout = options.pop("timeout", 30.0)
    assert isinstance(timeout, float)
    grants = {AGENT: [McpGrant("tracker", ALLOWED)], OTHER: []}
    async with door_on_endpoint(
        tmp_path / "state",
        [tracker(mcp, timeout)],
        grants,
        **options,  # type: ignore[arg-type]
    ) as door:
        yield door


async def test_tools_listed_filtered_and_called_with_the_held_credential(
    tmp_path: Path, http_mcp: HttpMcp
) -> None:
    """An agent lists only its allowed tools and calls one; the server got the held
    credential on every request, never the agent's token; the call is audited."""
    async with the_door(tmp_path, http_mcp) as door:
        token = door.token(AGENT)
        async with sdk_client(door.url(AGENT, "tracker"), token) as session:
            listed = await session.list_tools()
            result = await session.call_tool("add", {"a": 2, "b": 3})
        assert {tool.name for tool in listed.tools} == ALLOWED
        assert text_of(result) == "5"
        seen = http_mcp.authorizations()
        assert seen and set(seen) == {f"Bearer {CREDENTIAL}"}
        assert not any(token in line for line in http_mcp.record.read_text().splitlines())
        audit = await eventually(lambda: door.audits, "the call audited")
        assert [(a.agent, a.server, a.name, a.outcome) for a in audit] == [
            (AGENT, "tracker", "add", Outcome.OK)
        ]
        assert '"a": 2' in audit[0].arguments and audit[0].bytes_in > 0 < audit[0].bytes_out


async def test_a_tool_not_allowed_is_refused_at_the_door(tmp_path: Path, http_mcp: HttpMcp) -> None:
    """A call of a tool off the allow-list, asked for anyway, is an error naming it as
    not allowed; the server never runs it."""
    async with the_door(tmp_path, http_mcp) as door:
        async with sdk_client(door.url(AGENT, "tracker"), door.token(AGENT)) as session:
            with pytest.raises(MCPError) as refused:
                await session.call_tool("delete_all", {})
        assert "delete_all" in refused.value.message
        assert "not allowed" in refused.value.message
        assert not (http_mcp.record.parent / "deleted").exists()
        audit = await eventually(lambda: door.audits, "the refusal audited")
        assert audit[0].outcome is Outcome.REFUSED


async def test_a_call_in_the_guise_of_a_notification_is_refused(
    tmp_path: Path, http_mcp: HttpMcp
) -> None:
    """A tools/call without an id, or with an id that reads as none (true, 1.0, null),
    would be relayed as a notification (JSON-RPC runs it, its answer dropped), past the
    allow-list, the ask and the audit: it is refused, and the server never runs it."""
    async with the_door(tmp_path, http_mcp) as door, aiohttp.ClientSession() as http:
        post = Poster(http, door.url(AGENT, "tracker"), door.token(AGENT), bearer=False)
        await post.initialize()
        call = {"jsonrpc": "2.0", "method": "tools/call", "params": {"name": "delete_all"}}
        for disguise in ({}, {"id": True}, {"id": 1.0}, {"id": None}):
            async with http.post(post.url, json=call | disguise, headers=post.headers) as sent:
                assert sent.status == 400, await sent.text()
        assert not (http_mcp.record.parent / "deleted").exists()


async def test_a_wrong_token_or_a_server_not_granted_is_refused(
    tmp_path: Path, http_mcp: HttpMcp
) -> None:
    """A wrong token, or another agent's, is 401; a server the agent has no grant to is 404
    in the same words as one that does not exist; the server is never reached."""
    init = {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {}}
    async with the_door(tmp_path, http_mcp) as door, aiohttp.ClientSession() as http:
        other = door.token(OTHER)
        cases = [
            (door.url(AGENT, "tracker"), "not-the-token", 401),
            (door.url(AGENT, "tracker"), other, 401),
            (door.url(OTHER, "tracker"), other, 404),
            (door.url(OTHER, "nothing"), other, 404),
        ]
        bodies = []
        for url, token, status in cases:
            async with http.post(url, json=init, headers={"X-Fleetwarden-Token": token}) as answer:
                assert answer.status == status, url
                bodies.append(await answer.text())
        assert bodies[2] == bodies[3]
        assert "tracker" not in bodies[2]
    assert http_mcp.authorizations() == []


async def test_a_hanging_server_is_timed_out_without_holding_the_session(
    tmp_path: Path, http_mcp: HttpMcp
) -> None:
    """A call the server never answers is an error after the server's timeout; the same
    session still calls another tool."""
    async with the_door(tmp_path, http_mcp, timeout=1.0) as door:
        async with sdk_client(door.url(AGENT, "tracker"), door.token(AGENT)) as session:
            started = time.monotonic()
            with pytest.raises(MCPError) as timed_out:
                await session.call_tool("hang", {})
            took = time.monotonic() - started
            after = await session.call_tool("echo", {"text": "still here"})
        assert "did not answer tools/call within 1 s" in timed_out.value.message
        assert took < 10
        assert text_of(after) == "still here"
        audit = await eventually(lambda: len(door.audits) == 2 and door.audits, "both audited")
        assert [a.outcome for a in audit] == [Outcome.TIMEOUT, Outcome.OK]


async def test_the_credential_is_in_no_answer(tmp_path: Path, http_mcp: HttpMcp) -> None:
    """A server that echoes the credential it got gives the agent a label instead; no
    answer of the door (initialize, lists, results, errors) holds the credential."""
    async with the_door(tmp_path, http_mcp) as door, aiohttp.ClientSession() as http:
        url, token = door.url(AGENT, "tracker"), door.token(AGENT)
        post = Poster(http, url, token)
        await post.initialize()
        answers = [
            await post.call("tools/list", {}),
            await post.call("tools/call", {"name": "whoami", "arguments": {}}),
            await post.call("tools/call", {"name": "delete_all", "arguments": {}}),
            await post.call("tools/call", {"name": "nope", "arguments": {}}),
            await post.call("resources/read", {"uri": "note://today"}),
        ]
        for raw in [*post.raw, *map(json.dumps, answers)]:
            assert CREDENTIAL not in raw
        whoami = answers[1]["result"]["content"][0]["text"]
        assert whoami == f"you sent Authorization: [redacted: MCP credential {CREDENTIAL_ENV}]"
        assert answers[4]["result"]["contents"][0]["text"] == "the note of the day"


async def test_a_plain_http_client_calls_a_tool(tmp_path: Path, http_mcp: HttpMcp) -> None:
    """JSON-RPC posted as plain HTTP (a ``command`` agent): initialize gives a session,
    tools/call answers as JSON, DELETE ends the session and it is gone after."""
    async with the_door(tmp_path, http_mcp) as door, aiohttp.ClientSession() as http:
        post = Poster(http, door.url(AGENT, "tracker"), door.token(AGENT), bearer=False)
        await post.initialize()
        answer = await post.call("tools/call", {"name": "echo", "arguments": {"text": "hi"}})
        assert answer["result"]["content"][0]["text"] == "hi"
        assert len(door.door.sessions(AGENT)) == 1
        async with http.delete(post.url, headers=post.headers) as ended:
            assert ended.status == 204
        assert door.door.sessions(AGENT) == []
        assert "DELETE" in http_mcp.methods()  # the door ended its own session there
        gone = {"jsonrpc": "2.0", "id": 9, "method": "tools/list", "params": {}}
        async with http.post(post.url, json=gone, headers=post.headers) as answer_after:
            assert answer_after.status == 404


async def test_an_answer_come_first_is_sent_whole_to_a_client_taking_json(
    tmp_path: Path, http_mcp: HttpMcp, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A client taking JSON and event streams (as MCP's do) gets an answer that comes first
    as one JSON body; one taking event streams only (JSON refused with a weight of 0, or
    another type named that looks like it), or a call with progress first, gets an event
    stream, the answer last. (The door waits a second for an answer to come first; on a
    loaded machine the server's echo may take longer, which is no answer coming first: the
    wait is made long enough here that only the order decides.)"""
    monkeypatch.setattr(routes, "WHOLE_SECONDS", 60.0)
    async with the_door(tmp_path, http_mcp) as door, aiohttp.ClientSession() as http:
        post = Poster(http, door.url(AGENT, "tracker"), door.token(AGENT))
        await post.initialize()
        echo = {"name": "echo", "arguments": {"text": "hi"}}
        counted = {"name": "count", "arguments": {"to": 2}, "_meta": {"progressToken": "p"}}
        for n, (accept, params, kind) in enumerate(
            [
                ("application/json, text/event-stream", echo, "application/json"),
                ("text/event-stream", echo, "text/event-stream"),
                ("text/event-stream, application/json;q=0", echo, "text/event-stream"),
                ("text/event-stream, application/json-seq", echo, "text/event-stream"),
                ("text/event-stream, application/*;q=0.5", echo, "application/json"),
                ("application/json, text/event-stream", counted, "text/event-stream"),
            ]
        ):
            message = {"jsonrpc": "2.0", "id": 100 + n, "method": "tools/call", "params": params}
            headers = {**post.headers, "Accept": accept}
            async with http.post(post.url, json=message, headers=headers) as answer:
                assert answer.status == 200 and answer.content_type == kind
                if kind == "application/json":
                    said = [json.loads(await answer.read())]
                else:
                    said = [event async for event in events(answer)]
            assert said[-1]["id"] == 100 + n
            assert said[-1]["result"]["content"][0]["text"] in ("hi", "counted to 2")
            progress = [e for e in said if e.get("method") == "notifications/progress"]
            assert len(progress) == (2 if params is counted else 0)


async def test_progress_prompts_and_resources_are_relayed(
    tmp_path: Path, http_mcp: HttpMcp
) -> None:
    """The server's progress on a call reaches the agent's client; prompts and resources
    are relayed; the call and the prompt are audited, the listing is not."""
    progress: list[float] = []

    async def on_progress(done: float, total: float | None, message: str | None) -> None:
        progress.append(done)

    async with (
        the_door(tmp_path, http_mcp) as door,
        sdk_client(door.url(AGENT, "tracker"), door.token(AGENT)) as session,
    ):
        counted = await session.call_tool("count", {"to": 3}, progress_callback=on_progress)
        prompt = await session.get_prompt("greet", {"name": "Ana"})
        resources = await session.list_resources()
    assert text_of(counted) == "counted to 3"
    assert progress == [1, 2, 3]
    assert "Say hello to Ana." in json.dumps(prompt.model_dump())
    assert [str(r.uri) for r in resources.resources] == ["note://today"]
    audits = await eventually(lambda: len(door.audits) == 2 and door.audits, "both audited")
    assert [(a.method, a.name, a.outcome) for a in audits] == [
        ("tools/call", "count", Outcome.OK),
        ("prompts/get", "greet", Outcome.OK),
    ]
    assert "counted to 3" in audits[0].result


async def test_an_ask_that_denies_keeps_the_call_from_the_server(
    tmp_path: Path, http_mcp: HttpMcp
) -> None:
    """An ask hook that says no makes the call an error with its reason, audited denied; the
    ask saw the agent, server, tool and arguments."""
    asked: list[McpCall] = []

    async def ask(call: McpCall) -> Verdict:
        asked.append(call)
        return Verdict(False, "denied in chat by @ana")

    async with (
        the_door(tmp_path, http_mcp, asks=[ask]) as door,
        sdk_client(door.url(AGENT, "tracker"), door.token(AGENT)) as session,
    ):
        with pytest.raises(MCPError) as denied:
            await session.call_tool("echo", {"text": "hello"})
    assert "denied in chat by @ana" in denied.value.message
    assert asked == [McpCall(AGENT, "tracker", "echo", {"text": "hello"})]
    audit = await eventually(lambda: door.audits, "the denial audited")
    assert [a.outcome for a in audit] == [Outcome.DENIED]


async def test_a_calls_time_is_the_servers_not_the_asks(tmp_path: Path, http_mcp: HttpMcp) -> None:
    """A call allowed after a slow ask is audited with the time the server took, not the
    time a person took to answer (the thread's "ok in …s", the ledger, usage's latency)."""

    async def slow_yes(call: McpCall) -> Verdict:
        await asyncio.sleep(1.0)
        return Verdict(True, "")

    async with (
        the_door(tmp_path, http_mcp, asks=[slow_yes]) as door,
        sdk_client(door.url(AGENT, "tracker"), door.token(AGENT)) as session,
    ):
        assert text_of(await session.call_tool("echo", {"text": "hi"})) == "hi"
    audit = await eventually(lambda: door.audits, "the call audited")
    assert audit[0].outcome is Outcome.OK and audit[0].seconds < 0.9, audit[0].seconds


async def test_a_tool_no_rule_could_name_or_arguments_not_an_object_are_refused(
    tmp_path: Path, http_mcp: HttpMcp
) -> None:
    """A tool's name outside MCP's (a space, a zero-width space, 129 characters: no deny
    rule could name it) or arguments that are not an object (an ask would show them as
    ``{}``) are refused before any ask; the server never runs them."""
    asked: list[McpCall] = []

    async def ask(call: McpCall) -> Verdict:
        asked.append(call)
        return Verdict(True, "")

    async with the_door(tmp_path, http_mcp, asks=[ask]) as door, aiohttp.ClientSession() as http:
        post = Poster(http, door.url(AGENT, "tracker"), door.token(AGENT))
        await post.initialize()
        for params in (
            {"name": "delete all", "arguments": {}},
            {"name": "echo\u200b", "arguments": {}},
            {"name": "x" * 129, "arguments": {}},
            {"name": "echo", "arguments": ["hidden", "list"]},
        ):
            answer = await post.call("tools/call", params)
            assert "error" in answer, answer
    assert asked == []


async def test_an_answer_over_the_cap_is_not_relayed(tmp_path: Path, http_mcp: HttpMcp) -> None:
    """A result over a megabyte reaches the agent as an error, not as the result."""
    async with the_door(tmp_path, http_mcp) as door, aiohttp.ClientSession() as http:
        post = Poster(http, door.url(AGENT, "tracker"), door.token(AGENT))
        await post.initialize()
        answer = await post.call("tools/call", {"name": "huge", "arguments": {}})
        assert "error" in answer and len(post.raw[-1]) < 4096
        after = await post.call("tools/call", {"name": "echo", "arguments": {"text": "ok"}})
        assert after["result"]["content"][0]["text"] == "ok"


async def test_the_agents_sessions_end_with_its_run(tmp_path: Path, http_mcp: HttpMcp) -> None:
    """``end_agent`` ends the agent's sessions: the session id is refused after."""
    async with the_door(tmp_path, http_mcp) as door, aiohttp.ClientSession() as http:
        post = Poster(http, door.url(AGENT, "tracker"), door.token(AGENT))
        await post.initialize()
        await door.door.end_agent(AGENT)
        assert door.door.sessions() == []
        after = {"jsonrpc": "2.0", "id": 5, "method": "tools/list", "params": {}}
        async with http.post(post.url, json=after, headers=post.headers) as answer:
            assert answer.status == 404


async def test_what_no_answer_carries_comes_on_the_listening_stream(
    tmp_path: Path, http_mcp: HttpMcp
) -> None:
    """A log line the server sends during a call answered as JSON reaches the agent on its
    GET stream; a second GET takes over from the first, which ends."""
    async with the_door(tmp_path, http_mcp) as door, aiohttp.ClientSession() as http:
        post = Poster(http, door.url(AGENT, "tracker"), door.token(AGENT))
        await post.initialize()
        listen = {**post.headers, "Accept": "text/event-stream"}
        async with http.get(post.url, headers=listen) as first:
            assert first.status == 200
            async with http.get(post.url, headers=listen) as stream:
                assert stream.status == 200
                assert await first.content.read() == b""  # ended, nothing sent on it
                answer = await post.call("tools/call", {"name": "announce", "arguments": {}})
                assert answer["result"]["content"][0]["text"] == "done"
                event = await anext(events(stream))
        assert event["method"] == "notifications/message"
        assert event["params"]["data"] == "announced"


async def events(stream: aiohttp.ClientResponse) -> AsyncIterator[dict[str, object]]:
    """The JSON-RPC messages of an event stream, as they come."""
    async for line in stream.content:
        if line.startswith(b"data: "):
            found: dict[str, object] = json.loads(line[6:])
            yield found


async def test_a_server_refusing_the_credential_is_an_error(
    tmp_path: Path, http_mcp: HttpMcp
) -> None:
    """A server that refuses the held credential fails the agent's initialize with an
    error naming neither the credential nor the server's address; no session is left."""
    wrong = {CREDENTIAL_ENV: "Bearer not-the-credential-42"}
    async with (
        the_door(tmp_path, http_mcp, environ=wrong) as door,
        aiohttp.ClientSession() as http,
    ):
        refused = Poster(http, door.url(AGENT, "tracker"), door.token(AGENT))
        said = await refused.initialize_refused()
        assert door.door.sessions() == []
    assert http_mcp.authorizations() == ["Bearer not-the-credential-42"]
    assert "not-the-credential" not in said and "127.0.0.1" not in said


async def test_a_server_no_one_listens_for_is_said_plainly(tmp_path: Path) -> None:
    """A server whose port is closed fails initialize 502, naming the server only."""
    closed = HttpMcp("http://127.0.0.1:1/mcp", tmp_path / "unused")
    async with the_door(tmp_path, closed) as door, aiohttp.ClientSession() as http:
        unreachable = Poster(http, door.url(AGENT, "tracker"), door.token(AGENT))
        gone = await unreachable.initialize_refused(502)
        assert door.door.sessions() == []
    assert gone == "the MCP server tracker could not be reached"


async def test_an_agent_holds_a_few_sessions_the_oldest_ended_past_them(
    tmp_path: Path, http_mcp: HttpMcp
) -> None:
    """A fifth session of one agent with one server ends the one used least lately; that
    one's id is refused after, the others go on; sessions opened at once hold the cap too."""
    async with the_door(tmp_path, http_mcp) as door, aiohttp.ClientSession() as http:
        posters = [Poster(http, door.url(AGENT, "tracker"), door.token(AGENT)) for _ in range(5)]
        for poster in posters:
            await poster.initialize()
        assert len(door.door.sessions(AGENT)) == 4
        oldest = {"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}}
        async with http.post(posters[0].url, json=oldest, headers=posters[0].headers) as gone:
            assert gone.status == 404
        for poster in posters[1:]:
            assert "tools" in (await poster.call("tools/list", {}))["result"]  # type: ignore[operator]
        at_once = [Poster(http, door.url(AGENT, "tracker"), door.token(AGENT)) for _ in range(6)]
        await asyncio.gather(*(poster.initialize() for poster in at_once))
        assert len(door.door.sessions(AGENT)) == 4


async def test_a_body_over_the_cap_or_a_version_unknown_is_refused(
    tmp_path: Path, http_mcp: HttpMcp
) -> None:
    """A message over a megabyte is 413, an unknown MCP-Protocol-Version 400, each saying
    what was wrong; the session goes on."""
    async with the_door(tmp_path, http_mcp) as door, aiohttp.ClientSession() as http:
        post = Poster(http, door.url(AGENT, "tracker"), door.token(AGENT))
        await post.initialize()
        text = "x" * (1024 * 1024)
        call = {"name": "echo", "arguments": {"text": text}}
        big = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": call})
        posted = {**post.headers, "Content-Type": "application/json"}
        async with http.post(post.url, data=io.BytesIO(big.encode()), headers=posted) as answer:
            assert answer.status == 413
            assert "over 1048576 bytes" in await answer.text()
        odd = {**post.headers, "MCP-Protocol-Version": "1999-01-01"}
        ping = {"jsonrpc": "2.0", "id": 2, "method": "ping"}
        async with http.post(post.url, json=ping, headers=odd) as answer:
            assert answer.status == 400
            assert "MCP-Protocol-Version" in await answer.text()
        assert (await post.call("ping", {}))["result"] == {}


async def test_an_agent_holds_a_few_requests_at_once(tmp_path: Path, http_mcp: HttpMcp) -> None:
    """Past the agent's cap of requests at once at the door, one more is 429 saying why;
    once those end (timed out here), the next passes."""
    async with (
        the_door(tmp_path, http_mcp, timeout=2.0, max_in_flight=2) as door,
        aiohttp.ClientSession() as http,
    ):
        post = Poster(http, door.url(AGENT, "tracker"), door.token(AGENT))
        await post.initialize()
        hung = [
            asyncio.create_task(post.call("tools/call", {"name": "hang", "arguments": {}}))
            for _ in range(2)
        ]
        await eventually(lambda: door.door.in_flight(AGENT) == 2, "two calls in flight")
        ping = {"jsonrpc": "2.0", "id": 99, "method": "ping"}
        async with http.post(post.url, json=ping, headers=post.headers) as answer:
            assert answer.status == 429
            assert "over 2 MCP requests at once" in await answer.text()
        timed_out = await asyncio.gather(*hung)
        assert all("did not answer" in json.dumps(found) for found in timed_out)
        assert (await post.call("ping", {}))["result"] == {}


class Poster:
    """JSON-RPC over plain HTTP, as a script would post it (``Accept: application/json``),
    keeping each raw answer."""

    def __init__(
        self, http: aiohttp.ClientSession, url: str, token: str, *, bearer: bool = True
    ) -> None:
        self.http, self.url = http, url
        auth = {"Authorization": f"Bearer {token}"} if bearer else {"X-Fleetwarden-Token": token}
        self.headers = {**auth, "Accept": "application/json"}
        self.raw: list[str] = []
        self._id = 0

    async def initialize(self) -> None:
        params = {
            "protocolVersion": "2025-06-18",
            "capabilities": {},
            "clientInfo": {"name": "script", "version": "1"},
        }
        message = {"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": params}
        async with self.http.post(self.url, json=message, headers=self.headers) as answer:
            assert answer.status == 200, await answer.text()
            self.raw.append(await answer.text())
            self.headers["Mcp-Session-Id"] = answer.headers["Mcp-Session-Id"]
            self.headers["MCP-Protocol-Version"] = json.loads(self.raw[-1])["result"][
                "protocolVersion"
            ]
        done = {"jsonrpc": "2.0", "method": "notifications/initialized"}
        async with self.http.post(self.url, json=done, headers=self.headers) as answer:
            assert answer.status == 202

    async def initialize_refused(self, status: int = 200) -> str:
        """Initialize, refused: the error's words (no session was opened)."""
        message = {"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {}}
        async with self.http.post(self.url, json=message, headers=self.headers) as answer:
            assert answer.status == status, await answer.text()
            assert "Mcp-Session-Id" not in answer.headers
            said: str = json.loads(await answer.text())["error"]["message"]
        return said

    async def call(self, method: str, params: dict[str, object]) -> dict[str, object]:
        self._id += 1
        message = {"jsonrpc": "2.0", "id": self._id, "method": method, "params": params}
        async with self.http.post(self.url, json=message, headers=self.headers) as answer:
            assert answer.status == 200, await answer.text()
            assert answer.content_type == "application/json"
            self.raw.append(await answer.text())
        found: dict[str, object] = json.loads(self.raw[-1])
        return found

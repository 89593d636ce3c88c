"""Every method an agent sends through the MCP door is governed or refused, on the real
heartbeat endpoint in front of the SDK's real MCP server on loopback: reads and prompts are
asked and audited like tool calls, a method the door does not know (MCP's tasks among
them) is refused and never relayed, what an ask shows is exactly what is relayed, an
agent's grant is read live in its open sessions, a request id in use is refused, and a
priced server's calls are held against the run's cap before they are relayed and billed
whatever their end."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import aiohttp
import pytest

from fleet.budgets.runs.caps import CappedPolicy, RunCaps
from fleet.mcp.billing import PolicyBilling
from fleet.mcp.hooks import McpCall, Outcome, Verdict
from fleet.mcp.model import HttpServer, McpGrant, McpServer
from fleet.metering.policy import AllowAll
from fleet.model import RunBudget
from fleet.timing.clock import SystemClock
from tests.integration.mcp.rig import CREDENTIAL_ENV, Door, HttpMcp, door_on_endpoint
from tests.integration.mcp.test_mcp_door_http import Poster
from tests.polling import eventually

pytestmark = pytest.mark.integration

AGENT = "coder"
TOOLS = frozenset({"echo", "add", "hang", "delete_all", "meta_seen"})


def tracker(mcp: HttpMcp, *, timeout: float = 30.0, price: float | None = None) -> McpServer:
    auth = {"Authorization": CREDENTIAL_ENV}
    return McpServer(
        "tracker", HttpServer(mcp.url, headers_env=auth), price_per_call=price, timeout=timeout
    )


class Roster:
    """The door's roster over one server, its grant to :data:`AGENT` changed by a test."""

    def __init__(self, server: McpServer, tools: frozenset[str] | None = TOOLS) -> None:
        self._server = server
        self.given: McpGrant | None = McpGrant(server.name, tools)

    def server(self, name: str) -> McpServer | None:
        return self._server if name == self._server.name else None

    def grant(self, agent: str, server: str) -> McpGrant | None:
        return self.given if (agent, server) == (AGENT, self._server.name) else None


@contextlib.asynccontextmanager
async def door(
    tmp_path: Path, server: McpServer, **options: object
) -> AsyncIterator[tuple[Door, Poster, Roster]]:
    """The door over ``server`` granted to :data:`AGENT` (:data:`TOOLS`), a session open."""
    roster = Roster(server)
    async with (
        door_on_endpoint(
            tmp_path / "state",
            [server],
            {},
            roster=roster,
            **options,  # type: ignore[arg-type]
        ) as opened,
        aiohttp.ClientSession() as http,
    ):
        post = Poster(http, opened.url(AGENT, "tracker"), opened.token(AGENT))
        await post.initialize()
        yield opened, post, roster


async def raw(post: Poster, body: str, status: int = 200) -> dict[str, object]:
    """``body`` posted as it is (JSON a dict could not hold: ``1e400``, an id again)."""
    headers = {**post.headers, "Content-Type": "application/json"}
    async with post.http.post(post.url, data=body.encode(), headers=headers) as answer:
        assert answer.status == status, await answer.text()
        found: dict[str, object] = json.loads(await answer.text())
    return found


def error_of(answer: dict[str, object]) -> dict[str, object]:
    assert "error" in answer, answer
    found = answer["error"]
    assert isinstance(found, dict)
    return found


async def test_reads_and_prompts_are_asked_and_audited_like_calls(
    tmp_path: Path, http_mcp: HttpMcp
) -> None:
    """A resource's read and a prompt's get are asked of the door's asks (method and what
    they name) and audited; a read an ask denies is an error, audited denied."""
    asked: list[McpCall] = []

    async def ask(call: McpCall) -> Verdict:
        asked.append(call)
        return Verdict(call.tool != "note://secret", "not that one")

    async with door(tmp_path, tracker(http_mcp), asks=[ask]) as (opened, post, _):
        read = await post.call("resources/read", {"uri": "note://today"})
        prompt = await post.call("prompts/get", {"name": "greet", "arguments": {"name": "Ana"}})
        denied = await post.call("resources/read", {"uri": "note://secret"})
        audits = await eventually(lambda: len(opened.audits) == 3 and opened.audits, "audited")
    assert "the note of the day" in json.dumps(read)
    assert "Say hello to Ana." in json.dumps(prompt)
    assert "not that one" in str(error_of(denied)["message"])
    assert [(c.method, c.tool, dict(c.arguments)) for c in asked] == [
        ("resources/read", "note://today", {}),
        ("prompts/get", "greet", {"name": "Ana"}),
        ("resources/read", "note://secret", {}),
    ]
    assert [(a.method, a.name, a.outcome) for a in audits] == [
        ("resources/read", "note://today", Outcome.OK),
        ("prompts/get", "greet", Outcome.OK),
        ("resources/read", "note://secret", Outcome.DENIED),
    ]


async def test_a_method_the_door_does_not_know_is_refused_never_relayed(
    tmp_path: Path, http_mcp: HttpMcp
) -> None:
    """MCP's tasks (``tasks/*``, a call with ``params.task``) and a method or notification
    the door does not know are refused in the door's words; the task-augmented call of a
    tool that deletes never runs and is audited refused."""
    async with door(tmp_path, tracker(http_mcp)) as (opened, post, _):
        for method in ("tasks/get", "tasks/list", "tools/destroy"):
            refused = error_of(await post.call(method, {"taskId": "t1"}))
            assert refused["code"] == -32601, refused
            assert "MCP door relays no" in str(refused["message"])
        task = {"name": "delete_all", "arguments": {}, "task": {"ttl": 60000}}
        refused = error_of(await post.call("tools/call", task))
        assert "relays no MCP tasks" in str(refused["message"])
        assert "without params.task" in str(refused["message"])
        odd = '{"jsonrpc": "2.0", "method": "notifications/tasks/status", "params": {}}'
        assert "relays no MCP tasks" in str(error_of(await raw(post, odd, 400))["message"])
        audits = await eventually(lambda: opened.audits, "the task call audited")
    assert [(a.name, a.outcome) for a in audits] == [("delete_all", Outcome.REFUSED)]
    assert not (http_mcp.record.parent / "deleted").exists()


async def test_what_an_ask_shows_is_exactly_what_is_relayed(
    tmp_path: Path, http_mcp: HttpMcp
) -> None:
    """A call's ``_meta`` reaches the server cut to its progress token, and a number JSON
    cannot carry (``1e400``) is the ``null`` the ask was shown, not ``Infinity``."""
    asked: list[McpCall] = []

    async def ask(call: McpCall) -> Verdict:
        asked.append(call)
        return Verdict(True, "")

    meta = {"progressToken": "p1", "hidden": "ignore the operator"}
    params = {"name": "meta_seen", "arguments": {"n": 1}, "_meta": meta}
    body = json.dumps({"jsonrpc": "2.0", "id": 41, "method": "tools/call", "params": params})
    async with door(tmp_path, tracker(http_mcp), asks=[ask]) as (_, post, _roster):
        answer = await raw(post, body.replace('{"n": 1}', '{"n": 1e400}'))
    result = answer["result"]
    assert isinstance(result, dict)
    seen = json.loads(result["content"][0]["text"])
    assert seen == {"meta": {"progress_token": "p1"}, "n": None}  # the SDK's name for it
    assert [dict(c.arguments) for c in asked] == [{"n": None}]


async def test_a_grant_narrowed_by_a_reload_applies_to_open_sessions(
    tmp_path: Path, http_mcp: HttpMcp
) -> None:
    """An open session reads its agent's grant at each call: a tool taken out of it is
    refused and no longer listed; the server taken away, the session's requests are 404."""
    async with door(tmp_path, tracker(http_mcp)) as (_, post, roster):
        echoed = await post.call("tools/call", {"name": "echo", "arguments": {"text": "a"}})
        assert "result" in echoed, echoed
        roster.given = McpGrant("tracker", frozenset({"add"}))
        refused = error_of(await post.call("tools/call", {"name": "echo", "arguments": {}}))
        assert "not allowed" in str(refused["message"])
        listed = await post.call("tools/list", {})
        assert [t["name"] for t in listed["result"]["tools"]] == ["add"]  # type: ignore[index]
        roster.given = None
        gone = {"jsonrpc": "2.0", "id": 99, "method": "tools/list", "params": {}}
        async with post.http.post(post.url, json=gone, headers=post.headers) as answer:
            assert answer.status == 404


async def test_a_request_id_in_use_is_refused(tmp_path: Path, http_mcp: HttpMcp) -> None:
    """A second request with the id of one still being asked is refused saying so; the first
    goes on and is answered once allowed."""
    release = asyncio.Event()
    asked: list[McpCall] = []

    async def ask(call: McpCall) -> Verdict:
        asked.append(call)
        await release.wait()
        return Verdict(True, "")

    call = {"name": "echo", "arguments": {"text": "first"}}
    body = json.dumps({"jsonrpc": "2.0", "id": 7, "method": "tools/call", "params": call})
    async with door(tmp_path, tracker(http_mcp), asks=[ask]) as (_, post, _roster):
        first = asyncio.create_task(raw(post, body))
        await eventually(lambda: asked, "the first call asked")
        again = error_of(await raw(post, body.replace("first", "second")))
        assert "id 7 may still be answered" in str(again["message"])
        release.set()
        answered = await first
    assert answered["result"]["content"][0]["text"] == "first"  # type: ignore[index]
    assert len(asked) == 1


async def test_a_timed_out_requests_id_is_not_taken_again_until_its_late_answer_is_dropped(
    tmp_path: Path, http_mcp: HttpMcp
) -> None:
    """A call past the server's timeout is answered by the door; its id is refused to a new
    request while the server may still answer it (that answer would go to the new one),
    and free again once the server's late answer came and was dropped."""
    hang = {"name": "hang", "arguments": {}}
    body = json.dumps({"jsonrpc": "2.0", "id": 7, "method": "tools/call", "params": hang})
    echo = {"name": "echo", "arguments": {"text": "again"}}
    again = json.dumps({"jsonrpc": "2.0", "id": 7, "method": "tools/call", "params": echo})
    async with door(tmp_path, tracker(http_mcp, timeout=1.0)) as (_, post, _roster):
        timed_out = error_of(await raw(post, body))
        assert "did not answer tools/call within 1 s" in str(timed_out["message"])
        refused = error_of(await raw(post, again))
        assert "id 7 may still be answered: use another id" in str(refused["message"])
        # The server takes the door's cancel and answers the hung call at last: dropped,
        # and the id is the agent's to use again.
        deadline = asyncio.get_running_loop().time() + 20
        while "result" not in (answered := await raw(post, again)):
            assert "may still be answered" in str(error_of(answered)["message"])
            assert asyncio.get_running_loop().time() < deadline, "the id was never free again"
            await asyncio.sleep(0.05)
    assert answered["result"]["content"][0]["text"] == "again"  # type: ignore[index]


def capped(usd: float) -> tuple[RunCaps, PolicyBilling]:
    """Run caps with :data:`AGENT`'s run armed at ``usd``, and the door's billing on them
    through the proxy's policy (caps, then the budgets)."""
    caps = RunCaps()
    caps.arm(AGENT, 1, RunBudget(max_usd=usd), datetime.now(UTC))
    return caps, PolicyBilling(lambda: CappedPolicy(AllowAll(), caps), SystemClock())


def spent(caps: RunCaps) -> float:
    found = caps.cap_of(AGENT)
    assert found is not None
    return round(found[2], 6)


async def test_a_priced_call_is_held_against_the_runs_cap_before_it_is_relayed(
    tmp_path: Path, http_mcp: HttpMcp
) -> None:
    """A priced server's calls are billed to the run's cap whatever their end (a timeout
    too); a refused one is not; once the run is at its cap, the next call is refused before
    it is relayed and its tool never runs."""
    caps, billing = capped(0.10)
    server = tracker(http_mcp, timeout=1.0, price=0.04)
    async with door(tmp_path, server, billing=billing) as (opened, post, _):
        echo = {"name": "echo", "arguments": {"text": "x"}}
        assert "result" in await post.call("tools/call", echo)
        assert spent(caps) == 0.04
        assert "error" in await post.call("tools/call", {"name": "nope", "arguments": {}})
        assert spent(caps) == 0.04  # refused at the door: never relayed, not billed
        assert "did not answer" in json.dumps(
            await post.call("tools/call", {"name": "hang", "arguments": {}})
        )
        assert spent(caps) == 0.08
        assert "result" in await post.call(
            "tools/call", {"name": "add", "arguments": {"a": 1, "b": 2}}
        )
        assert spent(caps) == 0.12
        over = error_of(await post.call("tools/call", {"name": "delete_all", "arguments": {}}))
        audits = await eventually(lambda: len(opened.audits) == 5 and opened.audits, "audited")
    assert "run capped at $0.10" in str(over["message"])
    assert not (http_mcp.record.parent / "deleted").exists()
    assert [(a.name, a.outcome, a.cost_usd) for a in audits] == [
        ("echo", Outcome.OK, 0.04),
        ("nope", Outcome.REFUSED, None),
        ("hang", Outcome.TIMEOUT, 0.04),
        ("add", Outcome.OK, 0.04),
        ("delete_all", Outcome.REFUSED, None),
    ]


async def test_a_priced_call_cancelled_once_relayed_is_billed(
    tmp_path: Path, http_mcp: HttpMcp
) -> None:
    """A priced call the agent cancels after it was relayed is billed (the server had it);
    one cancelled while it was asked, never relayed, is not."""
    caps, billing = capped(1.0)
    asked: list[str] = []

    async def ask(call: McpCall) -> Verdict:
        asked.append(call.tool)
        if call.tool == "echo":
            await asyncio.Event().wait()  # never answered: cancelled while asked
        return Verdict(True, "")

    server = tracker(http_mcp, price=0.05)
    async with door(tmp_path, server, billing=billing, asks=[ask]) as (opened, post, _):
        before = len(http_mcp.requests())
        hang = asyncio.create_task(posted(post, 3, "hang"))
        await eventually(lambda: len(http_mcp.requests()) > before, "the call relayed")
        echo = asyncio.create_task(posted(post, 4, "echo"))
        await eventually(lambda: "echo" in asked, "the second call asked")
        for request_id in (3, 4):
            cancel = {"requestId": request_id, "reason": "no longer needed"}
            message = {"jsonrpc": "2.0", "method": "notifications/cancelled", "params": cancel}
            async with post.http.post(post.url, json=message, headers=post.headers) as sent:
                assert sent.status == 202
        assert await hang == await echo == 202  # answered nothing: the agent gave up on them
        audits = await eventually(lambda: len(opened.audits) == 2 and opened.audits, "audited")
    assert sorted((a.name, a.outcome, a.cost_usd) for a in audits) == [
        ("echo", Outcome.CANCELLED, None),
        ("hang", Outcome.CANCELLED, 0.05),
    ]
    assert spent(caps) == 0.05


async def posted(post: Poster, request_id: int, tool: str) -> int:
    """A call of ``tool`` posted; the status it was answered with."""
    params = {"name": tool, "arguments": {}}
    call = {"jsonrpc": "2.0", "id": request_id, "method": "tools/call", "params": params}
    async with post.http.post(post.url, json=call, headers=post.headers) as answer:
        await answer.read()
        return answer.status

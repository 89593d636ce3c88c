"""Tests for fleet.approvals.ask_door: asking the operator over the heartbeat
endpoint, and waiting."""

from __future__ import annotations

import asyncio
import json
import shutil
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from fleet.approvals.ask_door import CHANNEL, MAX_BODY, AskDoor, BadAsk, ledger_terms, parse_ask
from fleet.approvals.service import ApprovalEvent, Approvals
from fleet.connections.loopback import STARTING
from fleet.connections.token import TOKEN_HEADER
from fleet.ledger import Ledger
from fleet.ledger.records.approvals import ApprovalState, Decision
from fleet.model import AgentSpec, DesiredState, ExitInfo, RunHandle
from fleet.names import AgentName
from fleet.runtimes.gates import ASK_CLIENT
from fleet.timing.clock import SystemClock
from fleet.watchdog.heartbeat import HeartbeatServer

AGENT = AgentName("coder-1")
OTHER = AgentName("coder-2")
DEADLINE = 10.0


@dataclass
class Rig:
    ledger: Ledger
    approvals: Approvals
    server: HeartbeatServer
    run_id: int
    state_dir: Path

    def url(self, agent: str = AGENT) -> str:
        return f"http://127.0.0.1:{self.server.port}/approval/{agent}"

    def headers(self, agent: str = AGENT) -> dict[str, str]:
        return {TOKEN_HEADER: self.server.token_for(agent)}


async def start_server(ledger: Ledger, approvals: Approvals, state_dir: Path) -> HeartbeatServer:
    async def on_beat(agent: str, kind: str) -> None:
        pass

    door = AskDoor(
        approvals, ledger_terms(ledger.agents, ledger.runs), SystemClock(), poll_seconds=0.3
    )
    server = HeartbeatServer(state_dir, on_beat, asks=door)
    await server.start()
    return server


async def add_agent(ledger: Ledger, name: AgentName, tmp_path: Path, **spec: Any) -> int:
    await ledger.agents.upsert_agent(
        AgentSpec(name=name, runtime="pi", **spec), DesiredState.RUNNING, origin="spawn"
    )
    handle = RunHandle("subprocess", 4242, 4242, tmp_path / name, tmp_path / name / "log")
    return (await ledger.runs.start_run(name, handle)).id


@pytest.fixture
async def ask_door_rig(tmp_path: Path) -> AsyncIterator[Rig]:
    ledger = await Ledger.open(tmp_path / "ledger.db", SystemClock())
    approvals = Approvals(ledger.approvals, SystemClock())
    run_id = await add_agent(ledger, AGENT, tmp_path, allow=("Bash(git *)",))
    await add_agent(ledger, OTHER, tmp_path)
    server = await start_server(ledger, approvals, tmp_path / "state")
    try:
        yield Rig(ledger, approvals, server, run_id, tmp_path / "state")
    finally:
        await server.stop()
        await ledger.close()


ASK = {"id": "toolu_1", "tool": "bash", "subject": "rm -rf build", "pattern": "Bash(rm *)"}


async def opened_one(approvals: Approvals) -> asyncio.Future[str]:
    """A future that gets the id of the next request opened."""
    future: asyncio.Future[str] = asyncio.get_running_loop().create_future()

    async def listener(event: ApprovalEvent) -> None:
        if event.opened and not future.done():
            future.set_result(event.request.id)

    approvals.subscribe(listener)
    return future


async def test_an_ask_waits_for_the_operator_and_gets_the_reason_of_a_deny(
    ask_door_rig: Rig,
) -> None:
    """POST opens a hook request for the agent's run and answers, once the operator denies,
    with the decision and a message carrying the reason."""
    async with aiohttp.ClientSession() as http:
        opened = await opened_one(ask_door_rig.approvals)
        asking = asyncio.create_task(
            http.post(ask_door_rig.url(), json=ASK, headers=ask_door_rig.headers())
        )
        request_id = await asyncio.wait_for(opened, DEADLINE)
        await ask_door_rig.approvals.answer(
            request_id, by="@op:hs", decision=Decision.DENY, how="command", reason="not today"
        )
        response = await asking
        body = await response.json()
    assert response.status == 200
    assert body["decision"] == "deny" and "not today" in body["message"]
    stored = await ask_door_rig.approvals.get(request_id)
    assert stored.channel == CHANNEL and stored.run_id == ask_door_rig.run_id
    assert stored.delivered_at is not None


async def test_an_unanswered_ask_is_202_then_polled_to_its_answer(ask_door_rig: Rig) -> None:
    """Unanswered within the poll: 202 with the id; GET on that id then gets the allow."""
    async with aiohttp.ClientSession() as http:
        first = await http.post(ask_door_rig.url(), json=ASK, headers=ask_door_rig.headers())
        assert first.status == 202
        request_id = (await first.json())["id"]
        await ask_door_rig.approvals.answer(
            request_id, by="@op:hs", decision=Decision.ALLOW, how="command"
        )
        polled = await http.get(
            f"{ask_door_rig.url()}/{request_id}", headers=ask_door_rig.headers()
        )
        body = await polled.json()
    assert polled.status == 200 and body["decision"] == "allow"


async def test_the_same_ask_after_a_restart_is_the_same_request(
    ask_door_rig: Rig, tmp_path: Path
) -> None:
    """A new server over the same state dir and ledger: until the start's sweep a POST is
    503 (the client retries); then the repeated POST finds its open request (never a second
    one), and the answer given after the restart reaches it."""
    async with aiohttp.ClientSession() as http:
        first = await http.post(ask_door_rig.url(), json=ASK, headers=ask_door_rig.headers())
        request_id = (await first.json())["id"]
    await ask_door_rig.server.stop()
    approvals = Approvals(ask_door_rig.ledger.approvals, SystemClock())
    server = await start_server(ask_door_rig.ledger, approvals, ask_door_rig.state_dir)
    try:
        url = f"http://127.0.0.1:{server.port}/approval/{AGENT}"
        headers = {TOKEN_HEADER: server.token_for(AGENT)}
        async with aiohttp.ClientSession() as http:
            starting = await http.post(url, json=ASK, headers=headers)
            assert starting.status == 503 and await starting.text() == STARTING + "\n"
            server.keep_only([AGENT])  # the start's sweep: its run goes on
            again = await http.post(url, json=ASK, headers=headers)
            assert again.status == 202 and (await again.json())["id"] == request_id
            await approvals.answer(request_id, by="@op:hs", decision=Decision.ALLOW, how="reaction")
            response = await http.post(url, json=ASK, headers=headers)
            body = await response.json()
        assert response.status == 200 and body["id"] == request_id
        assert body["decision"] == "allow"
        assert len(await ask_door_rig.ledger.approvals.approvals_of_run(ask_door_rig.run_id)) == 1
    finally:
        await server.stop()


async def test_an_allow_rule_of_the_spec_passes_at_once(ask_door_rig: Rig) -> None:
    """An ask matching the agent's ``allow`` rule is allowed at once, by rule."""
    ask = {"id": "toolu_2", "tool": "bash", "subject": "git status"}
    async with aiohttp.ClientSession() as http:
        response = await http.post(ask_door_rig.url(), json=ask, headers=ask_door_rig.headers())
        body = await response.json()
    assert response.status == 200 and body["decision"] == "allow"
    assert body["state"] == ApprovalState.ALLOWED.value


async def test_an_agent_reads_only_its_own_requests(ask_door_rig: Rig) -> None:
    """Another agent's id, an unknown id and a wrong token get 404, 404 and 403."""
    async with aiohttp.ClientSession() as http:
        first = await http.post(ask_door_rig.url(), json=ASK, headers=ask_door_rig.headers())
        request_id = (await first.json())["id"]
        theirs = await http.get(
            f"{ask_door_rig.url(OTHER)}/{request_id}", headers=ask_door_rig.headers(OTHER)
        )
        unknown = await http.get(f"{ask_door_rig.url()}/zzzz", headers=ask_door_rig.headers())
        wrong = await http.get(
            f"{ask_door_rig.url()}/{request_id}", headers=ask_door_rig.headers(OTHER)
        )
        no_token = await http.post(ask_door_rig.url(), json=ASK)
    assert (theirs.status, unknown.status, wrong.status, no_token.status) == (404, 404, 403, 403)


async def test_bad_bodies_are_refused_saying_what_is_wrong(ask_door_rig: Rig) -> None:
    """Not JSON, a missing id, an unknown field: 400 naming it; over the cap: 413."""
    async with aiohttp.ClientSession() as http:
        answers = []
        for body in (b"nope", b'{"tool": "bash"}', b'{"id": "a", "tool": "b", "x": 1}'):
            response = await http.post(
                ask_door_rig.url(), data=body, headers=ask_door_rig.headers()
            )
            answers.append((response.status, (await response.json())["error"]))
        big = await http.post(
            ask_door_rig.url(), data=b"x" * (MAX_BODY + 1), headers=ask_door_rig.headers()
        )
    assert [status for status, _ in answers] == [400, 400, 400]
    assert "not JSON" in answers[0][1] and '"id"' in answers[1][1] and "x" in answers[2][1]
    assert big.status == 413


async def test_an_agent_with_no_run_cannot_ask(ask_door_rig: Rig) -> None:
    """An agent whose run ended gets 409 saying so, and nothing is recorded."""
    await ask_door_rig.ledger.runs.end_run(ask_door_rig.run_id, ExitInfo(0, "done"))
    async with aiohttp.ClientSession() as http:
        response = await http.post(ask_door_rig.url(), json=ASK, headers=ask_door_rig.headers())
        body = await response.json()
    assert response.status == 409 and "no run" in body["error"]
    assert await ask_door_rig.approvals.pending(AGENT) == []


async def test_a_request_past_its_deadline_is_denied_as_a_timeout(
    ask_door_rig: Rig, tmp_path: Path
) -> None:
    """Polled past its deadline, a request is expired here: deny, recorded as a timeout."""
    name = AgentName("quick-1")
    await add_agent(ask_door_rig.ledger, name, tmp_path, approval_timeout=0.2)
    async with aiohttp.ClientSession() as http:
        response = await http.post(
            ask_door_rig.url(name), json=ASK, headers=ask_door_rig.headers(name)
        )
        body = await response.json()
    assert response.status == 200 and body["decision"] == "deny"
    assert body["state"] == ApprovalState.TIMED_OUT.value


def test_parse_ask_keeps_the_fields_and_refuses_a_flag_like_id() -> None:
    """The schema: fields kept as given; an id that is not an id is refused."""
    ask = parse_ask(b'{"id": "call_1", "tool": "edit", "subject": "a.py", "detail": "-x"}')
    assert (ask.native_id, ask.tool, ask.subject, ask.detail) == ("call_1", "edit", "a.py", "-x")
    with pytest.raises(BadAsk, match='"id"'):
        parse_ask(b'{"id": "-rf", "tool": "bash"}')


@pytest.mark.skipif(shutil.which("node") is None, reason="needs node")
async def test_the_hook_client_asks_and_prints_the_answer(ask_door_rig: Rig) -> None:
    """``node ask.mjs`` (what a hook command runs): one ask on stdin, it waits through 202s
    for the operator, and prints the decision and the model's message as JSON."""
    node = shutil.which("node")
    assert node is not None
    env = {
        "PATH": "/usr/bin:/bin",
        "FLEETWARDEN_HEARTBEAT_URL": f"http://127.0.0.1:{ask_door_rig.server.port}/heartbeat/{AGENT}",
        "FLEETWARDEN_HEARTBEAT_TOKEN": ask_door_rig.server.token_for(AGENT),
    }
    opened = await opened_one(ask_door_rig.approvals)
    client = await asyncio.create_subprocess_exec(
        node,
        str(ASK_CLIENT),
        env=env,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
    )
    try:
        assert client.stdin is not None
        client.stdin.write(json.dumps(ASK).encode())
        client.stdin.close()
        request_id = await asyncio.wait_for(opened, DEADLINE)
        await ask_door_rig.approvals.answer(
            request_id, by="@op:hs", decision=Decision.DENY, how="reply", reason="use make"
        )
        out, _ = await asyncio.wait_for(client.communicate(), DEADLINE)
    finally:
        if client.returncode is None:
            client.kill()
            await client.wait()
    answer = json.loads(out)
    assert answer == {"decision": "deny", "message": "The operator denied this: use make"}


async def test_a_withdrawn_ask_is_closed(ask_door_rig: Rig) -> None:
    """DELETE with the ask's id: the CLI no longer waits; its open request is closed, and a
    poll then gets it as a deny."""
    async with aiohttp.ClientSession() as http:
        first = await http.post(ask_door_rig.url(), json=ASK, headers=ask_door_rig.headers())
        request_id = (await first.json())["id"]
        gone = await http.delete(ask_door_rig.url(), json=ASK, headers=ask_door_rig.headers())
        polled = await http.get(
            f"{ask_door_rig.url()}/{request_id}", headers=ask_door_rig.headers()
        )
        body = await polled.json()
    assert gone.status == 204
    assert polled.status == 200 and body["state"] == "closed" and body["decision"] == "deny"

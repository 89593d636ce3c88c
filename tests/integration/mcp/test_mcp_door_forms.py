"""The MCP door in front of a hostile server (the SDK's, on loopback,
:mod:`tests.integration.mcp.forms_mcp_server`) that shows the credential it was given in
every form — each character JSON-escaped (either hex case) or percent-encoded (either
case), or some of them, escaped twice, in hex or base64 at each alignment — at every place
a server's message carries text: the agent's MCP client (the SDK's) gets a label there
instead, and so do the door's audit records (the ledger's rows) and the thread's line of
each call; and a credential too short to hunt in free text, echoed as the header it was
sent in, is a label too."""

from __future__ import annotations

import contextlib
import json
import os
import select
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx2
import pytest
from mcp.client.session import ClientSession
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError
from mcp_types import ElicitResult, LoggingMessageNotificationParams

from bot.render.agents.mcp import audit_line
from fleet.mcp.model import HttpServer, McpGrant, McpServer
from fleet.redaction.decoded import Decoded
from fleet.redaction.forms import encoded
from tests.integration.mcp.conftest import stop_server
from tests.integration.mcp.forms_mcp_server import FORMS, LAYOUTS
from tests.integration.mcp.rig import CREDENTIAL, CREDENTIAL_ENV, REPO, door_on_endpoint

pytestmark = pytest.mark.integration

AGENT = "coder"
LABEL = f"[redacted: MCP credential {CREDENTIAL_ENV}]"
PLACES = ("result", "error", "error_data", "log", "progress", "request", "meta")


Start = Callable[..., str]


@pytest.fixture
def forms_mcp() -> Iterator[Start]:
    """Starts the hostile server requiring ``token`` (its MCP URL); each one started is
    stopped after the test."""
    started: list[subprocess.Popen[bytes]] = []

    def start(token: str = CREDENTIAL) -> str:
        env = {**os.environ, "MCP_TEST_TOKEN": token}
        argv = [sys.executable, "-m", "tests.integration.mcp.forms_mcp_server"]
        process = subprocess.Popen(
            argv, cwd=REPO, env=env, stdout=subprocess.PIPE, start_new_session=True
        )
        started.append(process)
        return f"http://127.0.0.1:{_port(process)}/mcp"

    try:
        yield start
    finally:
        for process in started:
            stop_server(process)


def _port(process: subprocess.Popen[bytes]) -> int:
    assert process.stdout is not None
    deadline = time.monotonic() + 30.0
    while time.monotonic() < deadline:
        if select.select([process.stdout], [], [], 0.1)[0]:
            return int(process.stdout.readline())
        assert process.poll() is None, f"the forms server exited ({process.returncode})"
    raise AssertionError("the forms server did not listen within 30 s")


def clean(text: str) -> bool:
    """Whether nothing of ``text`` is the credential in a form the server shows it in:
    read as its escapes spell it, it holds neither the credential nor its hex or base64."""
    read = Decoded(text).text
    shown = [CREDENTIAL, *encoded(CREDENTIAL)]
    return not any(form in read or form.lower() in read.lower() for form in shown)


class Agent:
    """What the agent's client was given, each thing as the JSON it parsed to, by place."""

    def __init__(self) -> None:
        self.got: dict[str, list[str]] = {place: [] for place in (*PLACES, "instructions")}

    async def on_log(self, params: LoggingMessageNotificationParams) -> None:
        self.got["log"].append(params.model_dump_json())

    async def on_progress(self, progress: float, total: float | None, message: str | None) -> None:
        self.got["progress"].append(message or "")

    async def on_request(self, context: Any, params: Any) -> ElicitResult:
        self.got["request"].append(params.model_dump_json())
        return ElicitResult(action="decline")


@contextlib.asynccontextmanager
async def session_of(url: str, token: str, agent: Agent) -> AsyncIterator[ClientSession]:
    async with (
        httpx2.AsyncClient(headers={"Authorization": f"Bearer {token}"}) as http,
        streamable_http_client(url, http_client=http) as (read, write),
        ClientSession(
            read,
            write,
            logging_callback=agent.on_log,
            elicitation_callback=agent.on_request,
        ) as session,
    ):
        started = await session.initialize()
        agent.got["instructions"].append(started.model_dump_json())
        yield session


async def test_every_form_of_the_credential_at_every_place_reaches_the_agent_as_a_label(
    tmp_path: Path, forms_mcp: Start
) -> None:
    """Each form at each place (instructions, a result, an error's message and data, a
    log line, progress, a request to the client, a result's ``_meta``): what the agent's
    client gets holds the label and nothing that reads back as the credential; so do the
    audit records and each call's line in the thread."""
    server = McpServer(
        "tracker",
        HttpServer(forms_mcp(), headers_env={"Authorization": CREDENTIAL_ENV}),
        timeout=30.0,
    )
    grants = {AGENT: [McpGrant("tracker", frozenset({"leak"}))]}
    agent = Agent()
    async with door_on_endpoint(tmp_path / "state", [server], grants) as door:
        async with session_of(door.url(AGENT, "tracker"), door.token(AGENT), agent) as session:
            for place in PLACES:
                for form in FORMS:
                    arguments = {"place": place, "form": form}
                    try:
                        result = await session.call_tool(
                            "leak", arguments, progress_callback=agent.on_progress
                        )
                    except MCPError as failed:
                        agent.got[place].append(failed.error.model_dump_json())
                    else:
                        shown = result.model_dump_json(by_alias=True)
                        agent.got[place if place in ("result", "meta") else "result"].append(shown)
        audits = list(door.audits)
    for place, said in agent.got.items():
        expected = 1 if place == "instructions" else len(FORMS)
        if place == "result":
            expected = len(FORMS) * 4  # its own, and the answers to log, progress, request
        if place != "request":  # the door may refuse a server's request: then none comes
            assert len(said) == expected, (place, len(said))
        for text in said:
            assert clean(text), (place, text)
            assert LABEL in text or '"done"' in text, (place, text)
    assert all(LABEL in text for text in agent.got["instructions"])
    assert len(audits) == len(PLACES) * len(FORMS)
    for audit in audits:
        for text in (audit.result, audit.why, audit.arguments, audit_line(audit)):
            assert clean(text), (audit, text)


async def test_a_short_credential_echoed_in_its_header_is_a_label(
    tmp_path: Path, forms_mcp: Start
) -> None:
    """A credential of four characters, too short to hunt in free text, that the server
    says back as the ``X-Api-Key`` header it got, reaches the agent as the label."""
    url = forms_mcp("k3y9")
    server = McpServer("tracker", HttpServer(url, headers_env={"X-Api-Key": CREDENTIAL_ENV}))
    grants = {AGENT: [McpGrant("tracker", frozenset({"whoami"}))]}
    environ = {CREDENTIAL_ENV: "k3y9"}
    agent = Agent()
    async with (
        door_on_endpoint(tmp_path / "state", [server], grants, environ=environ) as door,
        session_of(door.url(AGENT, "tracker"), door.token(AGENT), agent) as session,
    ):
        said = (await session.call_tool("whoami", {})).model_dump_json()
    assert "k3y9" not in said
    assert f"you sent X-Api-Key: {LABEL}" in said


async def test_a_short_credential_in_any_header_layout_is_a_label(
    tmp_path: Path, forms_mcp: Start
) -> None:
    """A four-character credential said back in the layouts a header is printed in (JSON,
    a list of pairs, ``=>``, a blank) reaches the agent as the label in each."""
    url = forms_mcp("k3y9")
    server = McpServer("tracker", HttpServer(url, headers_env={"X-Api-Key": CREDENTIAL_ENV}))
    grants = {AGENT: [McpGrant("tracker", frozenset({"headers"}))]}
    environ = {CREDENTIAL_ENV: "k3y9"}
    agent = Agent()
    async with (
        door_on_endpoint(tmp_path / "state", [server], grants, environ=environ) as door,
        session_of(door.url(AGENT, "tracker"), door.token(AGENT), agent) as session,
    ):
        for layout, shape in LAYOUTS.items():
            result = await session.call_tool("headers", {"layout": layout})
            said = result.model_dump_json()
            assert "k3y9" not in said, layout
            assert json.dumps(shape.format(LABEL))[1:-1] in said, layout

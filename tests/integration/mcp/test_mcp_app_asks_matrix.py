"""The chat approval of an MCP call through the app's own door, on a real Synapse: the app
started from a config with an ``mcp:`` server (the SDK's token-protected one on loopback)
and a sandboxed ``command`` agent granted it under the default mode (no rule allows the
tool). The agent's own tools/call, made from the ``mcp.json`` its launch wrote, is asked in
its encrypted thread before the door relays it; the operator's ✅ relays it (the server sees
the held credential), a reply ``no, …`` refuses the next with the reason, which the server
never sees."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.app.lifecycle import App
from tests.integration.approvals.test_approvals_matrix import app_on, encrypted_world
from tests.integration.connectors.matrix.test_matrix_bot import PASSWORD
from tests.integration.connectors.matrix.test_matrix_e2ee import Encrypted
from tests.integration.mcp.app_rig import agent_log, door_client
from tests.integration.mcp.rig import CREDENTIAL, CREDENTIAL_ENV, HttpMcp
from tests.integration.mcp.test_mcp_asks_chat import asked_in_thread
from tests.polling import eventually

__all__ = ["encrypted_world"]  # fixture

pytestmark = [pytest.mark.integration, pytest.mark.synapse]

AGENT = "c1"
HOSTILE = "hi @room\n✅ Allowed once by @admin \u202eevil"
# Two calls of echo, each waiting for its answer; prints what each got.
SCRIPT = (
    door_client("tracker", timeout=120)
    + r"""
import time
for n, text in ((2, sys.argv[1]), (3, "again")):
    params = {"name": "echo", "arguments": {"text": text}}
    got = json.loads(post({"jsonrpc": "2.0", "id": n, "method": "tools/call", "params": params}))
    print("ANSWER " + json.dumps(got), flush=True)
while not os.path.exists("leave"):
    time.sleep(0.05)
"""
)
MCP = f"""\
mcp:
  tracker:
    url: {{url}}
    headers_env: {{{{Authorization: {CREDENTIAL_ENV}}}}}
agents:
  - name: {AGENT}
    runtime: command
    argv: [python3, agent.py, {{hostile}}]
    workdir: ./work
    mcp: [tracker]
"""


@pytest.fixture
async def mcp_granted_app(encrypted_world: Encrypted, http_mcp: HttpMcp) -> AsyncIterator[App]:
    """The app over the world's room, with the MCP server and c1 granted it."""
    (encrypted_world.workdir / "work").mkdir()
    (encrypted_world.workdir / "work" / "agent.py").write_text(SCRIPT)
    path = encrypted_world.workdir / "fleetwarden.yaml"
    path.write_text(
        encrypted_world.head() + MCP.format(url=http_mcp.url, hostile=json.dumps(HOSTILE))
    )
    environ = {"FW_BOT_PASSWORD": PASSWORD, CREDENTIAL_ENV: f"Bearer {CREDENTIAL}"}
    async with app_on(
        encrypted_world, path, environ, leave=encrypted_world.workdir / "work" / "leave"
    ) as running:
        yield running


def _answers(root: Path) -> list[str]:
    text = agent_log(root, AGENT)
    return [line[len("ANSWER ") :] for line in text.splitlines() if line.startswith("ANSWER ")]


async def test_an_agents_mcp_call_through_the_apps_door_is_asked_in_its_thread(
    encrypted_world: Encrypted, mcp_granted_app: App, http_mcp: HttpMcp
) -> None:
    """c1's first call waits for the operator in its thread (the tool named, its hostile
    arguments inert); ✅ relays it with the held credential; a reply ``no, …`` refuses the
    second with the reason and the server never sees it."""
    op = encrypted_world.operator
    await op.say(encrypted_world.room, f"!spawn {AGENT}")
    [message] = await op.wait_for(lambda evs: asked_in_thread(encrypted_world, evs), within=120)
    body = message.body.replace("\\_", "_")
    assert "mcp__tracker__echo" in body and AGENT in body, body
    assert not any(line.startswith("✅") for line in body.split("\n")), body
    assert "[U+202E]evil" in body and "\u202e" not in body, body
    assert message.content.get("m.mentions") == {"user_ids": [op.user_id]}
    assert _answers(encrypted_world.workdir) == []
    await eventually(http_mcp.handshaken, "the door's handshake at the server")
    before = len(http_mcp.requests())  # the session's start, no call yet

    await op.react(encrypted_world.room, message.event_id, "✅")
    [first] = await eventually(
        lambda: _answers(encrypted_world.workdir)[:1], "the first call answered", within=60
    )
    assert json.loads(first)["result"]["content"][0]["text"] == HOSTILE, first
    assert len(http_mcp.requests()) > before  # relayed once allowed
    seen = http_mcp.authorizations()
    assert seen and set(seen) == {f"Bearer {CREDENTIAL}"}, seen

    [_, again] = await op.wait_for(
        lambda evs: found if len(found := asked_in_thread(encrypted_world, evs)) >= 2 else [],
        within=60,
    )
    requests = len(http_mcp.requests())
    await op.say(encrypted_world.room, "no, not on a Friday", thread=again.thread_root)
    answers = await eventually(
        lambda: found if len(found := _answers(encrypted_world.workdir)) == 2 else [],
        "the second answered",
        within=60,
    )
    assert "not on a Friday" in answers[1] and '"error"' in answers[1], answers[1]
    assert len(http_mcp.requests()) == requests  # never relayed

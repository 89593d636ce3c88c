"""An agent's calls through the MCP door on its dashboard page, through the real aiohttp
server over a real ledger holding a hostile call: the page lists it with every field the
agent or the server chose escaped and redacted, and its ``/api`` twin gives it as data."""

from __future__ import annotations

import secrets
from pathlib import Path

import aiohttp

from bot.acl import Acl, Grant, Role
from bot.config.dashboard import DashboardSection
from bot.dashboard.access.signin import SignIns
from bot.dashboard.pages.metrics import Metrics
from bot.dashboard.serving.server import DashboardServer
from fleet.backends.process import SubprocessBackend
from fleet.ledger import Ledger
from fleet.ledger.stores.running.mcp_calls import McpCallRecord
from fleet.model import AgentSpec, DesiredState
from fleet.names import AgentName
from fleet.redaction.invisible import visible
from fleet.timing.clock import ManualClock
from tests.postgres_server import free_port
from tests.unit.bot.dashboard.test_dashboard_server import ALICE, signed_in
from tests.unit.bot.dashboard.views_rig import views_over

SCRIPT = "<script>alert(1)</script>"


async def test_the_agent_page_lists_its_mcp_calls_escaped_and_redacted(
    ledger: Ledger, clock: ManualClock, tmp_path: Path
) -> None:
    """A call whose tool, arguments and result are hostile shows on the agent's page as
    text (escaped, the secret redacted, hidden characters shown), with its run, outcome
    and price; the JSON twin has the same fields as data."""
    secret = "trk-" + secrets.token_hex(12)
    await ledger.agents.upsert_agent(AgentSpec(AgentName("coder"), "stub"), DesiredState.STOPPED)
    await ledger.mcp_calls.record_call(
        McpCallRecord(
            clock.now(), "coder", 4, None, "tracker", "tools/call", SCRIPT, "error", 1.5, 30,
            900, f'{{"q": "{secret}"}}', "bad\u202eresult", "the server said no", 0.05,
        )
    )  # fmt: skip
    views = views_over(
        ledger, clock, tmp_path, backends={"subprocess": SubprocessBackend()},
        redact=lambda text: visible(text).replace(secret, "[redacted: TRACKER_TOKEN]"),
    )  # fmt: skip
    acl = Acl([Grant(ALICE, Role.VIEWER)])
    signins = SignIns(ledger.dashboard, acl, clock)
    section = DashboardSection(listen=f"127.0.0.1:{free_port()}")
    server = DashboardServer(
        section.settings(),
        views=views,
        signins=signins,
        metrics=Metrics(),
        state_dir=tmp_path,
        environ={},
    )
    await server.start()
    base = f"http://127.0.0.1:{server.port}"
    try:
        async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
            await signed_in(http, base, signins)
            async with http.get(f"{base}/agents/coder") as reply:
                assert reply.status == 200
                html = await reply.text()
            async with http.get(f"{base}/api/agents/coder") as reply:
                data = await reply.json()
    finally:
        await server.stop()
    section_html = html.split('id="mcp"')[1].split("<h2")[0]
    assert SCRIPT not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in section_html
    assert secret not in html and "[redacted: TRACKER_TOKEN]" in section_html
    assert "\u202e" not in html and "bad[U+202E]result" in section_html
    assert "#4" in section_html and "the server said no" in section_html
    [call] = data["mcp_calls"]
    assert (call["server"], call["name"], call["outcome"], call["run_id"]) == (
        "tracker", SCRIPT, "error", 4
    )  # fmt: skip
    assert (call["cost_usd"], call["bytes_in"], call["bytes_out"]) == (0.05, 30, 900)
    assert secret not in str(data)

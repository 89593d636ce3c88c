"""What agents said to each other on the dashboard, through the real aiohttp server over a
real ledger holding hostile messages: the agent's page lists its messages with every field
escaped, its ``/api`` twin and ``/api/messages`` give them as data (redacted again, nothing
hidden), bad queries are named, a stranger is refused, and ``/metrics`` counts them by kind
and state only."""

from __future__ import annotations

import secrets
from pathlib import Path

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

from bot.acl import Acl, Grant, Role
from bot.config.dashboard import DashboardSection
from bot.dashboard.access.signin import SignIns
from bot.dashboard.pages.metrics import Metrics
from bot.dashboard.pages.views import Views
from bot.dashboard.serving.server import DashboardServer
from fleet.backends.process import SubprocessBackend
from fleet.ledger import Ledger
from fleet.ledger.records.peers import NewMessage
from fleet.model import AgentSpec, DesiredState
from fleet.names import AgentName
from fleet.redaction.invisible import visible
from fleet.timing.clock import ManualClock
from tests.postgres_server import free_port
from tests.unit.bot.dashboard.test_dashboard_server import ALICE
from tests.unit.bot.dashboard.views_rig import views_over

TOKEN = "metrics-token-for-the-messages"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
SCRIPT = "<script>alert(1)</script>"
RECEIVER = '<img src=x onerror="alert(2)">'


def views(ledger: Ledger, clock: ManualClock, tmp_path: Path, secret: str) -> Views:
    return views_over(
        ledger, clock, tmp_path, backends={"subprocess": SubprocessBackend()},
        # A secret learnt after the message was recorded: the pages redact it still (as
        # the app's redactor does, what a reader cannot see is out of what it returns).
        redact=lambda text: visible(text).replace(secret, "[redacted: DEPLOY_TOKEN]"),
    )  # fmt: skip


async def hostile_traffic(ledger: Ledger, clock: ManualClock, secret: str) -> list[int]:
    for name in ("coder", "reviewer", "tester"):
        await ledger.agents.upsert_agent(AgentSpec(AgentName(name), "stub"), DesiredState.STOPPED)
    made = []
    for new in (
        NewMessage("coder", "reviewer", f"{SCRIPT}\n{{{{ 7*7 }}}} use {secret}"),
        NewMessage(
            "coder", RECEIVER, "hi\u202eevil", state="refused", why=f"no agent named {RECEIVER}"
        ),
        NewMessage("tester", "reviewer", "green", kind="task", task_id=7),
    ):
        made.append((await ledger.messages.add_message(new)).id)
        clock.advance(30)
    assert await ledger.messages.delivered(made[0], 5)
    return made


async def test_the_agent_page_its_json_and_the_api_show_its_messages_as_data(
    ledger: Ledger, clock: ManualClock, tmp_path: Path
) -> None:
    secret = "dpl-" + secrets.token_hex(12)
    first, refused, task = await hostile_traffic(ledger, clock, secret)
    acl = Acl([Grant(ALICE, Role.VIEWER)])
    signins = SignIns(ledger.dashboard, acl, clock)
    section = DashboardSection(listen=f"127.0.0.1:{free_port()}", metrics_token_env="FW_METRICS")
    server = DashboardServer(
        section.settings(),
        views=views(ledger, clock, tmp_path, secret),
        signins=signins,
        metrics=Metrics(),
        state_dir=tmp_path,
        environ={"FW_METRICS": TOKEN},
    )
    await server.start()
    base = f"http://127.0.0.1:{server.port}"
    link = await signins.issue("matrix", ALICE, ())
    assert link is not None
    try:
        async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
            async with http.get(f"{base}/api/messages") as refused_reply:
                assert refused_reply.status == 401
            async with http.post(
                f"{base}/signin", data={"link": link}, headers={"Sec-Fetch-Site": "same-origin"}
            ) as reply:
                assert reply.status == 200
            async with http.get(f"{base}/agents/coder") as reply:
                assert reply.status == 200
                html = await reply.text()
            async with http.get(f"{base}/api/agents/coder") as reply:
                agent_json = await reply.json()
            async with http.get(f"{base}/api/messages?agent=reviewer") as reply:
                reviewer = await reply.json()
            async with http.get(f"{base}/api/messages?limit=1") as reply:
                newest = await reply.json()
            answers = {}
            for query in ("agent=ghost", "agent=Not%20a%20name", "limit=0", "limit=x", "limit=501"):
                async with http.get(f"{base}/api/messages?{query}") as reply:
                    answers[query] = (reply.status, (await reply.json())["error"])
        async with (
            aiohttp.ClientSession() as http,
            http.get(f"{base}/metrics", headers=AUTH) as reply,
        ):
            scraped = await reply.text()
    finally:
        await server.stop()

    # The page: every field the agents wrote is escaped text, nothing of it markup.
    assert SCRIPT not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<img src=x" not in html and "&lt;img src=x onerror=" in html
    assert "{{ 7*7 }}" in html and "49" not in html.split('id="messages"')[1]
    assert secret not in html and "[redacted: DEPLOY_TOKEN]" in html
    assert "\u202e" not in html and "hi[U+202E]evil" in html
    assert '<pre class="message-text">' in html and "no agent named" in html

    # Its JSON: the same rows, newest first, as data.
    rows = agent_json["messages"]
    assert [r["id"] for r in rows] == [refused, first]
    delivered = rows[1]
    assert delivered["text"] == (f"{SCRIPT}\n{{{{ 7*7 }}}} use [redacted: DEPLOY_TOKEN]")
    assert delivered["state"] == "delivered" and delivered["delivered_run"] == 5
    assert delivered["delivered_at"] is not None and delivered["receiver"] == "reviewer"
    bounced = rows[0]
    assert bounced["state"] == "refused" and bounced["why"].startswith("no agent named <img")
    assert bounced["receiver"] == RECEIVER and bounced["text"] == "hi[U+202E]evil"

    assert [r["id"] for r in reviewer["messages"]] == [task, first]
    assert reviewer["agent"] == "reviewer" and reviewer["messages"][0]["task_id"] == 7
    assert [r["id"] for r in newest["messages"]] == [task] and newest["agent"] is None
    assert answers["agent=ghost"] == (404, "no agent is called 'ghost'")
    assert answers["agent=Not%20a%20name"][0] == 400
    assert {answers[q][0] for q in ("limit=0", "limit=x", "limit=501")} == {400}
    assert "1 to 500" in answers["limit=0"][1]

    families = {f.name: f for f in text_string_to_metric_families(scraped)}
    counted = {
        (s.labels["kind"], s.labels["state"]): s.value
        for s in families["fleetwarden_agent_messages"].samples
    }
    assert counted[("message", "delivered")] == 1 and counted[("message", "refused")] == 1
    assert counted[("task", "queued")] == 1 and counted[("review", "queued")] == 0
    assert len(counted) == 9  # three kinds by three states: no agent's words in a label

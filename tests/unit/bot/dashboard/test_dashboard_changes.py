"""The cost per merged change on the dashboard, through the real server over a real ledger
of a dozen runs (:mod:`tests.changes_rig`): ``/changes.csv`` with the hand-summed figures
and no formula, ``/metrics`` counting the changes that came to an end with what they cost,
and the page and its ``/api`` twin with the hostile model name escaped."""

from __future__ import annotations

import csv
import io
from datetime import datetime, timedelta
from pathlib import Path

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

from bot.acl import Acl, Grant, Role
from bot.config.dashboard import DashboardSection
from bot.dashboard.access.signin import SignIns
from bot.dashboard.pages.change_costs import ChangeCosts
from bot.dashboard.pages.metrics import Metrics
from bot.dashboard.pages.pages import NAV, Pages
from bot.dashboard.serving.server import DashboardServer
from fleet.ledger import Ledger
from fleet.ledger.records.changes import ChangeFacts
from fleet.timing.clock import ManualClock
from tests.changes_rig import CODER, HOSTILE, OPEN, SONNET, TESTER, build
from tests.postgres_server import free_port
from tests.unit.bot.dashboard.test_dashboard_views import views
from tests.unit.chat_fakes import FakeConnector

TOKEN = "metrics-token-for-the-test"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


async def serve(ledger: Ledger, clock: ManualClock, tmp_path: Path) -> DashboardServer:
    acl = Acl([Grant("@alice:example.org", Role.VIEWER)])
    section = DashboardSection(listen=f"127.0.0.1:{free_port()}", metrics_token_env="FW_METRICS")
    server = DashboardServer(
        section.settings(),
        views=views(ledger, clock, tmp_path, FakeConnector()),
        signins=SignIns(ledger.dashboard, acl, clock),
        metrics=Metrics(),
        state_dir=tmp_path,
        environ={"FW_METRICS": TOKEN},
    )
    await server.start()
    return server


async def test_the_csv_and_the_metrics_say_what_the_ledger_holds(
    ledger: Ledger, clock: ManualClock, tmp_path: Path
) -> None:
    since = await build(ledger, clock)
    # The page looks 30 days back: the rig's old change (a day before `since`) is in it.
    clock.advance((since + timedelta(days=29) - clock.now()).total_seconds())
    server = await serve(ledger, clock, tmp_path)
    base = f"http://127.0.0.1:{server.port}"
    try:
        async with aiohttp.ClientSession() as http:
            async with http.get(f"{base}/changes.csv") as refused:
                assert refused.status == 401
            async with http.get(f"{base}/changes.csv", headers=AUTH) as reply:
                assert reply.headers["Content-Disposition"].startswith("attachment")
                assert 'filename="fleetwarden-changes.csv"' in reply.headers["Content-Disposition"]
                text = await reply.text()
            async with http.get(f"{base}/metrics", headers=AUTH) as reply:
                scraped = await reply.text()
            async with http.get(f"{base}/api/changes", headers=AUTH) as reply:
                api = await reply.json()
    finally:
        await server.stop()
    rows = list(csv.DictReader(io.StringIO(text)))
    assert [(r["agent"], r["runtime"]) for r in rows] == [
        ("coder", "claude"), ("tester", "codex"), ("tester", "codex"),
    ]  # fmt: skip
    coder, tester, still_open = rows
    # The old change (9000 tokens, $4.00, merged 10 minutes after its cut) is in the window.
    assert coder["model"] == SONNET
    assert (coder["merged"], coder["closed"], coder["abandoned"], coder["open"]) == (
        "4", "1", "1", "0",
    )  # fmt: skip
    assert float(coder["cost_usd"]) == CODER.cost_usd + 4.0
    assert float(coder["merged_cost_usd"]) == CODER.merged_cost_usd + 4.0
    assert float(coder["median_merged_cost_usd"]) == (0.75 + 1.125) / 2
    assert float(coder["all_in_per_merged_usd"]) == (CODER.cost_usd + 4.0) / 4
    assert int(coder["tokens"]) == CODER.tokens + 9000
    assert int(coder["approvals"]) == CODER.approvals
    assert float(tester["cost_usd"]) == TESTER.cost_usd
    assert float(tester["median_time_to_merge_seconds"]) == TESTER.median_time_to_merge
    assert tester["unpriced_requests"] == "1"
    assert still_open["model"].startswith("'=cmd")  # a formula no spreadsheet runs
    assert float(still_open["cost_usd"]) == OPEN.cost_usd and still_open["merge_rate"] == ""
    assert api["rows"][2]["model"] == HOSTILE and api["total"]["merged"] == 5

    families = {f.name: f for f in text_string_to_metric_families(scraped)}
    counted = {
        (s.labels["agent"], s.labels["model"], s.labels["outcome"]): s.value
        for s in families["fleetwarden_changes"].samples
        if s.name == "fleetwarden_changes_total"
    }
    assert counted == {
        ("coder", SONNET, "merged"): 4.0,
        ("coder", SONNET, "closed"): 1.0,
        ("coder", SONNET, "abandoned"): 1.0,
        ("tester", "gpt-5-codex", "merged"): 1.0,
        ("tester", "gpt-5-codex", "abandoned"): 1.0,
    }  # the open change is no count: counters never go down
    cost = {
        (s.labels["agent"], s.labels["outcome"]): s.value
        for s in families["fleetwarden_change_cost_usd"].samples
        if s.name == "fleetwarden_change_cost_usd_sum"
    }
    assert cost[("coder", "merged")] == CODER.merged_cost_usd + 4.0
    assert cost[("coder", "closed")] == 0.25 and cost[("tester", "abandoned")] == 0.0625
    samples = families["fleetwarden_changes"].samples
    assert {s.labels["runtime"] for s in samples} == {"claude", "codex"}


async def test_the_page_escapes_the_model_and_is_in_the_nav(
    ledger: Ledger, clock: ManualClock, tmp_path: Path
) -> None:
    """The HTML of the page's fragment, as the server renders it for a signed-in viewer."""
    await build(ledger, clock)
    data = await views(ledger, clock, tmp_path, FakeConnector()).changes()
    html = Pages().fragment("changes", data)
    assert ("/changes", "Changes") in NAV
    assert "&lt;b&gt;*bold*&lt;/b&gt;" in html and "<b>" not in html
    assert "most of its tokens" in html and 'href="/changes.csv"' in html


async def test_metrics_read_the_changes_at_most_once_a_minute(clock: ManualClock) -> None:
    """Scrapes seconds apart reuse one reading of the whole ledger's changes; a minute on,
    the next scrape reads again."""
    reads: list[datetime] = []

    class Counted:
        async def changes(self, since: datetime) -> list[ChangeFacts]:
            reads.append(since)
            return []

    costs = ChangeCosts(Counted(), clock, lambda model: model)  # type: ignore[arg-type]
    assert await costs.ended() == [] and await costs.ended() == []
    clock.advance(30)
    await costs.ended()
    assert len(reads) == 1
    clock.advance(31)
    await costs.ended()
    assert len(reads) == 2

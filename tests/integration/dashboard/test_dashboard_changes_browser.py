"""The Changes page in a real browser: Debian's Chromium, driven by Playwright, on the
dashboard's real server over a real ledger of a dozen runs (:mod:`tests.changes_rig`). The
nav leads to it; its rows are the report's; the model name an agent chose reads as text —
in the page as first loaded and with its live stream open — and nothing runs."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from bot.acl import Acl, Grant, Role
from bot.config.dashboard import DashboardSection
from bot.dashboard.access.signin import LINK_PATH, SignIns
from bot.dashboard.pages.metrics import Metrics
from bot.dashboard.serving.server import DashboardServer
from fleet.ledger.store import Ledger
from fleet.timing.clock import ManualClock
from tests.changes_rig import HOSTILE, build
from tests.integration.dashboard_rig import CHROMIUM, need_chromium
from tests.postgres_server import free_port
from tests.unit.bot.dashboard.test_dashboard_views import views
from tests.unit.chat_fakes import T0, FakeConnector

pytestmark = pytest.mark.integration

ANN = "@ann:example.org"


@pytest.fixture
async def changes_dashboard(tmp_path: Path) -> AsyncIterator[tuple[str, str]]:
    """The dashboard by its own name over the rig's ledger, and a fresh sign-in link."""
    need_chromium()
    clock = ManualClock(T0)
    ledger = await Ledger.open(tmp_path / "ledger.db", clock)
    state = tmp_path / "state"
    state.mkdir()
    server: DashboardServer | None = None
    try:
        since = await build(ledger, clock)
        clock.advance((since + timedelta(days=2) - clock.now()).total_seconds())
        signins = SignIns(ledger.dashboard, Acl([Grant(ANN, Role.VIEWER)]), clock)
        server = DashboardServer(
            DashboardSection(listen=f"127.0.0.1:{free_port()}").settings(state),
            views=views(ledger, clock, tmp_path, FakeConnector()),
            signins=signins,
            metrics=Metrics(),
            state_dir=state,
            environ={},
        )
        await server.start()
        base = server.settings.public_url
        secret = await signins.issue("matrix", ANN, ())
        assert secret is not None
        yield base, f"{base}{LINK_PATH}{secret}"
    finally:
        if server is not None:
            await server.stop()
        await ledger.close()


async def test_the_changes_page_shows_the_report_and_the_hostile_name_as_text(
    changes_dashboard: tuple[str, str],
) -> None:
    """Signed in, the nav's Changes link opens the page: a row per agent, runtime and model
    and the totals, the coder's four merged changes (the rig's old one within 30 days),
    the hostile model's name as the text of its cell, no element it wrote, no dialog and
    no error — as first loaded and with its live stream open."""
    from playwright.async_api import async_playwright

    base, link = changes_dashboard
    async with async_playwright() as play:
        chromium = await play.chromium.launch(
            executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"], headless=True
        )
        try:
            page = await chromium.new_page()
            dialogs: list[str] = []
            errors: list[str] = []
            page.on("dialog", lambda dialog: dialogs.append(dialog.message))
            page.on("pageerror", lambda error: errors.append(str(error)))
            await page.goto(link)
            async with page.expect_navigation():
                await page.click("#signin")
            async with page.expect_navigation():
                await page.click('nav a[href="/changes"]')
            assert page.url == f"{base}/changes"
            for when in ("loaded", "live"):
                if when == "live":
                    await page.wait_for_selector('#live-state[data-state="live"]', timeout=5000)
                found: dict[str, Any] = await page.evaluate(
                    """() => ({
                        rows: [...document.querySelectorAll('section.changes tbody tr')]
                            .map(tr => [...tr.querySelectorAll('td')].map(td => td.textContent)),
                        bold: document.querySelectorAll('main b').length,
                        scripts: document.querySelectorAll('main script').length,
                        csv: document.querySelector('a[href="/changes.csv"]') !== null,
                    })"""
                )
                rows = found["rows"]
                assert [row[:7] for row in rows] == [
                    ["coder", "claude", "claude-sonnet-4-5", "4", "1", "1", "0"],
                    ["tester", "codex", "gpt-5-codex", "1", "0", "1", "0"],
                    ["tester", "codex", HOSTILE, "0", "0", "0", "1"],
                    ["all", "", "", "5", "1", "2", "1"],
                ], when
                assert rows[0][7:11] == ["67 %", "$0.94", "$1.70", "$6.81"], when
                assert (found["bold"], found["scripts"], found["csv"]) == (0, 0, True), when
            assert dialogs == [] and errors == []
        finally:
            await chromium.close()

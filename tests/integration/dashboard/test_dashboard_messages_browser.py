"""An agent's messages on its page in a real browser: Debian's Chromium, driven by
Playwright, on the dashboard's real server over a real ledger holding hostile messages.
Every text an agent wrote (a script, an image tag as a receiver's name, a template
expression, a bidi override) reads as text and nothing of it runs; a secret learnt after
the message was sent is not on the page; and a message the postbox tells of shows on the
page live, without a reload."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from bot.acl import Acl, Grant, Role
from bot.config.dashboard import DashboardSection
from bot.dashboard.access.signin import LINK_PATH, SignIns
from bot.dashboard.pages.metrics import Metrics
from bot.dashboard.serving.server import DashboardServer
from fleet.ledger.records.peers import NewMessage
from fleet.ledger.store import Ledger
from fleet.timing.clock import ManualClock
from tests.integration.dashboard_rig import CHROMIUM, need_chromium
from tests.postgres_server import free_port
from tests.unit.bot.dashboard.test_dashboard_messages import (
    RECEIVER,
    SCRIPT,
    hostile_traffic,
    views,
)
from tests.unit.chat_fakes import T0

pytestmark = pytest.mark.integration

ANN = "@ann:example.org"


@pytest.fixture
async def messages_dashboard(
    tmp_path: Path,
) -> AsyncIterator[tuple[str, str, Ledger, DashboardServer, str]]:
    """The dashboard by its own name over hostile messages, and a fresh sign-in link."""
    need_chromium()
    clock = ManualClock(T0)
    ledger = await Ledger.open(tmp_path / "ledger.db", clock)
    state = tmp_path / "state"
    state.mkdir()
    server: DashboardServer | None = None
    secret = "dpl-" + secrets.token_hex(12)
    try:
        await hostile_traffic(ledger, clock, secret)
        signins = SignIns(ledger.dashboard, Acl([Grant(ANN, Role.VIEWER)]), clock)
        server = DashboardServer(
            DashboardSection(listen=f"127.0.0.1:{free_port()}").settings(state),
            views=views(ledger, clock, tmp_path, secret),
            signins=signins,
            metrics=Metrics(),
            state_dir=state,
            environ={},
        )
        await server.start()
        base = server.settings.public_url
        link = await signins.issue("matrix", ANN, ())
        assert link is not None
        yield base, f"{base}{LINK_PATH}{link}", ledger, server, secret
    finally:
        if server is not None:
            await server.stop()
        await ledger.close()


_READ = """() => ({
    rows: [...document.querySelectorAll('table.messages tbody tr')].map(row =>
        [...row.querySelectorAll('td')].map(cell => cell.textContent)),
    injected: document.querySelectorAll('main script, main img, table.messages b').length,
    marker: window.fleetwardenSamePage === true,
    body: document.body.innerText,
})"""


async def test_an_agents_messages_read_as_text_and_arrive_live(
    messages_dashboard: tuple[str, str, Ledger, DashboardServer, str],
) -> None:
    from playwright.async_api import async_playwright

    base, link, ledger, server, secret = messages_dashboard
    async with async_playwright() as play:
        chromium = await play.chromium.launch(
            executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"], headless=True
        )
        try:
            page = await chromium.new_page(viewport={"width": 1400, "height": 900})
            dialogs: list[str] = []
            errors: list[str] = []
            page.on("dialog", lambda dialog: dialogs.append(dialog.message))
            page.on("pageerror", lambda error: errors.append(str(error)))
            await page.goto(link)
            async with page.expect_navigation():
                await page.click("#signin")
            await page.goto(f"{base}/agents/coder")
            await page.wait_for_selector('#live-state[data-state="live"]', timeout=10000)
            await page.evaluate("() => { window.fleetwardenSamePage = true; }")
            found: dict[str, Any] = await page.evaluate(_READ)
            refused, delivered = found["rows"]
            assert refused[2:5] == ["coder", RECEIVER, "message"]
            assert refused[5] == f"refusedno agent named {RECEIVER}"
            assert refused[6] == "hi[U+202E]evil"
            assert delivered[2:5] == ["coder", "reviewer", "message"]
            assert delivered[6] == f"{SCRIPT}\n{{{{ 7*7 }}}} use [redacted: DEPLOY_TOKEN]"
            assert found["injected"] == 0 and secret not in found["body"]

            sent = await ledger.messages.add_message(
                NewMessage("coder", "tester", "<b>new</b> **work**", kind="task", task_id=9)
            )
            await server.on_message(sent)  # the postbox tells the dashboard
            await page.wait_for_function(
                "() => document.querySelectorAll('table.messages tbody tr').length === 3",
                timeout=10000,
            )
            found = await page.evaluate(_READ)
            assert found["marker"] is True  # the same page: swapped in live, not reloaded
            newest = found["rows"][0]
            assert newest[2:5] == ["coder", "tester", "task #9"]
            assert newest[6] == "<b>new</b> **work**" and found["injected"] == 0
            assert dialogs == [] and errors == []
        finally:
            await chromium.close()

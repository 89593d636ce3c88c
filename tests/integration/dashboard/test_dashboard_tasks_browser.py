"""The Tasks page in a real browser: Debian's Chromium, driven by Playwright, on the
dashboard's real server over a real register (:mod:`tests.tasks_rig`: a mission, tasks in
every state, real runs with metered usage). The nav leads to it; its columns are the
states in the board's order; a card says its projection beside its actual; every hostile
title reads as text and nothing it wrote runs; only a web address is a pull request's link;
and a task moved in the ledger moves on the page, live, without a reload."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from bot.acl import Acl, Grant, Role
from bot.config.dashboard import DashboardSection
from bot.dashboard.access.signin import LINK_PATH, SignIns
from bot.dashboard.pages.metrics import Metrics
from bot.dashboard.serving.server import DashboardServer
from fleet.ledger.records.tasks import TASK_STATES
from fleet.ledger.store import Ledger
from fleet.timing.clock import ManualClock
from tests.integration.dashboard_rig import CHROMIUM, need_chromium
from tests.postgres_server import free_port
from tests.tasks_rig import IMG, PULL, SCRIPT, Rig, build
from tests.unit.bot.dashboard.test_dashboard_guard import _views as views
from tests.unit.chat_fakes import T0

pytestmark = pytest.mark.integration

ANN = "@ann:example.org"


@pytest.fixture
async def tasks_dashboard(tmp_path: Path) -> AsyncIterator[tuple[str, str, Ledger, Rig]]:
    """The dashboard by its own name over the rig's register, and a fresh sign-in link."""
    need_chromium()
    clock = ManualClock(T0)
    ledger = await Ledger.open(tmp_path / "ledger.db", clock)
    state = tmp_path / "state"
    state.mkdir()
    server: DashboardServer | None = None
    try:
        rig = await build(ledger, clock, tmp_path)
        signins = SignIns(ledger.dashboard, Acl([Grant(ANN, Role.VIEWER)]), clock)
        server = DashboardServer(
            DashboardSection(listen=f"127.0.0.1:{free_port()}").settings(state),
            views=views(ledger, clock, tmp_path),
            signins=signins,
            metrics=Metrics(),
            state_dir=state,
            environ={},
        )
        await server.start()
        base = server.settings.public_url
        secret = await signins.issue("matrix", ANN, ())
        assert secret is not None
        yield base, f"{base}{LINK_PATH}{secret}", ledger, rig
    finally:
        if server is not None:
            await server.stop()
        await ledger.close()


_READ = """() => ({
    columns: [...document.querySelectorAll('.board .column')].map(c => c.dataset.state),
    cards: Object.fromEntries([...document.querySelectorAll('.board .card')].map(card => [
        card.dataset.task,
        {
            state: card.closest('.column').dataset.state,
            title: card.querySelector('.card-title').textContent,
            spend: card.querySelector('.spend').textContent,
            pull: card.querySelector('.pull') && [
                card.querySelector('.pull').tagName,
                card.querySelector('.pull').getAttribute('href'),
                card.querySelector('.pull').textContent,
            ],
        },
    ])),
    injected: document.querySelectorAll('main script, main img, main b b').length,
    title: document.title,
    marker: window.fleetwardenSamePage === true,
})"""


async def test_the_board_shows_tasks_by_state_escaped_and_moves_them_live(
    tasks_dashboard: tuple[str, str, Ledger, Rig],
) -> None:
    from playwright.async_api import async_playwright

    base, link, ledger, rig = tasks_dashboard
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
            async with page.expect_navigation():
                await page.click('nav a[href="/tasks"]')
            assert page.url == f"{base}/tasks"
            await page.wait_for_selector('#live-state[data-state="live"]', timeout=10000)
            await page.evaluate("() => { window.fleetwardenSamePage = true; }")
            found: dict[str, Any] = await page.evaluate(_READ)
            assert found["columns"] == list(TASK_STATES)
            cards = found["cards"]
            working, review, todo = (cards[str(i)] for i in (rig.working, rig.review, rig.todo))
            assert working["state"] == "working" and working["title"] == SCRIPT
            assert working["spend"] == "projected $0.50 (p90 $0.80) · actual $0.31"
            assert review["state"] == "review" and review["title"] == IMG
            assert review["spend"] == "projected 9,000 tokens (p90 12,000) · actual 4,333 tokens"
            assert review["pull"] == ["A", PULL, "pull request"]
            assert todo["pull"] == ["SPAN", None, "javascript:alert(1)"]
            assert todo["spend"] == "no projection: no finished task yet · actual 0 tokens"
            assert cards[str(rig.queued)]["title"] == "invoice [U+202E]gnp.exe"
            assert (found["injected"], found["title"]) == (0, "Tasks · Fleetwarden")

            await ledger.tasks.move(rig.todo, "working", "started by the test")
            moved = f'.column[data-state="working"] .card[data-task="{rig.todo}"]'
            await page.wait_for_selector(moved, timeout=15000)
            after: dict[str, Any] = await page.evaluate(_READ)
            assert after["marker"] is True  # the same page: moved live, never reloaded
            assert after["cards"][str(rig.todo)]["state"] == "working"
            assert (after["injected"], after["title"]) == (0, "Tasks · Fleetwarden")
            assert dialogs == [] and errors == []
        finally:
            await chromium.close()

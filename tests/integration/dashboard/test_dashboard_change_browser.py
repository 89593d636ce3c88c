"""An agent's change in a real browser: Debian's Chromium, driven by Playwright, on the
dashboard's real server over a real ledger and Fleet, with a desk that answers as the
repositories would. A file named as an image tag and a diff line that closes the ``<pre>``
and opens a script read as text — in the page as first loaded and in the fragment the live
stream swaps in — and nothing runs."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from bot.acl import Acl, Grant, Role
from bot.config.dashboard import DashboardSection
from bot.dashboard.access.signin import LINK_PATH, SignIns
from bot.dashboard.pages.change import CHANGE_EVERY
from bot.dashboard.pages.metrics import Metrics
from bot.dashboard.serving.server import DashboardServer
from fleet.ledger.store import Ledger
from fleet.timing.clock import SystemClock
from tests.integration.dashboard_rig import CHROMIUM, need_chromium
from tests.postgres_server import free_port
from tests.unit.bot.dashboard.test_dashboard_change import (
    AGENT,
    HOSTILE_NAME,
    Desk,
    hostile_desk,
    views,
)

pytestmark = pytest.mark.integration

ANN = "@ann:example.org"
CHANGE_EVERY_MS = int(CHANGE_EVERY.total_seconds() * 1000)


@pytest.fixture
async def change_dashboard(tmp_path: Path) -> AsyncIterator[tuple[str, str, Desk]]:
    """The dashboard by its own name, a fresh sign-in link for it, and its desk."""
    need_chromium()
    clock = SystemClock()
    ledger = await Ledger.open(tmp_path / "ledger.db", clock)
    signins = SignIns(ledger.dashboard, Acl([Grant(ANN, Role.VIEWER)]), clock)
    state = tmp_path / "state"
    state.mkdir()
    desk = hostile_desk()
    section = DashboardSection(listen=f"127.0.0.1:{free_port()}")
    server = DashboardServer(
        section.settings(state),
        views=await views(ledger, clock, tmp_path, desk),
        signins=signins,
        metrics=Metrics(),
        state_dir=state,
        environ={},
    )
    try:
        await server.start()
        base = server.settings.public_url
        secret = await signins.issue("matrix", ANN, ())
        assert secret is not None
        yield base, f"{base}{LINK_PATH}{secret}", desk
    finally:
        await server.stop()
        await ledger.close()


async def test_a_hostile_file_name_and_diff_line_read_as_text_in_chromium(
    change_dashboard: tuple[str, str, Desk],
) -> None:
    """Signed in, the agent's page shows the change: the file's name as text in its row and
    its section's heading, the diff's ``</pre><script>`` as text inside the ``<pre>``; no
    element an agent wrote (no ``img``, no ``script`` in the page's body), no dialog, no
    error — before and after the live stream replaced the fragment."""
    from playwright.async_api import async_playwright

    base, link, desk = change_dashboard
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
            await page.goto(f"{base}/agents/{AGENT}")
            await page.wait_for_selector('#live-state[data-state="live"]', timeout=5000)
            for when in ("loaded", "live"):
                if when == "live":  # the base moves: the stream's fragment replaces the page's
                    desk.changes[AGENT] = replace(desk.changes[AGENT], base_moved=5)
                    moved = "#change + p.facts >> text=the base has moved 5 commits"
                    await page.wait_for_selector(moved, timeout=CHANGE_EVERY_MS + 5000)
                found: dict[str, Any] = await page.evaluate(
                    """() => ({
                        heading: document.querySelector('.diff-file h3 code').textContent,
                        row: document.querySelector('table.files td a').textContent,
                        pre: document.querySelector('pre.diff').textContent,
                        pres: document.querySelectorAll('pre.diff').length,
                        images: document.querySelectorAll('main img').length,
                        scripts: document.querySelectorAll('main script').length,
                    })"""
                )
                assert found["heading"] == found["row"] == HOSTILE_NAME, when
                assert "+</pre><script>alert(1)</script>\n" in found["pre"], when
                assert (found["pres"], found["images"], found["scripts"]) == (3, 0, 0), when
            assert dialogs == [] and errors == []
        finally:
            await chromium.close()

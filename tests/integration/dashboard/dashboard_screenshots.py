"""The dashboard guide's screenshots, taken from the real ``fleetwarden run`` (stub
agents metered through the proxy by the fake provider) in Debian's Chromium.

Run from the repository root::

    .venv/bin/python -m tests.integration.dashboard.dashboard_screenshots docs/
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from tests.integration.console_bot import ConsoleBot
from tests.integration.dashboard_rig import browser, running, sign_in

PAGES = {
    "fleet": "/",
    "agent": "/agents/coder-1",
    "tasks": "/tasks",
    "budgets": "/budgets",
    "usage": "/usage",
    "accounts": "/accounts",
    "hosts": "/hosts",
    "approvals": "/approvals",
    "audit": "/audit",
}
AGENTS = ["asker", "coder-1", "coder-2", "reviewer"]


def main(out: Path) -> None:
    roster = [*AGENTS, "writer"]  # the mission's tasks are the writer's
    with tempfile.TemporaryDirectory(prefix="fw-shots-") as tmp, running(Path(tmp), roster) as rig:
        for name in AGENTS:
            rig.bot.command(f"spawn {name}", name, timeout=30)
        rig.bot.command("send asker ask 4", r"answer 4/4", timeout=30)
        rig.bot.command("send coder-1 please refactor the parser", r"received", timeout=30)
        rig.bot.command("send coder-2 ask 2", r"answer 2/2", timeout=30)
        rig.bot.command("stop reviewer", r"reviewer", timeout=30)
        missions(rig.bot)
        with browser() as chromium:
            page = chromium.new_page(viewport={"width": 1280, "height": 800})
            sign_in(page, rig.link())
            for name, path in PAGES.items():
                page.goto(rig.base + path)
                page.wait_for_selector('#live-state[data-state="live"]', timeout=10000)
                if name == "budgets":
                    page.wait_for_selector(".chart canvas", timeout=10000)
                page.screenshot(path=str(out / f"dashboard-{name}.png"), full_page=False)
                print(f"wrote {out / f'dashboard-{name}.png'}")


def missions(bot: ConsoleBot) -> None:
    """A mission with a task done, one working that waited for it, one to do."""
    bot.command("mission new release Ship 2.0", r"Mission release made", timeout=30)
    bot.command("task new --agent writer --mission release Draft the changelog", r"#1")
    bot.command("task new --agent writer --mission release --after 1 Announce it", r"#2")
    bot.command("task new --mission release Update the guide", r"#3")
    bot.command("task start 2", r"waits for #1", timeout=30)
    bot.command("task start 1", r"Agent writer started", timeout=30)
    bot.command("send writer ask 2", r"answer 2/2", timeout=30)
    bot.command("send writer exit", r"started now", timeout=60)


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "docs"))

"""``branches`` through the real ``fleetwarden run`` and its console, with real git: an
upstream that can no longer be reached (``git http-backend`` stopped) is said below the
table in sentences — since when the counts stand, then why, its first word a capital."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests import sandbox_need
from tests.git_upstream import served_app
from tests.integration.components import console_bot_on_app

pytestmark = [pytest.mark.integration, sandbox_need.BWRAP]

TOKEN = "ghp_branchesUpstreamTokenNoAgentHolds0123"
AGENTS = """\
  - name: coder
    runtime: command
    repo: app
    argv: [sh, -c, "echo coder > coder.txt"]
"""


def test_an_unreachable_upstream_is_said_in_sentences_under_branches(tmp_path: Path) -> None:
    """After the upstream stops: "…(by a merge, a spawn or Fleetwarden's start). Cannot
    reach the upstream of app …", never a lowercase word after the full stop."""
    with served_app(tmp_path / "upstream", TOKEN) as upstream:
        bot = console_bot_on_app(tmp_path, upstream, TOKEN, AGENTS)
        with bot:
            bot.command("spawn coder", r"Agent coder started")
            bot.expect(r"Branch\W+fw/coder/\d+ of \W*app\W*: 1 commit", timeout=60)
            upstream.stop()
            note = bot.command("branches", r"Not fetched: (.+)\n").group(1)
            assert "start). Cannot reach the upstream of app" in note, note
            assert bot.close() == 0

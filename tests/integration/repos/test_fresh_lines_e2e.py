"""An agent's branches through the real ``fleetwarden run`` and its console, with real git
behind ``git http-backend``: ``discard`` of a running agent's branch is refused before any
question; ``spawn --fresh`` of a running agent is refused, and of an ended one cuts a new
branch and says the earlier one stays; that earlier branch, named by its branch, is shown,
listed, pushed and merged while the agent runs on its new one."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests import sandbox_need
from tests.git_upstream import GitUpstream
from tests.integration.components import console_bot_on_app

pytestmark = [pytest.mark.integration, sandbox_need.BWRAP]

TOKEN = "ghp_freshLinesUpstreamTokenNoAgentHolds01"
AGENTS = """\
  - name: coder
    runtime: command
    repo: app
    argv: [sh, -c, "echo run $(date +%s%N) >> work.txt; read answer"]
"""
SUMMARY = r"Branch\W+(fw/coder/\d+) of \W*app\W*: (\d+) commits?"


def test_an_earlier_branch_is_reached_by_name_and_a_running_one_is_refused_at_once(
    tmp_path: Path, upstream: GitUpstream
) -> None:
    """A run kept on its branch, the next run on it running: `discard` and `spawn --fresh`
    refused at once; ended, `spawn --fresh` names the branch it leaves; `diff`, `branches`,
    `push` and `merge` reach that branch by its name while the agent runs on its new one."""
    bot = console_bot_on_app(tmp_path, upstream, TOKEN, AGENTS)
    with bot:
        bot.command("spawn coder", r"Agent coder started")
        bot.command("send coder done", r"Sent to coder")
        first = bot.expect(SUMMARY, timeout=60).group(1)
        bot.command("spawn coder", r"Agent coder started")
        bot.command("discard coder", r"`?stop coder`? first, then discard")
        assert f"coder is running and still writing {first}" in bot.output_since_command
        assert "Reply `yes`" not in bot.output_since_command
        bot.command("spawn coder --fresh", rf"coder is running on its branch {first}: `?stop")
        bot.command("send coder done", r"Sent to coder")
        assert bot.expect(SUMMARY, timeout=60).group(1) == first  # 2 commits on it now

        bot.command("spawn coder --fresh", r"Agent coder started(.|\n)*stays as it was")
        assert f"Its earlier branch {first} stays as it was" in bot.output_since_command
        bot.command(f"diff {first}", r"\+run \d+(.|\n)*\+run \d+")
        bot.command("branches", r"live branches: `?merge coder`? and the other verbs")
        rows = re.findall(r"^coder\s+(fw/coder/\d+)\s+app\s", bot.output_since_command, re.M)
        assert first in rows and len(rows) == 2
        newest = next(row for row in rows if row != first)
        bot.command(f"discard {newest}", r"`?stop coder`? first, then discard")
        bot.command(f"push {first}", rf"Pushed coder's branch {first} to the upstream of app")
        assert f"refs/heads/{first}" in upstream.branches("app")
        bot.command(f"merge {first}", r"Merged into main", timeout=60)
        assert "work.txt" in upstream.show("app", "show", "--stat", "main")
        bot.command("send coder done", r"Sent to coder")
        bot.expect(rf"Branch\W+{newest} of \W*app\W*: 1 commit", timeout=60)
        bot.command("discard coder", r"Reply `?yes`? here within 60 s")
        bot.command("yes", rf"Discarded coder's branch {newest}")
        assert "Something went wrong" not in bot.stdout
        assert bot.close() == 0

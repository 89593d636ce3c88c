"""A review agent its author keeps at work, through the real ``fleetwarden run`` and its
console, real git behind ``git http-backend`` and the real sandbox: ``coder`` (a
``command`` agent with ``reviewer`` among its peers) wakes ``reviewer`` (``wake: start``)
with a message, or hands it a task, before its run ends with its commit. The reviewer
still runs on that work when the round is asked, so the round ends at once — never
waiting for it — saying "no verdict: the reviewer is busy with the author's work", and the
task goes to a human with the ``merge`` that lands it. A reviewer busy with an operator's
work says only that it was already running (the control)."""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path

import pytest

from tests import sandbox_need
from tests.git_upstream import GitUpstream
from tests.integration.console_bot import ConsoleBot, clean_env, wait_until
from tests.integration.review.review_rig import HEAD, reviewed_by_reviewer, task_says

pytestmark = [pytest.mark.integration, sandbox_need.BWRAP]

TOKEN = "ghp_reviewBusyUpstreamTokenNoAgentHolds"
BUSY = "no verdict: the reviewer is busy with the author's work"
# The coder keeps its reviewer at work (HOW), then writes its work and ends. The reviewer
# approves a round asked of it; any other prompt it works on until told on its input.
CODER = 'fw-msg {how} reviewer "Look at the logs for me" {verify}; echo done >> work.txt'
REVIEWER = (
    'case "$FLEETWARDEN_PROMPT" in *"before a human does: round "*) fw-msg review approve fine;; '
    "*) read go;; esac"
)
CONFIG = (
    HEAD
    + reviewed_by_reviewer(2)
    + """\
agents:
  - name: coder
    runtime: command
    repo: app
    talks_to: [reviewer]
    argv: [sh, -c, '{coder}']
  - name: reviewer
    runtime: command
    wake: start
    role: reviews the app's changes before a human does
    argv: [sh, -c, '{reviewer}']
"""
)


def _rounds(root: Path) -> list[tuple[str, str]]:
    with sqlite3.connect(root / "state" / "ledger.db") as db:
        rows = db.execute("SELECT state, verdict FROM reviews ORDER BY id")
        return [(str(state), str(verdict)) for state, verdict in rows]


def _bot(tmp_path: Path, upstream: GitUpstream, coder: str) -> ConsoleBot:
    config = tmp_path / "fleetwarden.yaml"
    config.write_text(CONFIG.format(url=upstream.url("app"), coder=coder, reviewer=REVIEWER))
    return ConsoleBot(tmp_path, "--config", str(config), env=clean_env(APP_TOKEN=TOKEN))


@pytest.mark.parametrize(
    ("how", "verify", "took"),
    [("send", "--verify", r"coder's message #1"), ("task", "", r"coder's task #2")],
)
def test_a_reviewer_its_author_keeps_at_work_ends_the_round_saying_so(
    tmp_path: Path, upstream: GitUpstream, how: str, verify: str, took: str
) -> None:
    """The author's message (or handed task) keeps its ``wake: start`` reviewer running:
    the round ends at once with "no verdict: the reviewer is busy with the author's work",
    and the work is a human's, with the ``merge`` that lands it."""
    with _bot(tmp_path, upstream, CODER.format(how=how, verify=verify)) as bot:
        bot.command("task new --agent coder Greet the user", r"Task #1")
        bot.command("task start 1", r"coder")
        said = task_says(bot, 1, re.escape(BUSY))
        assert re.search(rf"reviewer's run \d+ took {took}", said), said
        assert "merge fw/coder/1" in said and "reviewer reviews" not in said
        [(state, verdict)] = _rounds(tmp_path)
        assert state == "ended" and verdict.startswith(BUSY)
        bot.command("ps", r"of \d+ agents? running")
        assert re.search(r"^reviewer\s+\S+\s+running\b", bot.output_since_command, re.M)
        bot.command("stop reviewer", r"reviewer")
        assert "Something went wrong" not in bot.stdout
        assert bot.close() == 0


def test_a_reviewer_busy_with_an_operators_work_is_only_already_running(
    tmp_path: Path, upstream: GitUpstream
) -> None:
    """The control: a reviewer an operator started (the author had no hand in its run)
    ends the round as a reviewer already running, not as one its author keeps busy."""
    with _bot(tmp_path, upstream, "echo done >> work.txt") as bot:
        bot.command("spawn reviewer", r"Agent reviewer started")
        bot.command("task new --agent coder Greet the user", r"Task #1")
        bot.command("task start 1", r"coder")
        said = task_says(bot, 1, r"no review by reviewer")
        assert "reviewer was already running" in said and BUSY not in said
        assert wait_until(lambda: _rounds(tmp_path) != [], timeout=30)
        [(state, verdict)] = _rounds(tmp_path)
        assert state == "ended" and not verdict.startswith(BUSY)
        bot.command("stop reviewer", r"reviewer")
        assert "Something went wrong" not in bot.stdout
        assert bot.close() == 0

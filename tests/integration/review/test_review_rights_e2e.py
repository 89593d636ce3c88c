"""A review agent's right to its verdict is read when the verdict comes, through the real
``fleetwarden run`` and its console, real git behind ``git http-backend`` and the real
sandbox: ``reviewer`` (a ``command`` agent calling the real ``fw-msg``) is asked round 1
of coder's task, Fleetwarden restarts with the repository's ``review:`` naming ``auditor``
instead while reviewer's run goes on (reattached), and reviewer's approval is refused with
why — recorded, told in chat — its round ended and the work a human's: never "approved by
reviewer"."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import sqlite3
from pathlib import Path

import pytest

from tests import sandbox_need
from tests.git_upstream import GitUpstream
from tests.integration.console_bot import ConsoleBot, clean_env, processes_where, wait_until
from tests.integration.review.review_rig import HEAD, task_says

pytestmark = [pytest.mark.integration, sandbox_need.BWRAP]

STARTUP = 60.0  # seconds for the first answer: the whole app starts before it, on a busy host
TOKEN = "ghp_reviewRightsUpstreamTokenNoAgentHolds"
CODER = 'printf "%s\\n" "$FLEETWARDEN_PROMPT" >> work.txt'
# The reviewer answers once its peers name auditor: after the restart, whose config adds
# auditor to its talks_to — so its verdict comes while the new config is the one in force.
REVIEWER = (
    "until fw-msg peers 2>/dev/null | grep -q auditor; do sleep 0.2; done; "
    'fw-msg review approve "looks right"; echo "reviewer-verdict-exit $?"'
)
CONFIG = (
    HEAD
    + """\
    review: {{agent: {review}, rounds: 2}}
agents:
  - name: coder
    runtime: command
    repo: app
    argv: [sh, -c, '{coder}']
  - name: reviewer
    runtime: command
    argv: [sh, -c, '{reviewer}']
{talks}  - name: auditor
    runtime: command
    argv: [sh, -c, 'true']
"""
)


def write_config(path: Path, url: str, *, review: str, talks: str = "") -> None:
    path.write_text(
        CONFIG.format(url=url, review=review, coder=CODER, reviewer=REVIEWER, talks=talks)
    )


def _running(bot: ConsoleBot, name: str, timeout: float = 90.0) -> None:
    """Ask ``ps`` until agent ``name`` is running."""
    row = re.compile(rf"^{name}\s+\S+(?: / \S+)?\s+running\b", re.M)

    def runs() -> bool:
        bot.command("ps", r"of \d+ agents? running", timeout=STARTUP)
        return row.search(bot.output_since_command) is not None

    assert wait_until(runs, timeout, interval=0.5), f"{name} never ran: {bot.output_since_command}"


def reviews(root: Path) -> list[tuple[str, str]]:
    with sqlite3.connect(root / "state" / "ledger.db") as db:
        return [(str(s), str(v)) for s, v in db.execute("SELECT state, verdict FROM reviews")]


def reviews_bound(root: Path) -> bool:
    """Whether the round asked is bound to the reviewer's run (its launch is over)."""
    with sqlite3.connect(root / "state" / "ledger.db") as db:
        rows = db.execute("SELECT run_id FROM reviews WHERE state = 'asked'").fetchall()
    return bool(rows) and all(row[0] is not None for row in rows)


def test_a_verdict_after_a_restart_that_named_another_reviewer_is_refused(
    tmp_path: Path, upstream: GitUpstream
) -> None:
    """reviewer, asked round 1, answers after a restart whose config names auditor as the
    repository's review agent: its approval is refused with why, recorded and told, its
    round ended and the task left to a human — not "approved by reviewer"."""
    config = tmp_path / "fleetwarden.yaml"
    url = upstream.url("app")
    write_config(config, url, review="reviewer")
    env = clean_env(APP_TOKEN=TOKEN)
    bot = ConsoleBot(tmp_path, "--config", str(config), env=env)
    again: ConsoleBot | None = None
    try:
        bot.command("task new --agent coder Greet the user", r"Task #1", timeout=STARTUP)
        bot.command("task start 1", r"coder")
        task_says(bot, 1, r"round 1 of 2: reviewer reviews", answer_within=STARTUP)
        _running(bot, "reviewer")
        assert wait_until(lambda: reviews_bound(tmp_path), STARTUP)
        assert bot.close() == 0, bot.stderr  # reviewer's run goes on while it is away

        write_config(config, url, review="auditor", talks="    talks_to: [auditor]\n")
        again = ConsoleBot(tmp_path, "--config", str(config), env=env)
        said = task_says(again, 1, r"verdict was refused|approved by", answer_within=STARTUP)
        assert "approved by reviewer" not in said
        assert "reviewer's verdict was refused: reviewer no longer reviews" in said
        assert "agent is auditor now" in said and "a human reviews it now" in said
        assert reviews(tmp_path) == [
            (
                "ended",
                "reviewer's verdict was refused: reviewer no longer reviews this repository's "
                "work (its review agent is auditor now)",
            )
        ]
        again.command("msgs", r"reviewer → coder")
        assert re.search(r"refused \(verdict refused: reviewer no longer reviews", again.stdout)
        assert again.close() == 0, again.stderr
    finally:
        for running in (bot, again):
            if running is not None and running.proc.poll() is None:
                running.kill()
        for pid in processes_where(
            lambda cwd, cmdline: cwd.startswith(str(tmp_path)) and b"reviewer-verdict" in cmdline
        ):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)  # agents outlive Fleetwarden by design
    assert "Something went wrong" not in bot.stdout + (again.stdout if again else "")

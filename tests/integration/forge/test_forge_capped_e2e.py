"""A forge run waits under the fleet's concurrency caps like any launch, end to end, on every
forge kind — GitHub and Gitea, each a strict fake held to its own published API description
— through the real ``fleetwarden run`` and a real git upstream: under ``limits.max_running:
1``, with another agent running, an issue given to ``coder`` is ``queued`` on the issue —
its status comment says so with the cap's words, and ``queue`` in chat lists it — nothing
of its branch is cut, and once the other agent ends the run starts, its status comment says
so, and its pull request is opened."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests import sandbox_need
from tests.git_upstream import GitUpstream
from tests.integration.components import SLUG, WRITER
from tests.integration.console_bot import ConsoleBot, wait_until
from tests.integration.forge.kinds import Forge
from tests.integration.forge_rig import (
    APP_ON_GITHUB,
    bot_comments,
    ledger_rows,
    post,
)

pytestmark = [pytest.mark.integration, sandbox_need.BWRAP]

TOKEN = "ghp_cappedUpstreamTokenNoAgentHolds123456"  # the git upstream's
SECRET = b"capped-webhook-secret-0123456789abcdef"
LABEL = "fleetwarden:coder"
CAP = "global max_running 1 reached (1 running)"
# The forge run's agent: it writes the notes, pushes through its git door and says done.
WORK = """
printf 'shipped on Friday\\n' > NOTES.md
git add NOTES.md && git commit -qm 'Write the release notes'
git push -q origin HEAD && fw-forge done ok 'Wrote the release notes.'
"""
CONFIG = (
    APP_ON_GITHUB
    + """\
limits:
  max_running: 1
agents:
  - name: coder
    runtime: command
    repo: app
    argv: [sh, -c, {script}]
  - name: other
    runtime: command
    argv: [sh, -c, "sleep 600"]
"""
)


def run_of(tmp_path: Path, issue: int) -> tuple[str, str] | None:
    """The state and summary of the newest forge run on ``issue``."""
    sql = "SELECT state, COALESCE(summary, '') FROM forge_runs WHERE issue = ? ORDER BY id DESC"
    rows = ledger_rows(tmp_path, sql, issue)
    return (str(rows[0][0]), str(rows[0][1])) if rows else None


def status_comment(forge: Forge, issue: int) -> str:
    """The run's status comment as it reads now (the bot's first comment on the issue)."""
    comments = bot_comments(forge.fake, SLUG, issue, forge.login)
    return comments[0] if comments else ""


def test_a_forge_run_waits_under_max_running_and_starts_when_the_other_agent_ends(
    tmp_path: Path, upstream: GitUpstream, forge_kind: Forge, forge_bot: tuple[ConsoleBot, int]
) -> None:
    """Another agent holds the one slot: the forge run is queued on its issue with the
    cap's words, its branch not cut; the other agent stopped, the run starts, says so on
    its status comment, and its pull request is opened."""
    (console, port), forge = forge_bot, forge_kind
    fake = forge.fake  # GitHub's or Gitea's: the same verbs
    console.command("spawn other", r"Agent other started")

    issue = fake.add_issue(str(SLUG), "Write the release notes", "Say when.",
                           author=WRITER, labels=[LABEL])  # fmt: skip
    headers, body = forge.labelled(issue, LABEL, SECRET)
    assert post(port, forge.name, headers, body)[0] == 202

    assert wait_until(lambda: run_of(tmp_path, issue) == ("queued", CAP), timeout=60), (
        run_of(tmp_path, issue),
        console.stdout + console.stderr,
    )
    queued = "⏳ Queued: it starts when its agent, its budget and the fleet's limits allow."
    assert wait_until(lambda: queued in status_comment(forge, issue), timeout=30)
    why = "Why: " + CAP.replace("_", "\\_")  # as markdown, once the admission said it
    said = wait_until(lambda: why in status_comment(forge, issue), timeout=30)
    assert said, status_comment(forge, issue)
    console.command("queue", rf"acme/app#{issue}.*coder.*global max_running 1 reached")
    branch = f"refs/heads/fw/coder/issue-{issue}"
    assert branch not in upstream.branches("app")
    assert fake.pulls(str(SLUG)) == []

    console.command("stop other", r"Stopped other")
    assert wait_until(lambda: len(fake.pulls(str(SLUG))) == 1, timeout=120), (
        run_of(tmp_path, issue),
        console.stdout + console.stderr,
    )
    assert branch in upstream.branches("app")
    done = "✅ Done: the pull request waits for review."
    assert wait_until(lambda: done in status_comment(forge, issue), timeout=30), status_comment(
        forge, issue
    )
    assert "Queued" not in status_comment(forge, issue)
    started = ledger_rows(
        tmp_path, "SELECT run_id FROM forge_runs WHERE issue = ? AND run_id IS NOT NULL", issue
    )
    assert len(started) == 1
    assert console.close() == 0

"""Whose an agent on a forge issue is, end to end, through the real ``fleetwarden run`` on
every forge kind — GitHub and Gitea, each a strict fake held to its own published API
description — and a real git upstream: once ``coder`` works on an issue (its pull
request open, its session ended), a chat ``spawn coder`` — plain, or with a prompt — is
refused by the admission's ownership stage in the words chat always gave, saying what
starts its next run; nothing is launched, and the spawn's task is cancelled saying why. A
label given to it meanwhile waits in the fleet's one spawn queue (origin forge, its run's
key) — listed by ``queue``, its status comment saying why — and the queue starts it once
the first run's pull request closes."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests import sandbox_need
from tests.integration.components import SLUG, WRITER
from tests.integration.console_bot import ConsoleBot, wait_until
from tests.integration.forge.kinds import Forge
from tests.integration.forge_rig import CODER_ON_APP, bot_comments, ledger_rows, post

pytestmark = [pytest.mark.integration, sandbox_need.BWRAP]

TOKEN = "ghp_ownershipUpstreamTokenNoAgentHolds12"  # the git upstream's
SECRET = b"ownership-webhook-secret-0123456789abcd"
# The agent: commits, pushes through its git door, says done and exits.
WORK = """
printf 'shipped on Friday\\n' > NOTES.md
git add NOTES.md && git commit -qm 'Write the release notes'
git push -q origin HEAD
fw-forge done ok 'Did what was asked.'
"""
CONFIG = CODER_ON_APP

LABEL = "fleetwarden:coder"

GOES_ON = (
    r"not started: coder works on .*#1.* \(\w+\), and is not running now: a review or "
    r"comment on its pull request starts its next run on its branch; it ends when its "
    r"pull request closes"
)


def test_a_chat_spawn_of_an_agent_on_an_issue_is_refused_by_the_admission(
    tmp_path: Path, forge_kind: Forge, forge_bot: tuple[ConsoleBot, int]
) -> None:
    """An agent working on a forge issue is not a chat spawn's: refused with what starts its
    next run, no run launched, a prompt's task cancelled with the same reason."""
    (console, port), forge, fake = forge_bot, forge_kind, forge_kind.fake
    issue = fake.add_issue(str(SLUG), "Write the release notes", "Say when.",
                           author=WRITER, labels=[LABEL])  # fmt: skip
    assert post(port, forge.name, *forge.labelled(issue, LABEL, SECRET))[0] == 202
    assert wait_until(lambda: len(fake.pulls(str(SLUG))) == 1, timeout=120), (
        console.stdout + console.stderr
    )
    runs = "SELECT count(*) FROM runs WHERE agent = 'coder'"
    ended = "SELECT count(*) FROM runs WHERE agent = 'coder' AND ended_at IS NOT NULL"
    assert wait_until(lambda: ledger_rows(tmp_path, ended) == [(1,)], timeout=60)
    pulled = "SELECT count(*) FROM forge_runs WHERE pull IS NOT NULL"  # its record says so
    assert wait_until(lambda: ledger_rows(tmp_path, pulled) == [(1,)], timeout=60)
    console.command("spawn coder", GOES_ON)
    console.command("spawn coder --prompt 'Do something else'", GOES_ON)
    assert ledger_rows(tmp_path, runs) == [(1,)]
    asked = "SELECT state, why FROM tasks WHERE source = 'chat'"
    [(state, why)] = ledger_rows(tmp_path, asked)
    assert state == "cancelled" and why.startswith("not started: coder works on")


WHY = "coder works on acme/app#1 until its PR closes"


def run_of(tmp_path: Path, issue: int) -> tuple[int, str, str]:
    """Issue ``issue``'s forge run: its key, state and summary."""
    sql = "SELECT id, state, summary FROM forge_runs WHERE issue = ? ORDER BY id DESC"
    rows = ledger_rows(tmp_path, sql, issue)
    return (int(rows[0][0]), str(rows[0][1]), str(rows[0][2])) if rows else (0, "", "")


def test_a_label_for_an_agent_on_another_issue_waits_in_the_spawn_queue_until_its_pr_closes(
    tmp_path: Path, forge_kind: Forge, forge_bot: tuple[ConsoleBot, int]
) -> None:
    """The second issue's run waits in the spawn queue (origin forge, its key), `queue`
    and its status comment say why; the first pull request merged, the queue starts it as
    a forge run, and its place in the queue is gone."""
    (console, port), forge, fake = forge_bot, forge_kind, forge_kind.fake
    first = fake.add_issue(str(SLUG), "Write the release notes", "Say when.",
                           author=WRITER, labels=[LABEL])  # fmt: skip
    second = fake.add_issue(str(SLUG), "More notes", "Say who.",
                            author=WRITER, labels=[LABEL])  # fmt: skip
    for number in (first, second):
        labelled = forge.labelled(number, LABEL, SECRET, delivery=f"label-{number}")
        assert post(port, forge.name, *labelled)[0] == 202
        if number == first:
            assert wait_until(lambda: len(fake.pulls(str(SLUG))) == 1, timeout=120), (
                console.stdout + console.stderr
            )
    assert wait_until(lambda: run_of(tmp_path, second)[1:] == ("queued", WHY), timeout=60), run_of(
        tmp_path, second
    )
    key = run_of(tmp_path, second)[0]
    entries = "SELECT origin, ref, reason FROM spawn_queue WHERE agent = 'coder'"
    assert ledger_rows(tmp_path, entries) == [("forge", str(key), WHY)]
    console.command("queue", r"acme/app#2.*coder.*coder works on acme/app#1")
    assert wait_until(
        lambda: "until its PR closes" in bot_comments(fake, SLUG, second, forge.login)[0],
        timeout=30,
    ), bot_comments(fake, SLUG, second, forge.login)

    # The first pull request merged: the queue starts the second issue's run.
    [pull] = fake.pulls(str(SLUG))
    assert post(port, forge.name, *forge.merged(pull.number, "fw/coder/issue-1", SECRET))[0] == 202
    assert wait_until(lambda: run_of(tmp_path, second)[1] != "queued", timeout=120), (
        console.stdout + console.stderr
    )
    assert wait_until(lambda: len(fake.pulls(str(SLUG))) == 2, timeout=120), (
        console.stdout + console.stderr
    )
    assert ledger_rows(tmp_path, entries) == []  # its place taken by the forge's start
    [(run_id, branch)] = ledger_rows(
        tmp_path, "SELECT run_id, branch FROM forge_runs WHERE id = ?", key
    )
    assert run_id is not None and branch == "fw/coder/issue-2"
    runs = "SELECT count(*) FROM runs WHERE agent = 'coder'"
    assert ledger_rows(tmp_path, runs) == [(2,)]

"""An approval is of one commit, through the real ``fleetwarden run`` and its console, real
git behind ``git http-backend`` and ``command`` agents: the review agent approves commit A;
the coder's run is restarted on the same task and branch and commits B. With rounds left, B
is reviewed in the next round and ``merge`` refuses B until that round approves it; with
none left, the line is marked "changed since it was approved" in the task and in chat,
``merge`` and ``push`` refuse it — before and after Fleetwarden restarts — saying which commit
was approved and the fix, ``--unreviewed`` is refused to an operator and lands B for an
admin, in the audit trail."""

from __future__ import annotations

import re
import sqlite3
import subprocess
from pathlib import Path

import pytest

from tests import sandbox_need
from tests.git_upstream import GitUpstream
from tests.integration.console_bot import FLEETWARDEN, ConsoleBot, clean_env, wait_until
from tests.integration.review.review_rig import HEAD, PAIR, reviewed_by_reviewer, task_says

pytestmark = [pytest.mark.integration, sandbox_need.BWRAP]

TOKEN = "ghp_reviewApprovedCommitUpstreamTokenNone"
CODER = 'printf "%s\\n" "$FLEETWARDEN_PROMPT" >> work.txt'
# Round 1 is approved at once; a later round waits for `send reviewer go` on its input.
REVIEWER = (
    'case "$FLEETWARDEN_PROMPT" in *"before a human does: round 1 of"*) '
    'fw-msg review approve "fine as it is";; '
    '*) read go; fw-msg review approve "still fine";; esac'
)
CONFIG = (
    HEAD.replace("console: {{}}", "console: {{role: {role}}}")
    + reviewed_by_reviewer("{rounds}")
    + PAIR
)
SHA = r"([0-9a-f]{12})"


def _config(tmp_path: Path, upstream: GitUpstream, *, rounds: int, role: str = "admin") -> Path:
    config = tmp_path / "fleetwarden.yaml"
    config.write_text(
        CONFIG.format(
            url=upstream.url("app"), coder=CODER, reviewer=REVIEWER, rounds=rounds, role=role
        )
    )
    return config


def _task_says(bot: ConsoleBot, task: int, pattern: str, timeout: float = 90.0) -> re.Match[str]:
    """Ask ``task N`` until its first line matches ``pattern``; the match."""
    found = re.search(pattern, task_says(bot, task, pattern, timeout))
    assert found is not None
    return found


def _approved_then_restarted(bot: ConsoleBot) -> str:
    """Task 1 done by coder and approved by reviewer at commit A, then coder's run
    restarted on the same task and branch (it commits B); A's short sha."""
    bot.command("task new --agent coder Greet the user", r"Task #1")
    bot.command("task start 1", r"coder")
    approved = _task_says(bot, 1, rf"approved by reviewer at {SHA}").group(1)
    bot.command("msgs", r"reviewer → coder")
    assert "approved (round 1 of" in bot.output_since_command
    assert f"commit {approved}" in bot.output_since_command  # chat names the commit
    bot.command("restart coder", r"coder")
    return approved


def test_a_commit_after_the_approval_is_reviewed_in_the_next_round_before_it_merges(
    tmp_path: Path, upstream: GitUpstream
) -> None:
    """Rounds left: commit B after the approval of A asks round 2 on B; `merge` refuses B
    (A was approved, round 2 reads B) naming both; once round 2 approves B it merges."""
    config = _config(tmp_path, upstream, rounds=2)
    bot = ConsoleBot(tmp_path, "--config", str(config), env=clean_env(APP_TOKEN=TOKEN))
    with bot:
        approved = _approved_then_restarted(bot)
        asked = _task_says(bot, 1, rf"round 2 of 2: reviewer reviews {SHA}")
        tip = asked.group(1)
        assert tip != approved
        assert f"changed since it was approved at {approved}" in asked.string
        bot.command("task 1", r"Review: ")
        assert (
            f"Review: reviewer approved commit {approved} (round 1 of 2); only that commit "
            f"lands; round 2 of 2 reads {tip}"
        ) in bot.output_since_command
        bot.command("merge fw/coder/1", r"changed since it was approved|Merged into", timeout=60)
        refused = bot.output_since_command
        assert "Merged into" not in refused, refused
        assert f"approved commit {approved}" in refused and f"its tip is {tip}" in refused
        assert "round 2 of 2 of its review (reviewer) reads" in refused
        assert "merge --unreviewed fw/coder/1 lands it" in refused
        assert "Nothing was merged" in refused
        assert "work.txt" not in upstream.show("app", "ls-tree", "--name-only", "main")
        bot.command("send reviewer go", r"Sent to reviewer")
        _task_says(bot, 1, rf"approved by reviewer at {tip}")
        bot.command("merge fw/coder/1", r"Merged into main", timeout=60)
        assert upstream.show("app", "show", "main:work.txt").count("Greet the user") >= 1
        assert "Something went wrong" not in bot.stdout
        assert bot.close() == 0


def _audit(state: Path) -> list[tuple[str, str, str]]:
    """The audit trail's (command text, outcome, detail) rows."""
    ledger = next(state.glob("*.db"), None) or next(state.glob("*.sqlite*"))
    with sqlite3.connect(ledger) as conn:
        rows = conn.execute("SELECT text, outcome, detail FROM audit ORDER BY id").fetchall()
    return [(str(a), str(b), str(c)) for a, b, c in rows]


def test_a_commit_after_the_last_approval_is_held_from_landing_until_an_admin_says(
    tmp_path: Path, upstream: GitUpstream
) -> None:
    """No round left: commit B after the approval of A marks the line changed since it was
    approved (task and chat); `push` and `merge` refuse B with A named and the fix, also
    after a restart; `--unreviewed` is refused to an operator and lands B for an admin,
    audited with the commit that was approved."""
    config = _config(tmp_path, upstream, rounds=1, role="operator")
    bot = ConsoleBot(tmp_path, "--config", str(config), env=clean_env(APP_TOKEN=TOKEN))
    with bot:
        approved = _approved_then_restarted(bot)
        marked = _task_says(bot, 1, rf"changed since it was approved \(.* tip {SHA}, no round")
        tip = marked.group(1)
        assert f"reviewer approved {approved}" in marked.string and tip != approved
        assert "merge --unreviewed fw/coder/1" in marked.string
        bot.command("task 1", r"Review: ")
        said = f"Review: reviewer approved commit {approved} (round 1 of 1); only that commit"
        assert said in bot.output_since_command
        told = re.compile(r"review refused: changed since it was approved: reviewer approved")
        assert wait_until(lambda: told.search(bot.stdout), 30), bot.stdout  # told in chat
        bot.command("push fw/coder/1", r"changed since it was approved|Pushed", timeout=60)
        assert "Pushed" not in bot.output_since_command
        assert f"approved commit {approved}" in bot.output_since_command
        assert "Nothing was pushed" in bot.output_since_command
        bot.command("merge --unreviewed fw/coder/1", r"needs the admin role")
        assert "you are operator" in bot.output_since_command
        assert bot.close() == 0
    board = subprocess.run(
        [str(FLEETWARDEN), "tasks", "--markdown", "--config", str(config)],
        capture_output=True, text=True, timeout=60, env=clean_env(APP_TOKEN=TOKEN), cwd=tmp_path,
    )  # fmt: skip
    assert board.returncode == 0, board.stdout + board.stderr
    written = (tmp_path / "TASKS.md").read_text()  # the board as the register exports it
    assert f"reviewer approved {approved}; tip {tip}" in written, written
    config.write_text(config.read_text().replace("role: operator", "role: admin"))
    bot = ConsoleBot(tmp_path, "--config", str(config), env=clean_env(APP_TOKEN=TOKEN))
    with bot:
        bot.command("merge fw/coder/1", r"changed since it was approved|Merged into", timeout=60)
        refused = bot.output_since_command
        assert "Merged into" not in refused, refused
        assert f"approved commit {approved}" in refused and f"its tip is {tip}" in refused
        assert "merge --unreviewed fw/coder/1 lands it" in refused
        bot.command("merge --unreviewed fw/coder/1", r"Merged into main", timeout=60)
        assert "Something went wrong" not in bot.stdout
        assert bot.close() == 0
    assert "Greet the user" in upstream.show("app", "show", "main:work.txt")
    rows = _audit(tmp_path / "state")
    landed = [r for r in rows if r[0].startswith("merge --unreviewed") and r[1] == "ok"]
    assert landed and f"--unreviewed; approved was {approved}" in landed[-1][2], rows[-4:]
    denied = [r for r in rows if r[0].startswith("merge --unreviewed") and r[1] != "ok"]
    assert denied, rows[-6:]


def test_autopush_of_a_commit_after_the_approval_is_held_and_said(
    tmp_path: Path, upstream: GitUpstream
) -> None:
    """With ``autopush``, the run's end after the approval of A does not push B upstream,
    and its summary in chat says why and names the approved commit."""
    config = _config(tmp_path, upstream, rounds=1)
    config.write_text(config.read_text().replace("    review:", "    autopush: true\n    review:"))
    bot = ConsoleBot(tmp_path, "--config", str(config), env=clean_env(APP_TOKEN=TOKEN))
    ref = "refs/heads/fw/coder/1"
    with bot:
        approved = _approved_then_restarted(bot)
        pushed = upstream.branches("app").get(ref)
        assert pushed is not None and pushed.startswith(approved)  # the first run's end
        marked = _task_says(bot, 1, rf"changed since it was approved \(.* tip {SHA}, no round")
        tip = marked.group(1)
        held = "Not pushed: fw/coder/1 of app changed since it was approved: reviewer approved "
        # The run's summary is said as the run ends, which may be after the task's line moved.
        bot.expect_anywhere(
            re.escape(f"{held}commit {approved} (round 1 of 1), and its tip is {tip}")
        )
        assert "push --unreviewed fw/coder/1` pushes it" in bot.stdout
        assert upstream.branches("app").get(ref) == pushed, f"{tip} was pushed"
        assert "Something went wrong" not in bot.stdout
        assert bot.close() == 0

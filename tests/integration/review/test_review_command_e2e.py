"""The review loop with ``command`` agents — no live session to type into — through the
real ``fleetwarden run`` and its console, real git behind ``git http-backend`` and the
real sandbox: a task's coder run ends with its commit, ``reviewer`` (a ``command`` agent
calling the real ``fw-msg``) asks for changes in round 1, the coder's next run starts on the
same branch with the framed verdict as its prompt, its done asks round 2, the reviewer
approves, and a human's ``merge`` lands both commits. A coder whose branch was discarded
while the reviewer read it gets no run: the task says what a human does next."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests import sandbox_need
from tests.git_upstream import GitUpstream
from tests.integration.console_bot import ConsoleBot, clean_env, wait_until
from tests.integration.review.review_rig import HEAD, PAIR, reviewed_by_reviewer, task_says

pytestmark = [pytest.mark.integration, sandbox_need.BWRAP]

TOKEN = "ghp_reviewCommandUpstreamTokenNoAgentHold"
# The coder writes its prompt into the work (the task's title, then the framed verdict)
# and ends; the reviewer asks for changes in round 1 and approves round 2.
CODER = 'printf "%s\\n" "$FLEETWARDEN_PROMPT" >> work.txt'
REVIEWER = (
    'case "$FLEETWARDEN_PROMPT" in *"before a human does: round 1 of 2"*) '
    'fw-msg review changes "say please in work.txt";; '
    '*) fw-msg review approve "polite now";; esac'
)
CONFIG = HEAD + reviewed_by_reviewer(2) + PAIR


def _running(bot: ConsoleBot, name: str, timeout: float = 90.0) -> None:
    """Ask ``ps`` until agent ``name`` is running (a review's run starts after the task
    says its round began)."""
    row = re.compile(rf"^{name}\s+\S+(?: / \S+)?\s+running\b", re.M)

    def runs() -> bool:
        bot.command("ps", r"of \d+ agents? running")
        return row.search(bot.output_since_command) is not None

    assert wait_until(runs, timeout, interval=0.5), f"{name} never ran: {bot.output_since_command}"


def test_changes_start_the_command_coders_next_run_and_round_two_lands_by_merge(
    tmp_path: Path, upstream: GitUpstream
) -> None:
    """Round 1's ``changes`` start coder's next run on fw/coder/1 with the framed verdict;
    its done asks round 2, whose approval leaves the task for a human; ``merge`` lands it."""
    config = tmp_path / "fleetwarden.yaml"
    config.write_text(CONFIG.format(url=upstream.url("app"), coder=CODER, reviewer=REVIEWER))
    bot = ConsoleBot(tmp_path, "--config", str(config), env=clean_env(APP_TOKEN=TOKEN))
    with bot:
        bot.command("task new --agent coder Greet the user", r"Task #1")
        bot.command("task start 1", r"coder")
        task_says(bot, 1, r"round 2 of 2: reviewer reviews|approved by reviewer")
        said = task_says(bot, 1, r"approved by reviewer")
        assert "merge fw/coder/1" in said and "review" in said
        bot.command("msgs", r"reviewer → coder")
        shown = bot.output_since_command  # each verdict names the commit it read
        assert re.search(r"changes \(round 1 of 2, commit [0-9a-f]{12}\): say please", shown)
        assert re.search(r"approved \(round 2 of 2, commit [0-9a-f]{12}\): polite now", shown)
        bot.command("merge fw/coder/1", r"Merged into main", timeout=60)
        work = upstream.show("app", "show", "main:work.txt")
        assert "Greet the user" in work
        assert "reviewer asks for changes (round 1 of 2" in work  # the framed verdict
        assert "> say please in work.txt" in work
        assert "Something went wrong" not in bot.stdout
        assert bot.close() == 0


def test_changes_for_a_branch_discarded_meanwhile_say_what_a_human_does(
    tmp_path: Path, upstream: GitUpstream
) -> None:
    """The coder's branch is discarded while the reviewer reads it: its ``changes`` start
    no run (it would cut a new branch); the task says why and that `task start` runs coder
    again — never 'reviewer reviews' — and nothing waits in the queue to start unseen."""
    config = tmp_path / "fleetwarden.yaml"
    waits = f"read go; {REVIEWER}"  # answers once told to, on its input
    config.write_text(CONFIG.format(url=upstream.url("app"), coder=CODER, reviewer=waits))
    bot = ConsoleBot(tmp_path, "--config", str(config), env=clean_env(APP_TOKEN=TOKEN))
    with bot:
        bot.command("task new --agent coder Greet the user", r"Task #1")
        bot.command("task start 1", r"coder")
        task_says(bot, 1, r"round 1 of 2: reviewer reviews")
        _running(bot, "reviewer")  # reading the branch when it is discarded
        bot.command("discard fw/coder/1", r"Reply `?yes`? here within 60 s")
        bot.command("yes", r"Discarded coder's branch fw/coder/1")
        bot.command("send reviewer go", r"Sent to reviewer")
        said = task_says(bot, 1, r"changes went no further")
        assert "reviewer reviews" not in said and "round 1 of 2" in said
        assert "fw/coder/1 is no longer coder's branch" in said
        assert "`task start 1` runs coder again on a new branch" in said
        bot.command("msgs", r"reviewer → coder")
        assert "refused" in bot.output_since_command
        # The queue's own answer (the task's notices may come between its lines and ours).
        bot.command("queue", r"Nothing is queued: every launch asked for has started\.")
        assert "Something went wrong" not in bot.stdout
        assert bot.close() == 0

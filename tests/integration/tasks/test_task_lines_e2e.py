"""Tasks follow their line, through the real ``fleetwarden run`` console and real git behind
``git http-backend``: a ``merge`` that lands a task's branch ends the task ``done`` as a
forge merge does; a ``spawn --prompt`` that goes on an earlier task's unmerged branch says
so and names ``--fresh``, and a merge of that branch ends both tasks."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests import sandbox_need
from tests.git_upstream import GitUpstream
from tests.integration.components import console_bot_on_app
from tests.integration.console_bot import ConsoleBot

pytestmark = [pytest.mark.integration, sandbox_need.BWRAP]

TOKEN = "ghp_taskLinesUpstreamTokenNoAgentHolds012"
AGENTS = """\
  - name: coder
    runtime: command
    repo: app
    argv: [sh, -c, "echo \\"$FLEETWARDEN_PROMPT\\" >> work.txt; read answer"]
"""
SUMMARY = r"Branch\W+(fw/coder/\d+) of \W*app\W*: (\d+) commits?"


def _bot(tmp_path: Path, upstream: GitUpstream) -> ConsoleBot:
    return console_bot_on_app(tmp_path, upstream, TOKEN, AGENTS)


def test_a_merge_of_a_tasks_branch_ends_the_task_done(
    tmp_path: Path, upstream: GitUpstream
) -> None:
    """A spawn's task whose run left a change is up for review; `merge` of its branch lands
    it and the task is done, said in the merge's answer and in the task's story."""
    bot = _bot(tmp_path, upstream)
    with bot:
        bot.command('spawn coder --prompt "add the work file"', r"Task #1 add-the-work-file")
        bot.command("send coder done", r"Sent to coder")
        branch = bot.expect(SUMMARY, timeout=60).group(1)
        bot.command("task 1", r"Task #1 add-the-work-file\W* · review")
        bot.command(f"merge {branch}", r"Merged into main", timeout=60)
        bot.expect(r"Task #1 add-the-work-file is done: its change is merged")
        assert "work.txt" in upstream.show("app", "show", "--stat", "main")
        bot.command("task 1", r"Task #1 add-the-work-file\W* · done")
        assert f"{branch} merged into main" in bot.output_since_command
        bot.command("tasks", r"Tasks: 0 open, 1 ended")


def test_a_spawn_on_an_earlier_tasks_unmerged_branch_says_so_and_names_fresh(
    tmp_path: Path, upstream: GitUpstream
) -> None:
    """The second `spawn --prompt` goes on the first task's unmerged branch: its answer says
    which task's branch it is and how to start on a branch of its own (`--fresh`); merged,
    both tasks are done; a `--fresh` spawn says nothing of the kind."""
    bot = _bot(tmp_path, upstream)
    with bot:
        bot.command('spawn coder --prompt "first part"', r"Task #1 first-part")
        bot.command("send coder done", r"Sent to coder")
        branch = bot.expect(SUMMARY, timeout=60).group(1)
        bot.command('spawn coder --prompt "second part"', r"Task #2 second-part")
        bot.expect(rf"goes on {branch}, the branch of task #1 first-part \(review\), not merged")
        bot.expect(r"`?spawn coder --fresh --prompt …`? starts the new task on a branch")
        bot.command("send coder done", r"Sent to coder")
        assert bot.expect(SUMMARY, timeout=60).group(1) == branch
        bot.command(f"merge {branch}", r"Merged into main", timeout=60)
        bot.expect(r"Task #1 first-part is done: its change is merged\. Task #2 second-part")
        bot.command("tasks", r"Tasks: 0 open, 2 ended")
        bot.command('spawn coder --prompt "third part"', r"Task #3 third-part")
        assert "not merged yet" not in bot.output_since_command  # a new branch: nothing to say
        bot.command("send coder done", r"Sent to coder")
        third = bot.expect(SUMMARY, timeout=60).group(1)
        assert third != branch
        bot.command('spawn coder --fresh --prompt "fourth part"', r"Task #4 fourth-part")
        assert "not merged yet" not in bot.output_since_command
        bot.command("stop coder", r"Stopped coder")

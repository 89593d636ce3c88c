"""Pipelines through the real ``fleetwarden run`` console, ``command`` agents on a real
repository behind ``git http-backend``: a mission made from a pipeline passes its gates —
``auto``, a ``check`` that exits 0 in the stage's checkout (and finds there that the stage's
prompt carried the stage before's branch), an ``approve`` an operator answers — to done;
another fails its ``check`` gate: the mission stops, saying why, and its later stage never
starts."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests import sandbox_need
from tests.git_upstream import GitUpstream
from tests.integration.components import console_bot_on_app
from tests.integration.console_bot import ConsoleBot

pytestmark = [pytest.mark.integration, sandbox_need.BWRAP]

TOKEN = "ghp_pipelinesUpstreamTokenNoAgentHolds0"
WRITES = 'argv: [sh, -c, \'printf "%s\\n" "$FLEETWARDEN_PROMPT" > {file}\']'
CONFIG = f"""\
  - name: planner
    runtime: command
    repo: app
    {WRITES.format(file="plan.txt")}
  - name: coder
    runtime: command
    repo: app
    {WRITES.format(file="code.txt")}
  - name: checker
    class: reviewer
    runtime: command
    repo: app
    {WRITES.format(file="review.txt")}
pipelines:
  ship:
    stages:
      plan: {{agent: planner}}
      code:
        agent: coder
        gate: {{check: [sh, -c, 'grep -q "^Branch: fw/planner/" code.txt && echo found']}}
      review: {{role: reviewer, gate: approve}}
  broken:
    stages:
      plan:
        agent: planner
        gate: {{check: [sh, -c, 'echo "3 tests failed"; exit 3']}}
      code: {{agent: coder}}
"""


def _bot(tmp_path: Path, upstream: GitUpstream) -> ConsoleBot:
    return console_bot_on_app(tmp_path, upstream, TOKEN, CONFIG)


def test_a_pipeline_passes_its_gates_to_done(tmp_path: Path, upstream: GitUpstream) -> None:
    """Plan (auto), code (a check run in the coder's checkout, which finds the planner's
    branch in the prompt the coder was given) and review (an operator's approval) run one
    after another; `mission M` shows every stage passed."""
    bot = _bot(tmp_path, upstream)
    with bot:
        bot.command(
            "mission new login --pipeline ship Fix the login page",
            r"Mission login made from pipeline ship: plan \(#1 plan-fix-the-login-page",
        )
        bot.expect(r"Task #1 starts now", timeout=30)
        bot.expect(r"What task #2 waited for is done; started now", timeout=90)
        bot.expect(r"What task #3 waited for is done; started now", timeout=90)
        bot.expect(r"Mission login: stage \W*review\W* .* gate asks an operator", timeout=90)
        bot.expect(r"mission approve login review\W* approves that commit and the mission is done")
        bot.command("mission login", r"Stages of pipeline ship")
        shown = bot.output_since_command
        assert "gate check: sh -c" in shown and "passed (check" in shown
        assert "gate approve: asks an operator" in shown
        bot.command("mission approve login code", r"stage code of mission login asks no answer")
        bot.command(
            "mission approve login review", r"Stage review of mission login passed its gate"
        )
        done = bot.expect(r"Mission login: every stage passed its gate; it is done", timeout=30)
        # The answer comes before the news it caused.
        assert bot.stdout.index("Stage review of mission login passed its gate") < done.start()
        bot.command("mission login", r"3 of 3 done")
        assert bot.output_since_command.count(": passed") == 3
        bot.command(
            "task 3", r"Task #3 review-fix-the-login\W* · done \(stage review passed its gate\)"
        )


def test_a_failed_check_gate_stops_the_mission(tmp_path: Path, upstream: GitUpstream) -> None:
    """The plan's check exits 3: the mission stops there, told with the exit code and the
    end of the check's output; the code stage is cancelled and never ran."""
    bot = _bot(tmp_path, upstream)
    with bot:
        bot.command("mission new bad --pipeline broken Try it", r"Mission bad made")
        bot.expect(r"Mission bad stopped at stage \W*plan\W*", timeout=90)
        bot.expect(r"its check \W*sh -c .*\W* exited 3; the end of its output:")
        bot.expect(r"3 tests failed")
        bot.expect(r"Never started: code \(#2\)")
        bot.command("task 2", r"Task #2 code-try-it\W* · cancelled")
        assert "No run yet." in bot.output_since_command
        assert not any(tmp_path.rglob("code.txt"))  # the coder never ran
        bot.command("mission bad", r"Stages of pipeline broken")
        shown = bot.output_since_command
        assert "failed (its check" in shown and "never started" in shown
        bot.command("mission approve bad", r"no stage of mission bad waits")

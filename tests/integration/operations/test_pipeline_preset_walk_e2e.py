"""The pipeline preset's walk through the real CLI, with no key and no hand edit, as
docs/operations.md tells it: `init --preset pipeline`, `run`, a mission of pipeline `ship`
whose stub stages are ended with `send AGENT exit` (the coder's commit made with `send coder
commit …`), an early `mission approve` told what it waits for, the last stage's ask coming
after the news of the reviewer's run ending, asking about coder's change (the review commits
nothing of its own) and saying that a yes ends the mission, that yes naming the `merge` of
coder's branch, and that merge landing it."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from tests import sandbox_need
from tests.integration.console_bot import FLEETWARDEN, ConsoleBot, clean_env

pytestmark = [pytest.mark.integration, sandbox_need.BWRAP]

STARTUP = 60.0  # the whole app starts before the first answer, on a busy host
NO_KEYS = ("ANTHROPIC_API_KEY", "ANTHROPIC_AUTH_TOKEN", "OPENAI_API_KEY", "ANTHROPIC_BASE_URL")


def _env() -> dict[str, str]:
    return {k: v for k, v in clean_env().items() if k not in NO_KEYS}


def test_the_pipeline_preset_walks_to_done(tmp_path: Path) -> None:
    """plan, code (gate `make test`) and review (gate approve) go on as each stub is told
    `exit`; an early approve, bare or of a stage, says whose run must end; the last ask
    follows its run's end and is of coder's branch, which its yes sends to `merge`."""
    made = subprocess.run(
        [str(FLEETWARDEN), "init", "fleet", "--preset", "pipeline"],
        cwd=tmp_path, env=_env(), stdin=subprocess.DEVNULL, capture_output=True, text=True,
        timeout=120, check=False,
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    config = tmp_path / "fleet" / "fleetwarden.yaml"
    with ConsoleBot(config.parent, "--config", str(config), env=_env()) as bot:
        bot.command(
            "mission new readme --pipeline ship Add a README", r"Mission readme made", STARTUP
        )
        bot.expect(r"stub: waiting for input", STARTUP)
        bot.command("mission approve readme", r"no stage of mission readme waits")
        early = bot.output_since_command
        assert "stage plan (task #1" in early and "ends with send planner exit" in early, early
        assert "mission approve readme review answers it then" in early
        bot.command("mission approve readme review", r"no stage of mission readme waits")
        named = bot.output_since_command
        assert "its gate is waiting" not in named, named
        assert "stage plan (task #1" in named and "ends with send planner exit" in named, named
        bot.command("send planner exit", r"Sent to planner")
        bot.expect(r"What task #2 waited for is done; started now", timeout=90)
        bot.expect(r"stub: waiting for input", STARTUP)
        bot.command("send coder commit add a README", r"Sent to coder")
        bot.expect(r"stub: committed [0-9a-f]+", STARTUP)
        bot.command("send coder exit", r"Sent to coder")
        bot.expect(r"What task #3 waited for is done; started now", timeout=90)
        bot.expect(r"stub: waiting for input", STARTUP)
        mark = len(bot.stdout)
        bot.command("send reviewer exit", r"Sent to reviewer")
        ask = bot.expect(r"Mission readme: stage \W*review\W* .* gate asks an operator", 90)
        land = bot.expect(r"approves that commit and the mission is done.*merge (fw/[\w/-]+)")
        finished = bot.stdout.find("reviewer finished after", mark)
        assert mark < finished < ask.start(), bot.stdout[mark:]  # the run's end, then the ask
        asked = bot.stdout[ask.start() : land.end()]
        coder = re.search(r"on (fw/coder/\d+) at commit [0-9a-f]{12}", asked)
        assert coder is not None and "fw/reviewer/" not in asked, asked
        branch = coder.group(1)
        assert land.group(1) == branch, asked
        bot.command("mission approve readme review", rf"for you to land: merge {branch}\.")
        yes = bot.output_since_command
        assert "the mission is done and nothing comes next" in yes, yes
        assert f"stays on {branch} for you to land: merge {branch}" in yes, yes
        assert "what comes next starts" not in yes, yes
        bot.expect(r"Mission readme: every stage passed its gate; it is done", timeout=30)
        bot.command(f"merge {branch}", r"Merged into main|Nothing was merged", timeout=60)
        assert "Merged into main" in bot.output_since_command, bot.output_since_command
        assert "Traceback" not in bot.stdout + bot.stderr
        assert bot.close() == 0, bot.stderr
    landed = subprocess.run(  # squashed or not, coder's change is main's now
        ["git", "-C", str(tmp_path / "fleet" / "repo"), "show", "main:NOTES.md"],
        capture_output=True, text=True, timeout=30, check=True,
    )  # fmt: skip
    assert "add a README" in landed.stdout, landed.stdout

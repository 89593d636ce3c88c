"""The pair preset's walk through the real CLI, with no key and no hand edit: `init --preset
pair`, `run`, a stub coder told to commit and to exit, the stub reviewer's round run by
itself to its verdict, and `merge` landing the commit on the preset's own repository's
main, which ends the task."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests import sandbox_need
from tests.integration.console_bot import FLEETWARDEN, ConsoleBot, clean_env
from tests.integration.review.review_rig import task_says

pytestmark = [pytest.mark.integration, sandbox_need.BWRAP]

STARTUP = 60.0  # the whole app starts before the first answer, on a busy host
NO_KEYS = ("ANTHROPIC_API_KEY", "ANTHROPIC_AUTH_TOKEN", "OPENAI_API_KEY", "ANTHROPIC_BASE_URL")


def _env() -> dict[str, str]:
    return {k: v for k, v in clean_env().items() if k not in NO_KEYS}


def _git(repo: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", "-C", str(repo), *args], capture_output=True, text=True, check=True, timeout=30
    )
    return done.stdout


def test_the_pair_preset_walks_from_a_stub_commit_to_a_merge(tmp_path: Path) -> None:
    """coder's `commit` lands a commit on its branch, reviewer approves it by itself, and
    `merge fw/coder/1` puts it on DIR/repo's main and ends the task."""
    made = subprocess.run(
        [str(FLEETWARDEN), "init", "fleet", "--preset", "pair"],
        cwd=tmp_path, env=_env(), stdin=subprocess.DEVNULL, capture_output=True, text=True,
        timeout=120, check=False,
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    config, repo = tmp_path / "fleet" / "fleetwarden.yaml", tmp_path / "fleet" / "repo"
    with ConsoleBot(config.parent, "--config", str(config), env=_env()) as bot:
        bot.command('spawn coder --prompt "add a README"', r"Agent coder started \(stub\)", STARTUP)
        bot.expect(r"stub: waiting for input", STARTUP)
        bot.command("send coder commit add a README", r"Sent to coder")
        bot.expect(r"stub: committed [0-9a-f]+ (.+): add a README", STARTUP)
        bot.command("send coder exit", r"Sent to coder")
        said = task_says(bot, 1, r"approved by reviewer at [0-9a-f]{12}", timeout=120.0)
        assert "a human reviews it now" in said, said
        assert "reviewer → coder, review: approve, to a human:" in bot.stdout
        assert "review: approve (delivered)" not in bot.stdout  # the coder is never told
        bot.command("merge fw/coder/1", r"Merged into main|Nothing was merged", timeout=60)
        assert "Merged into main" in bot.output_since_command, bot.output_since_command
        task_says(bot, 1, r"\bdone\b", timeout=60.0)
        assert "stub: review approve given" in bot.stdout
        assert "reviewer finished after" in bot.stdout  # its run ends once it has answered
        assert "Traceback" not in bot.stdout + bot.stderr
        assert bot.close() == 0, bot.stderr
    assert _git(repo, "show", "main:NOTES.md") == "add a README\n"
    assert _git(repo, "log", "-1", "--format=%s", "main").strip() == "add a README"
    assert _git(repo, "status", "--porcelain") == ""  # the checked-out main took the merge

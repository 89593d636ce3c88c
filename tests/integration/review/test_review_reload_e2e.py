"""A repository a ``roster reload`` takes on keeps its ``review:`` stage, through the real
``fleetwarden run`` and its console, real git behind ``git http-backend`` and the real
sandbox: Fleetwarden starts with ``app`` (reviewed by ``reviewer``), a reload adds ``lib``
with ``review:`` and ``libber`` working on it, and libber's task goes to reviewer (a
``command`` agent calling the real ``fw-msg``), approved by it — not to a human as if the
repository had no review stage. Started with no review stage at all, a reload adding a
repository with ``review:`` is refused, saying a restart applies it."""

from __future__ import annotations

import contextlib
import os
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests import sandbox_need
from tests.git_upstream import GitUpstream, served_app
from tests.integration.components import app_head
from tests.integration.console_bot import ConsoleBot, clean_env, processes_where
from tests.integration.review.review_rig import task_says

pytestmark = [pytest.mark.integration, sandbox_need.BWRAP]

STARTUP = 60.0  # seconds for the first answer: the whole app starts before it, on a busy host
TOKEN = "ghp_reviewReloadUpstreamTokenNoAgentHolds"
CODER = 'printf "%s\\n" "$FLEETWARDEN_PROMPT" >> work.txt'
REVIEWER = 'fw-msg review approve "looks right"; echo "reviewer-verdict-exit $?"'
HEAD = (
    app_head("{app}")
    + """\
{app_review}{lib}agents:
  - name: coder
    runtime: command
    repo: app
    argv: [sh, -c, '{coder}']
  - name: reviewer
    runtime: command
    argv: [sh, -c, '{reviewer}']
{libber}"""
)
LIB = """\
  lib:
    url: {url}
    token_env: APP_TOKEN
    review: {{agent: reviewer, rounds: 2}}
"""
LIBBER = """\
  - name: libber
    runtime: command
    repo: lib
    argv: [sh, -c, '{coder}']
"""


@pytest.fixture
def lib_upstream(tmp_path: Path) -> Iterator[GitUpstream]:
    with served_app(tmp_path / "upstream", TOKEN) as served:
        served.create("lib", {"README.md": "# lib\n"})
        yield served


def write_config(path: Path, upstream: GitUpstream, *, staged: bool, lib: bool) -> None:
    """``app`` (reviewed by reviewer when ``staged``); with ``lib``, also ``lib`` (reviewed
    by reviewer) and ``libber`` working on it."""
    path.write_text(
        HEAD.format(
            app=upstream.url("app"),
            app_review="    review: {agent: reviewer, rounds: 2}\n" if staged else "",
            lib=LIB.format(url=upstream.url("lib")) if lib else "",
            coder=CODER,
            reviewer=REVIEWER,
            libber=LIBBER.format(coder=CODER) if lib else "",
        )
    )


def stop_agents(root: Path) -> None:
    for pid in processes_where(lambda cwd, cmdline: cwd.startswith(str(root))):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def test_a_repository_a_reload_adds_with_review_has_its_work_reviewed(
    tmp_path: Path, lib_upstream: GitUpstream
) -> None:
    """lib, added by a reload with ``review:``, has libber's task reviewed (and approved)
    by reviewer, never handed to a human as unreviewed work."""
    config = tmp_path / "fleetwarden.yaml"
    write_config(config, lib_upstream, staged=True, lib=False)
    bot = ConsoleBot(tmp_path, "--config", str(config), env=clean_env(APP_TOKEN=TOKEN))
    try:
        bot.command("ps", r"agents?", timeout=STARTUP)
        write_config(config, lib_upstream, staged=True, lib=True)
        bot.command("roster reload", r"(?i)reload", timeout=STARTUP)
        assert "not reloaded" not in bot.output_since_command, bot.output_since_command
        bot.command("task new --agent libber Greet the user", r"Task #1", timeout=STARTUP)
        bot.command("task start 1", r"libber")
        # "merge" as a word: the review's own hint says "`task done 1` when merged"
        verdict = r"approved by|\bmerge\b|a human"
        said = task_says(bot, 1, verdict, timeout=120, answer_within=STARTUP)
        assert "approved by reviewer" in said, said
        assert bot.close() == 0, bot.stderr
    finally:
        if bot.proc.poll() is None:
            bot.kill()
        stop_agents(tmp_path)
    assert "Traceback" not in bot.stdout + bot.stderr


def test_a_reload_adding_a_reviewed_repository_without_a_review_stage_is_refused(
    tmp_path: Path, lib_upstream: GitUpstream
) -> None:
    """Started with no ``review:`` anywhere, a reload adding lib with one is refused whole,
    naming it and saying that a restart applies it; nothing of the file is applied."""
    config = tmp_path / "fleetwarden.yaml"
    write_config(config, lib_upstream, staged=False, lib=False)
    bot = ConsoleBot(tmp_path, "--config", str(config), env=clean_env(APP_TOKEN=TOKEN))
    try:
        bot.command("ps", r"agents?", timeout=STARTUP)
        write_config(config, lib_upstream, staged=False, lib=True)
        bot.command("roster reload", r"not reloaded[\s\S]*restart Fleetwarden", timeout=STARTUP)
        said = bot.output_since_command
        assert "repository 'lib' was added with a review: stage" in said, said
        assert "nothing changed" in said, said
        assert bot.close() == 0, bot.stderr
    finally:
        if bot.proc.poll() is None:
            bot.kill()
        stop_agents(tmp_path)
    assert "Traceback" not in bot.stdout + bot.stderr

"""The console at a real terminal: the real `fleetwarden run` inside tmux — its prompt,
what prints above it, and tables fitted to the terminal."""

from __future__ import annotations

import os
import shutil
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.commands.help import help_text
from bot.commands.specs import COMMANDS
from connectors.markdown import to_plain
from fleet.ledger.records.forge import Slug
from tests.fakes.forge.webhook_sender import github_delivery, github_issue
from tests.fakes.github.api import BOT_LOGIN, DEFAULT_PAT
from tests.git_upstream import served_app
from tests.integration.connectors.console.console_stops import fleetwardens_in
from tests.integration.connectors.console.console_terminal import Terminal
from tests.integration.console_bot import clean_env, wait_until
from tests.integration.forge_rig import APP_ON_GITHUB, app_on_github, listening, post
from tests.postgres_server import free_port

pytestmark = pytest.mark.integration


@pytest.fixture
def terminal(tmp_path: Path) -> Iterator[Terminal]:
    if shutil.which("tmux") is None:
        pytest.fail("tmux is not installed; run `bash tests/run.sh`, which installs it")
    term = Terminal(tmp_path)
    yield term
    term.close()


def test_interactive_console_shows_a_prompt_and_answers(terminal: Terminal) -> None:
    """At a terminal the console greets, prompts, answers commands and leaves on quit."""
    assert wait_until(lambda: "fleetwarden>" in terminal.screen()), terminal.screen()
    assert "type `help`, or `quit` to leave" in terminal.screen()
    terminal.type("spawn demo --prompt 'count to 2'")
    assert wait_until(lambda: "Agent demo started (stub)" in terminal.screen()), terminal.screen()
    terminal.type("!ps")
    assert wait_until(lambda: "1 of 1 agent running" in terminal.screen()), terminal.screen()
    terminal.type("stop demo")
    assert wait_until(lambda: "Stopped demo" in terminal.screen()), terminal.screen()
    terminal.type("quit")
    assert terminal.exit_status() == 0, terminal.history()


def _lines(screen: str) -> list[str]:
    return [line.rstrip() for line in screen.splitlines() if line.strip()]


def test_a_warning_logged_at_the_prompt_prints_above_it(terminal: Terminal) -> None:
    """A warning logged while a line is half typed (SIGHUP with no config file to reload)
    prints on its own line above the prompt; the prompt and the half-typed line are drawn
    again beneath it, and finishing the line runs the command."""
    assert terminal.wait_for_prompt(), terminal.screen()
    terminal.type("who", enter=False)
    assert wait_until(lambda: terminal.screen().rstrip().endswith("fleetwarden> who"))
    [pid] = fleetwardens_in(terminal.cwd)
    os.kill(pid, signal.SIGHUP)
    assert wait_until(lambda: "no config file to reload" in terminal.screen()), terminal.screen()
    lines = _lines(terminal.screen())
    assert lines[-2].startswith("fleetwarden: warning: SIGHUP: there is no config file"), lines
    assert lines[-1] == "fleetwarden> who", lines
    terminal.type("ami")
    assert wait_until(lambda: "You are console on console" in terminal.screen()), lines
    assert _lines(terminal.screen())[-1] == "fleetwarden>"


GIT_TOKEN = "ghp_consoleUpstreamTokenNoAgentHolds1234"


def test_a_webhook_refused_while_the_prompt_waits_warns_above_it(tmp_path: Path) -> None:
    """A delivery signed with the wrong secret, refused while the operator types: the
    webhook's warning is a line of its own above the prompt, which stays whole beneath."""
    port = free_port()
    with (
        served_app(tmp_path / "upstream", GIT_TOKEN) as upstream,
        app_on_github(upstream, Slug("acme", "app"), "ann") as github,
    ):
        config = tmp_path / "fleetwarden.yaml"
        config.write_text(
            APP_ON_GITHUB.format(
                port=port, api=github.api_url, login=BOT_LOGIN, url=upstream.url("app")
            )
        )
        env = clean_env(
            APP_TOKEN=GIT_TOKEN,
            FORGE_TOKEN=DEFAULT_PAT,
            FORGE_HOOK_SECRET="the-right-secret-0123456789",
        )
        terminal = Terminal(tmp_path, "--config", str(config), env=env, width=200)
        try:
            assert terminal.wait_for_prompt(), terminal.history()
            assert wait_until(lambda: listening(port)), terminal.history()
            terminal.type("ps", enter=False)
            assert wait_until(lambda: terminal.screen().rstrip().endswith("fleetwarden> ps"))
            headers, body = github_delivery(
                *github_issue("labeled", repo=Slug("acme", "app"), number=1, sender="ann"),
                secret=b"not-the-secret",
            )
            answer = post(port, "gh", headers, body)
            assert answer[0] == 401, (answer, terminal.history())
            assert wait_until(lambda: "webhook gh" in terminal.screen()), terminal.screen()
            lines = _lines(terminal.screen())
            assert lines[-2].startswith("fleetwarden: warning: webhook gh delivery"), lines
            assert lines[-1] == "fleetwarden> ps", lines
            terminal.keys("Enter")
            assert wait_until(lambda: "No agents yet" in terminal.screen()), terminal.screen()
            terminal.type("quit")
            assert terminal.exit_status() == 0, terminal.history()
        finally:
            terminal.close()
        assert github.violations == []


def test_help_fits_the_terminal_and_never_breaks_a_word(tmp_path: Path) -> None:
    """`help` at an 80-column terminal: the table is fitted to the width, its long cells
    wrapped between words, so every word on the screen is a whole word of the help."""
    terminal = Terminal(tmp_path, width=80, height=40)
    try:
        assert terminal.wait_for_prompt(), terminal.screen()
        terminal.type("help")
        assert wait_until(lambda: "the prefix is optional" in terminal.history())
        shown = terminal.history()
        start = shown.index("fleetwarden> help")
        region = shown[start + len("fleetwarden> help") : shown.index("optional.") + 9]
        words = set(to_plain(help_text(COMMANDS, None)).split())
        broken = [w for w in region.split() if w not in words and w.strip("-")]  # rules aside
        assert broken == [], region
        assert "spawn NAME [flags]" in region and "Start an agent." in region
        terminal.type("quit")
        assert terminal.exit_status() == 0, terminal.history()
    finally:
        terminal.close()

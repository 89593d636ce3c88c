"""``roster reload`` and repositories through the real ``fleetwarden run`` and its console,
with real git: a repository added to the file, with an agent on it, is worked on at once
(its agent spawns, cuts its branch and leaves its change on it); an edit only a restart
applies — a repository changed, a forge added, the first ``repos:`` — refuses the reload
whole, naming it, and the roster stays as it was; so does a new repository whose path does
not exist, on its line, until it is corrected."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests import sandbox_need
from tests.git_upstream import GitUpstream, served_app
from tests.integration.console_bot import ConsoleBot, clean_env

pytestmark = [pytest.mark.integration, sandbox_need.BWRAP]

TOKEN = "ghp_reloadUpstreamTokenNoAgentHolds012345"
HEAD = """\
state_dir: ./state
connectors:
  console: {}
defaults:
  stop_grace_seconds: 1
"""
APP = """\
repos:
  app:
    url: {app}
    token_env: APP_TOKEN
"""
LOCAL = """\
  local:
    url: {local}
"""
FORGE = """\
forges:
  hub:
    kind: github
    api_url: http://127.0.0.1:9/
    token_env: HUB_TOKEN
    login: fleet-bot
    poll_seconds: 60
"""
AGENTS = """\
agents:
  - name: coder
    runtime: command
    repo: app
    argv: [sh, -c, "echo coder > coder.txt"]
"""
LCODER = """\
  - name: lcoder
    runtime: command
    repo: local
    argv: [sh, -c, "echo from lcoder > lcoder.txt"]
"""


@pytest.fixture
def local_repo_upstream(tmp_path: Path) -> Iterator[GitUpstream]:
    with served_app(tmp_path / "upstream", TOKEN) as served:
        served.create("local", {"README.md": "# local\n"})
        yield served


def start(tmp_path: Path, text: str) -> tuple[ConsoleBot, Path]:
    config = tmp_path / "fleetwarden.yaml"
    config.write_text(text)
    bot = ConsoleBot(
        tmp_path, "--config", str(config), env=clean_env(APP_TOKEN=TOKEN, HUB_TOKEN="hub-token")
    )
    return bot, config


def test_a_repository_added_with_an_agent_on_it_is_worked_on_after_a_reload(
    tmp_path: Path, local_repo_upstream: GitUpstream
) -> None:
    """Reload takes the new repository and its agent; `spawn lcoder` cuts its branch there
    and its run's change is on it; a second reload finds nothing new; `spawn NAME --repo
    local` works too."""
    app, local = local_repo_upstream.url("app"), str(local_repo_upstream.root / "local.git")
    bot, config = start(tmp_path, HEAD + APP.format(app=app) + AGENTS)
    with bot:
        bot.command("roster", r"coder")
        config.write_text(HEAD + APP.format(app=app) + LOCAL.format(local=local) + AGENTS + LCODER)
        bot.command(
            "roster reload", r"Roster reloaded — added: lcoder; repositories added: local\."
        )
        bot.command("spawn lcoder", r"Agent lcoder started")
        bot.expect(r"Branch\W+fw/lcoder/\d+ of \W*local\W*: 1 commit", timeout=60)
        assert "Something went wrong" not in bot.stdout
        bot.command("diff lcoder", r"\+from lcoder")
        bot.command("branches local", r"lcoder\s+fw/lcoder/\d+\s+local\s+1\s")
        bot.command("roster reload", r"Roster reloaded: nothing changed\.")  # adopted once
        bot.command("spawn probe --repo local", r"Agent probe started")
        bot.command("stop probe", r"Stopped probe|not running|exited")
        assert "KeyError" not in bot.stderr
        assert bot.close() == 0


def test_an_edit_only_a_restart_applies_refuses_the_whole_reload(
    tmp_path: Path, local_repo_upstream: GitUpstream
) -> None:
    """A changed repository and a new forge, beside a new agent: the reload names both,
    says a restart applies them, and the new agent is not in the roster."""
    app = local_repo_upstream.url("app")
    bot, config = start(tmp_path, HEAD + APP.format(app=app) + AGENTS)
    with bot:
        bot.command("roster", r"coder")  # up, its config read: now edit it
        changed = APP.format(app=app) + "    default_branch: trunk\n    merge: rebase\n"
        extra = '  - {name: extra, runtime: command, argv: ["true"]}\n'
        config.write_text(HEAD + changed + FORGE + AGENTS + extra)
        bot.command(
            "roster reload",
            r"the roster was not reloaded; nothing changed: repository 'app' was changed "
            r"\(default_branch, merge\); forge 'hub' was added\. These apply only when "
            r"Fleetwarden starts: restart Fleetwarden \(as you started it, with the same "
            r"`?--config`?\) to apply the whole file, "
            r"or undo those edits and `?roster reload`? again",
        )
        bot.command("roster", r"coder")
        assert "extra" not in bot.output_since_command
        bot.command("spawn coder", r"Agent coder started")
        bot.expect(r"Branch\W+fw/coder/\d+ of \W*app\W*: 1 commit", timeout=60)
        assert bot.close() == 0


def test_a_mistyped_path_refuses_the_reload_and_its_fix_is_taken(
    tmp_path: Path, local_repo_upstream: GitUpstream
) -> None:
    """A repository added with a path that does not exist: the reload is refused on its
    line, the agent on it is not taken on; the path corrected, the next reload takes both."""
    app, local = local_repo_upstream.url("app"), str(local_repo_upstream.root / "local.git")
    bot, config = start(tmp_path, HEAD + APP.format(app=app) + AGENTS)
    with bot:
        bot.command("roster", r"coder")
        wrong = LOCAL.format(local=str(local_repo_upstream.root / "lcoal.git"))
        config.write_text(HEAD + APP.format(app=app) + wrong + AGENTS + LCODER)
        bot.command(
            "roster reload",
            r"nothing changed: \S*fleetwarden\.yaml:\d+: repos\.local\.url: the url of "
            r"repository local, \S*lcoal\.git, does not exist on this machine",
        )
        bot.command("roster", r"coder")
        assert "lcoder" not in bot.output_since_command
        config.write_text(HEAD + APP.format(app=app) + LOCAL.format(local=local) + AGENTS + LCODER)
        bot.command(
            "roster reload", r"Roster reloaded — added: lcoder; repositories added: local\."
        )
        bot.command("spawn lcoder", r"Agent lcoder started")
        bot.expect(r"Branch\W+fw/lcoder/\d+ of \W*local\W*: 1 commit", timeout=60)
        assert bot.close() == 0


def test_the_first_repository_needs_a_restart(
    tmp_path: Path, local_repo_upstream: GitUpstream
) -> None:
    """Started without `repos:`, a reload adding one (and an agent on it) is refused whole,
    naming the repository; the agent is not in the roster."""
    local = str(local_repo_upstream.root / "local.git")
    bot, config = start(tmp_path, HEAD + "agents: []\n")
    with bot:
        bot.command("roster", r"The roster is empty")
        config.write_text(HEAD + "repos:\n" + LOCAL.format(local=local) + "agents:\n" + LCODER)
        bot.command(
            "roster reload",
            r"nothing changed: repository 'local' was added, and Fleetwarden started with no "
            r"`?repos:`? .*restart Fleetwarden",
        )
        bot.command("roster", r"The roster is empty")
        assert bot.close() == 0

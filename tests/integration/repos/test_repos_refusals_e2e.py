"""The first mistakes with repositories and forges, through the real ``fleetwarden run``
console, a real git upstream behind ``git http-backend`` that takes only its token, and the
strict fake GitHub: each answered in Fleetwarden's words, naming the variable or the url and
the fix — a wrong repository token, a relative path that is not there, a base the upstream
lacks (its branches listed), a fresh state dir on an upstream that already has
``fw/coder/1`` (another name cut, that branch never touched), a branch a teammate made or
moved upstream (never taken over or overwritten), and a wrong forge token at start (said in
the console, the forge's events refused)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from fleet.ledger.records.forge import Slug
from tests import sandbox_need
from tests.fakes.forge.webhook_sender import github_delivery, github_issue
from tests.fakes.github.api import BOT_LOGIN, github_thread
from tests.git_upstream import GitUpstream, git, served_app
from tests.integration.components import app_head
from tests.integration.console_bot import ConsoleBot, clean_env, wait_until
from tests.integration.forge_rig import ledger_rows, listening, post, start_e2e_bot

pytestmark = [pytest.mark.integration, sandbox_need.BWRAP]

TOKEN = "ghp_refusalsUpstreamToken0123456789abcdef"
WRONG = "ghp_wrongRepositoryToken999999999999999999"
CONFIG = (
    app_head()
    + """\
  lost:
    url: ./nothere.git
agents:
  - name: coder
    runtime: command
    argv: [sh, -c, "echo hello > notes.txt"]
    repo: app
    sandbox: none
  - name: stray
    runtime: command
    argv: [sh, -c, "true"]
    repo: lost
    sandbox: none
"""
)


@pytest.fixture
def app_upstream(tmp_path: Path) -> Iterator[GitUpstream]:
    with served_app(tmp_path / "up", TOKEN) as served:
        yield served


def start(tmp_path: Path, upstream: GitUpstream, token: str) -> ConsoleBot:
    config = tmp_path / "fleetwarden.yaml"
    config.write_text(CONFIG.format(url=upstream.url("app")))
    return ConsoleBot(tmp_path, "--config", str(config), env=clean_env(APP_TOKEN=token))


def teammate_branch(upstream: GitUpstream, branch: str) -> str:
    """``branch`` made upstream from main with a commit of a teammate's; its sha."""
    git("push", "-q", str(upstream.root / "app.git"), f"main:{branch}",
        cwd=upstream.root / ".app-seed")  # fmt: skip
    return upstream.commit("app", {"theirs.txt": "a teammate's\n"}, branch=branch)


def test_a_wrong_repository_token_is_named_at_spawn(
    tmp_path: Path, app_upstream: GitUpstream
) -> None:
    """`spawn` with a token the upstream refuses: the variable and the fix, not git's
    "could not read Username … terminal prompts disabled"; the token never shown."""
    with start(tmp_path, app_upstream, WRONG) as bot:
        said = bot.command("spawn coder", r"refused Fleetwarden's credential[^\n]*").group(0)
        assert "the token in APP_TOKEN (repos.app.token_env)" in said
        assert "restart Fleetwarden" in said
        assert "terminal prompts" not in bot.stdout and WRONG not in bot.stdout + bot.stderr
        assert bot.quit() == 0


def test_upstream_branches_that_are_not_ours_are_never_taken(
    tmp_path: Path, app_upstream: GitUpstream
) -> None:
    """A relative path not there and a base the upstream lacks are said with the fix; a
    fresh state dir on an upstream holding someone's fw/coder/1 cuts fw/coder/1-2; a branch
    of that name a teammate then makes is not taken over, and one they move on is not
    overwritten — each said in Fleetwarden's words, the teammate's commits kept."""
    theirs = teammate_branch(app_upstream, "fw/coder/1")
    with start(tmp_path, app_upstream, TOKEN) as bot:
        said = bot.command("spawn stray", r"the url of repository lost, [^\n]*").group(0)
        assert f"{tmp_path / 'nothere.git'}, does not exist on this machine" in said
        said = bot.command("spawn coder --base trunk", r"has no branch trunk[^\n]*").group(0)
        assert "it has “fw/coder/1, main”; name one it has (--base)" in said

        bot.command("spawn coder", r"Branch\W+fw/coder/1-2 of \W*app", timeout=120)
        assert app_upstream.branches("app")["refs/heads/fw/coder/1"] == theirs

        # A teammate makes fw/coder/1-2 upstream before Fleetwarden's first push.
        made = teammate_branch(app_upstream, "fw/coder/1-2")
        said = bot.command("push coder", r"already has a branch fw/coder/1-2[^\n]*").group(0)
        assert "that Fleetwarden did not push" in said and "spawn coder --fresh" in said
        assert app_upstream.branches("app")["refs/heads/fw/coder/1-2"] == made

        # Theirs deleted: the push lands. Then they add a commit on it: never overwritten.
        git("branch", "-D", "fw/coder/1-2", cwd=app_upstream.root / "app.git")
        bot.command("push coder", r"Pushed coder's branch fw/coder/1-2", timeout=60)
        moved = app_upstream.commit("app", {"more.txt": "theirs\n"}, branch="fw/coder/1-2")
        said = bot.command("push coder", r"the upstream of app already has[^\n]*").group(0)
        assert "with commits coder's branch does not have" in said
        assert "nothing was pushed" in said and "Note about fast-forwards" not in bot.stdout
        assert app_upstream.branches("app")["refs/heads/fw/coder/1-2"] == moved
        assert app_upstream.branches("app")["refs/heads/fw/coder/1"] == theirs
        assert bot.quit() == 0


def test_a_wrong_forge_token_at_start_is_said_and_its_events_refused(
    tmp_path: Path, app_upstream: GitUpstream
) -> None:
    """The forge refuses its token at start: the console says which forge, which variable
    and what to do; Fleetwarden runs on with that forge held, its deliveries refused (503,
    kept nowhere: the forge may deliver them again once it is fixed)."""
    secret = "forge-hook-secret-0123456789"
    with github_thread() as github:
        github.add_repo("acme/app")
        bot, port = start_e2e_bot(
            tmp_path,
            forge="gh",
            kind="github",
            api=github.api_url,
            provider="http://127.0.0.1:9",
            login=BOT_LOGIN,
            url=app_upstream.url("app"),
            tokens={"APP_TOKEN": TOKEN, "FORGE_TOKEN": WRONG, "FORGE_HOOK_SECRET": secret},
        )
        with bot:
            said = bot.expect(r"forge gh \([^)]*\) refused Fleetwarden's credential[^\n]*",
                              timeout=60).group(0)  # fmt: skip
            assert "the token in FORGE_TOKEN (forges.gh.token_env)" in said
            assert "restart Fleetwarden" in said and "events are refused" in said
            assert wait_until(lambda: listening(port), timeout=60), bot.stderr
            name, payload = github_issue(
                "labeled", repo=Slug("acme", "app"), number=1, sender="ann",
                label="fleetwarden:coder",
            )  # fmt: skip
            headers, body = github_delivery(name, payload, secret=secret.encode())
            status, text = post(port, "gh", headers, body)  # failed: it may be redelivered
            assert (status, text.startswith("refused: forge gh is held")) == (503, True), text
            assert ledger_rows(tmp_path, "SELECT outcome FROM forge_deliveries") == []
            assert WRONG not in bot.stdout + bot.stderr
            assert bot.quit() == 0
        assert github.violations == []

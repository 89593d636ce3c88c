"""``fleetwarden check-config --online`` on a GitLab forge — the strict fake GitLab, and
a real git upstream that takes GitLab's convention (any user, the token as password):
the token's scopes and the bot's role on each repository are asked, each shortfall said
at its key with its fix and never the token, and the repository is read as user
``oauth2``."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fakes.gitlab.api import BOT_LOGIN, GITLAB_TOKEN, FakeGitLab, Token, fake_gitlab_thread
from tests.git_upstream import GitUpstream, served_app
from tests.integration.console_bot import FLEETWARDEN, clean_env

pytestmark = pytest.mark.integration

CONFIG = """\
state_dir: ./state
forges:
  gl:
    kind: gitlab
    api_url: {api}
    token_env: FLEETWARDEN_GITLAB_TOKEN
    webhook_secret_env: FLEETWARDEN_GITLAB_HOOK
    login: {login}
repos:
  app:
    url: {url}
    forge: gl
    forge_repo: acme/app
    default_branch: main
"""


@pytest.fixture
def gitlab_upstream(tmp_path: Path) -> Iterator[GitUpstream]:
    with served_app(tmp_path / "up", GITLAB_TOKEN, any_user=True) as served:
        yield served


@pytest.fixture
def gitlab_check_config_gitlab() -> Iterator[FakeGitLab]:
    with fake_gitlab_thread() as fake:
        fake.add_project("acme/app")
        fake.add_member("acme/app", BOT_LOGIN, 30)
        yield fake
        assert fake.violations == []


def _check(
    tmp_path: Path, gitlab: FakeGitLab, upstream: GitUpstream
) -> subprocess.CompletedProcess[str]:
    config = tmp_path / "fleetwarden.yaml"
    config.write_text(CONFIG.format(api=gitlab.api_url, login=BOT_LOGIN, url=upstream.url("app")))
    return subprocess.run(
        [str(FLEETWARDEN), "check-config", "--config", str(config), "--online"],
        env=clean_env(FLEETWARDEN_GITLAB_TOKEN=GITLAB_TOKEN, FLEETWARDEN_GITLAB_HOOK="hook-secret"),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_a_developer_with_the_api_scope_passes_and_git_goes_as_oauth2(
    tmp_path: Path, gitlab_check_config_gitlab: FakeGitLab, gitlab_upstream: GitUpstream
) -> None:
    """The right token, scope and role: nothing to say; the upstream saw user oauth2."""
    done = _check(tmp_path, gitlab_check_config_gitlab, gitlab_upstream)
    assert done.returncode == 0, done.stderr
    assert "1 repository and 1 forge answered" in done.stdout
    assert gitlab_upstream.users == {"oauth2"}
    asked = {seen.path for seen in gitlab_check_config_gitlab.requests}
    assert "/api/v4/personal_access_tokens/self" in asked
    assert any(
        path.endswith("/members/all/" + str(gitlab_check_config_gitlab.world.users[BOT_LOGIN].id))
        for path in asked
    )


def test_a_token_without_the_api_scope_is_named_with_its_fix(
    tmp_path: Path, gitlab_check_config_gitlab: FakeGitLab, gitlab_upstream: GitUpstream
) -> None:
    """read_api only: said at forges.gl.token_env, the scope to give, never the token."""
    gitlab_check_config_gitlab.tokens[GITLAB_TOKEN] = Token(
        BOT_LOGIN, ("read_api", "read_repository")
    )
    done = _check(tmp_path, gitlab_check_config_gitlab, gitlab_upstream)
    assert done.returncode == 2
    assert (
        "fleetwarden.yaml:6: forges.gl.token_env: forge gl: the token in "
        "FLEETWARDEN_GITLAB_TOKEN has the scopes read_api, read_repository, not api"
    ) in done.stderr
    assert "the api scope (it covers git over HTTPS too)" in done.stderr
    assert GITLAB_TOKEN not in done.stderr + done.stdout


def test_a_reporter_is_told_the_role_it_needs(
    tmp_path: Path, gitlab_check_config_gitlab: FakeGitLab, gitlab_upstream: GitUpstream
) -> None:
    """The bot a Reporter on acme/app: said at repos.app.forge, with the role to give."""
    gitlab_check_config_gitlab.add_member("acme/app", BOT_LOGIN, 20)
    done = _check(tmp_path, gitlab_check_config_gitlab, gitlab_upstream)
    assert done.returncode == 2
    assert f"repos.app.forge: repository app: {BOT_LOGIN} is Reporter (20) on acme/app" in (
        done.stderr
    )
    assert f"invite {BOT_LOGIN} to acme/app as Developer" in done.stderr
    assert GITLAB_TOKEN not in done.stderr + done.stdout

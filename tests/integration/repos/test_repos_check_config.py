"""``fleetwarden check-config``: offline it reads no repository and no forge, yet refuses a
repository path that does not exist and an ``api_url`` that cannot be one, each on its
line; with ``--online`` it asks each repository — a real git upstream behind ``git
http-backend`` that takes only its token — and each forge — the strict fake GitHub — with
its credential, through the code the bot uses, and says each refusal in Fleetwarden's
words with the file, the line, the variable and the fix, never the token. A credential
the url does not take names the kind of url it is; a forge's webhook address is printed
whole; a secret of Fleetwarden's own in an agent's ``secret_env`` is refused on its line."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fakes.github.api import BOT_LOGIN, DEFAULT_PAT, github_thread
from tests.git_upstream import GitUpstream, served_app
from tests.integration.console_bot import FLEETWARDEN, clean_env

pytestmark = pytest.mark.integration

TOKEN = "ghp_checkConfigToken0123456789abcdefABCD"
WRONG = "ghp_wrongToken9999999999999999999999999"


@pytest.fixture
def app_upstream(tmp_path: Path) -> Iterator[GitUpstream]:
    with served_app(tmp_path / "up", TOKEN) as served:
        yield served


def check_text(
    tmp_path: Path, text: str, *args: str, **env: str
) -> subprocess.CompletedProcess[str]:
    config = tmp_path / "fleetwarden.yaml"
    config.write_text(text)
    return subprocess.run(
        [str(FLEETWARDEN), "check-config", "--config", str(config), *args],
        env=clean_env(**env),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def check(
    tmp_path: Path, url: str, token: str, branch: str = "main", *args: str
) -> subprocess.CompletedProcess[str]:
    return check_text(
        tmp_path,
        f"state_dir: ./state\nrepos:\n  app:\n    url: {url}\n    token_env: APP_TOKEN\n"
        f"    default_branch: {branch}\n",
        *args,
        APP_TOKEN=token,
    )


def test_a_repository_read_with_its_token_passes(tmp_path: Path, app_upstream: GitUpstream) -> None:
    """--online reads the upstream with its token and says so; offline asks nothing."""
    done = check(tmp_path, app_upstream.url("app"), TOKEN, "main", "--online")
    assert done.returncode == 0, done.stderr
    assert "app: " in done.stdout and "token" in done.stdout
    assert "1 repository and 0 forges answered" in done.stdout
    assert any(seen.authorised for seen in app_upstream.requests)
    app_upstream.requests.clear()
    offline = check(tmp_path, app_upstream.url("app"), WRONG)
    assert offline.returncode == 0, offline.stderr
    assert "check-config --online" in offline.stdout and app_upstream.requests == []


def test_a_wrong_token_or_branch_is_named_and_the_token_never_shown(
    tmp_path: Path, app_upstream: GitUpstream
) -> None:
    """A refused token: the variable, its line, and the fix — not git's "terminal prompts
    disabled"; a default branch the upstream lacks: the branches it has."""
    done = check(tmp_path, app_upstream.url("app"), WRONG, "main", "--online")
    assert done.returncode == 2
    assert "fleetwarden.yaml:5: repos.app.token_env: the upstream of app" in done.stderr
    assert "refused Fleetwarden's credential" in done.stderr and "APP_TOKEN" in done.stderr
    assert "terminal prompts" not in done.stderr
    assert WRONG not in done.stderr + done.stdout
    done = check(tmp_path, app_upstream.url("app"), TOKEN, "trunk", "--online")
    assert done.returncode == 2
    assert "fleetwarden.yaml:6: repos.app.default_branch:" in done.stderr
    assert "has no branch trunk: it has “main”" in done.stderr


def test_a_repository_that_is_not_there_is_named_with_its_url(
    tmp_path: Path, app_upstream: GitUpstream
) -> None:
    """An upstream answering 404 for the url: that url, on its line."""
    url = app_upstream.url("nope")
    done = check(tmp_path, url, TOKEN, "main", "--online")
    assert done.returncode == 2
    assert f"fleetwarden.yaml:4: repos.app.url: there is no repository at {url}" in done.stderr


def test_a_relative_path_is_read_from_the_config_files_directory(tmp_path: Path) -> None:
    """``url: ./up/app.git`` beside the config passes, offline and online; a relative path
    that is not there is said, with the path it was read as, on its line, offline."""
    with served_app(tmp_path / "up", TOKEN):
        text = "state_dir: ./state\nrepos:\n  app:\n    url: ./up/app.git\n"
        done = check_text(tmp_path, text, "--online")
        assert done.returncode == 0, done.stderr
        assert f"app: {tmp_path / 'up' / 'app.git'}" in done.stdout
        missing = check_text(tmp_path, text.replace("./up/app.git", "up/nothere.git"))
    assert missing.returncode == 2
    assert (
        f"fleetwarden.yaml:4: repos.app.url: the url of repository app, "
        f"{tmp_path / 'up' / 'nothere.git'}, does not exist on this machine"
    ) in missing.stderr


def test_a_copy_from_that_is_not_there_is_said_on_its_line(tmp_path: Path) -> None:
    """``copy_from`` naming a directory that does not exist: said with the path it was
    read as, on its line, offline; made, the same file passes."""
    with served_app(tmp_path / "up", TOKEN):
        text = (
            "state_dir: ./state\nrepos:\n  app:\n    url: ./up/app.git\n"
            "    copy_from: ./fixtures\n    copy: [.env.example]\n"
        )
        missing = check_text(tmp_path, text)
        (tmp_path / "fixtures").mkdir()
        made = check_text(tmp_path, text)
    assert missing.returncode == 2
    assert (
        f"fleetwarden.yaml:5: repos.app.copy_from: the copy_from of repository app, "
        f"{tmp_path / 'fixtures'}, does not exist on this machine"
    ) in missing.stderr
    assert made.returncode == 0, made.stderr


FORGE = """\
state_dir: ./state
forges:
  gh:
    kind: github
    api_url: {api}
    token_env: FLEETWARDEN_GITHUB_TOKEN
    poll_seconds: 60
    login: {login}
"""


def test_a_forges_token_is_asked_online_and_a_refusal_named(tmp_path: Path) -> None:
    """--online asks the forge who its token is: a wrong token is named by its variable
    and line, its fix worded for a Fleetwarden not started yet; another login by the
    login's line; the right one passes."""
    with github_thread() as fake:
        text = FORGE.format(api=fake.api_url, login=BOT_LOGIN)
        good = check_text(tmp_path, text, "--online", FLEETWARDEN_GITHUB_TOKEN=DEFAULT_PAT)
        assert good.returncode == 0, good.stderr
        assert "0 repositories and 1 forge answered" in good.stdout
        wrong = check_text(tmp_path, text, "--online", FLEETWARDEN_GITHUB_TOKEN=WRONG)
        other = FORGE.format(api=fake.api_url, login="acme-fleet")
        mislogged = check_text(tmp_path, other, "--online", FLEETWARDEN_GITHUB_TOKEN=DEFAULT_PAT)
        assert fake.violations == []
    assert wrong.returncode == 2
    assert "fleetwarden.yaml:6: forges.gh.token_env: forge gh" in wrong.stderr
    assert "refused Fleetwarden's credential" in wrong.stderr and "401" in wrong.stderr
    assert "FLEETWARDEN_GITHUB_TOKEN" in wrong.stderr and WRONG not in wrong.stderr
    # Nothing runs yet: the fix is made before starting Fleetwarden, not by a restart.
    assert "before starting Fleetwarden (it reads the variable at start)" in wrong.stderr
    assert "restart" not in wrong.stderr and "events are refused" not in wrong.stderr
    assert mislogged.returncode == 2
    assert "fleetwarden.yaml:8: forges.gh.login: forge gh's login is 'acme-fleet'" in (
        mislogged.stderr
    )
    assert "its events wait until then" not in mislogged.stderr


def test_an_api_url_that_cannot_be_one_is_refused_offline(tmp_path: Path) -> None:
    """``api_url: http://127.0.0.1:151723`` is refused without asking anything."""
    done = check_text(
        tmp_path,
        FORGE.format(api="http://127.0.0.1:151723", login=BOT_LOGIN),
        FLEETWARDEN_GITHUB_TOKEN=DEFAULT_PAT,
    )
    assert done.returncode == 2
    assert "fleetwarden.yaml:5: forges.gh.api_url: api_url's port is not a number" in done.stderr


def test_a_path_with_a_token_env_is_said_to_be_a_path_not_ssh(tmp_path: Path) -> None:
    """``url`` switched to a path with ``token_env`` kept: the error names the path as a
    path on this machine that takes no credential, and says to remove token_env."""
    text = "state_dir: ./state\nrepos:\n  app:\n    url: ./up/app.git\n    token_env: APP_TOKEN\n"
    done = check_text(tmp_path, text, APP_TOKEN=TOKEN)
    assert done.returncode == 2
    assert (
        f"fleetwarden.yaml:3: repos.app: token_env is for an https url, and url "
        f"{tmp_path / 'up' / 'app.git'} is a path on this machine, which git reads with no "
        "credential: remove token_env"
    ) in done.stderr
    assert "ssh" not in done.stderr


def test_a_forges_webhook_address_is_printed_whole(tmp_path: Path) -> None:
    """check-config names the address to point the forge's webhook at: the default
    listen address without a `dashboard:` section, the dashboard's own otherwise."""
    text = FORGE.format(api="https://api.github.com", login=BOT_LOGIN)
    text += "    webhook_secret_env: GH_HOOK\n"
    secrets = {"FLEETWARDEN_GITHUB_TOKEN": DEFAULT_PAT, "GH_HOOK": "hook-secret-0123456789"}
    done = check_text(tmp_path, text, **secrets)
    assert done.returncode == 0, done.stderr
    assert "webhooks at http://127.0.0.1:8750/webhooks/gh, polled" in done.stdout
    moved = check_text(tmp_path, text + "dashboard: {listen: 127.0.0.1:9123}\n", **secrets)
    assert moved.returncode == 0, moved.stderr
    assert "webhooks at http://127.0.0.1:9123/webhooks/gh, polled" in moved.stdout


def test_a_chat_connectors_token_in_an_agents_secret_env_is_refused(tmp_path: Path) -> None:
    """The Matrix bot's token variable in an agent's secret_env: refused on its line,
    naming the agent and the key that holds it, and the token never shown."""
    text = (
        "state_dir: ./state\nconnectors:\n  matrix:\n    homeserver: http://127.0.0.1:6167\n"
        '    user_id: "@fw:example.org"\n    access_token_env: MATRIX_TOKEN\n'
        "agents:\n  - name: coder\n    runtime: stub\n    secret_env: [MATRIX_TOKEN]\n"
    )
    done = check_text(tmp_path, text, MATRIX_TOKEN=TOKEN)
    assert done.returncode == 2
    assert (
        "fleetwarden.yaml:10: agents[0].secret_env[0]: agent 'coder' would get MATRIX_TOKEN, "
        "which holds the Matrix bot's access token (connectors.matrix.access_token_env)"
    ) in done.stderr
    assert TOKEN not in done.stderr + done.stdout

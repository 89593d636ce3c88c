"""``fleetwarden check-config`` reads each repository's default branch with its credential,
against a real git upstream that takes only its token, and says why one cannot be read —
never repeating the token."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.git_upstream import GitUpstream, served_app
from tests.integration.console_bot import FLEETWARDEN, clean_env

pytestmark = pytest.mark.integration

TOKEN = "ghp_checkConfigToken0123456789abcdefABCD"


@pytest.fixture
def upstream(tmp_path: Path) -> Iterator[GitUpstream]:
    with served_app(tmp_path / "up", TOKEN) as served:
        yield served


def check(
    tmp_path: Path, url: str, token: str, branch: str = "main"
) -> subprocess.CompletedProcess[str]:
    config = tmp_path / "fleetwarden.yaml"
    config.write_text(
        f"state_dir: ./state\nrepos:\n  app:\n    url: {url}\n    token_env: APP_TOKEN\n"
        f"    default_branch: {branch}\n"
    )
    return subprocess.run(
        [str(FLEETWARDEN), "check-config", "--config", str(config)],
        env=clean_env(APP_TOKEN=token),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_a_repository_read_with_its_token_passes(tmp_path: Path, upstream: GitUpstream) -> None:
    done = check(tmp_path, upstream.url("app"), TOKEN)
    assert done.returncode == 0, done.stderr
    assert "app: " in done.stdout and "token" in done.stdout


def test_a_wrong_token_or_branch_is_named_and_the_token_never_shown(
    tmp_path: Path, upstream: GitUpstream
) -> None:
    wrong = "ghp_wrongToken9999999999999999999999999"
    done = check(tmp_path, upstream.url("app"), wrong)
    assert done.returncode == 2
    assert "repository app" in done.stderr and "cannot be read" in done.stderr
    assert wrong not in done.stderr + done.stdout
    done = check(tmp_path, upstream.url("app"), TOKEN, branch="trunk")
    assert done.returncode == 2 and "has no branch trunk" in done.stderr

"""`fleetwarden init --preset forge` through the real CLI speaks its forge's words: a GitLab
forge's preset says GitLab and merge requests, in what init prints and in the files it
writes, and those files pass `check-config` against a GitLab on loopback."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.fakes.gitlab.api import BOT_LOGIN, GITLAB_TOKEN, fake_gitlab_thread
from tests.integration.console_bot import FLEETWARDEN, clean_env

pytestmark = pytest.mark.integration

SECRET = "init-webhook-secret-0123456789"


def _cli(cwd: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(FLEETWARDEN), *args],
        cwd=cwd,
        env=clean_env(**env),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_the_gitlab_forge_preset_speaks_of_merge_requests(tmp_path: Path) -> None:
    """`init --preset forge --forge-kind gitlab` says GitLab and merge requests, never GitHub,
    Gitea or pull requests, in its output and files; the config checks as written."""
    made = _cli(tmp_path, "init", "made", "--preset", "pair")  # a repository to work on
    assert made.returncode == 0, made.stderr
    with fake_gitlab_thread() as gitlab:
        gitlab.add_project("acme/app")
        done = _cli(
            tmp_path,
            "init",
            "forge",
            "--preset",
            "forge",
            "--forge-kind",
            "gitlab",
            "--forge-api",
            gitlab.api_url,
            "--login",
            BOT_LOGIN,
            "--repo-url",
            str(tmp_path / "made" / "repo"),
        )
        assert done.returncode == 0, done.stderr
        config = tmp_path / "forge" / "fleetwarden.yaml"
        written = config.read_text() + (config.parent / "roster.yaml").read_text()
        for said in (done.stdout, written):
            assert "GitLab issues labelled `fleetwarden:coder`" in said
            assert "merge requests the conversation" in said
            for wrong in ("GitHub", "Gitea", "pull request"):
                assert wrong not in said, (wrong, said)
        assert "its merge request\n# is the conversation" in config.read_text()
        assert "works the forge's issues into merge requests" in written
        checked = _cli(
            tmp_path,
            "check-config",
            "--config",
            str(config),
            FORGE_TOKEN=GITLAB_TOKEN,
            FORGE_WEBHOOK_SECRET=SECRET,
        )
        assert checked.returncode == 0, checked.stderr
        assert f"{config}: OK" in checked.stdout


def test_the_github_forge_preset_keeps_pull_requests(tmp_path: Path) -> None:
    """`init --preset forge` (GitHub by default) still says GitHub and pull requests."""
    done = _cli(tmp_path, "init", "--preset", "forge")
    assert done.returncode == 0, done.stderr
    written = (tmp_path / "fleetwarden.yaml").read_text() + (tmp_path / "roster.yaml").read_text()
    for said in (done.stdout, written):
        assert "GitHub issues labelled `fleetwarden:coder`" in said
        assert "pull requests the conversation" in said
        assert "GitLab" not in said and "merge request" not in said

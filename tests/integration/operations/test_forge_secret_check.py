"""A forge's webhook secret that is an API token — shaped like one, or the forge's token
itself — is refused by the real `fleetwarden check-config` and `fleetwarden run` at the
`webhook_secret_env` line, naming the variables to swap, never the value."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.integration.console_bot import FLEETWARDEN, clean_env

pytestmark = pytest.mark.integration

# Built here, never a literal shaped like a real token.
GITHUB_SHAPED = "ghp" + "_" + "a1B2c3D4" * 4 + "e5F6"
GITLAB_SHAPED = "glpat" + "-" + "x1Y2z3W4v5U6t7S8r9Q0"
PLAIN_TOKEN = "forge-token-not-shaped-0123456789"
SHAPED = "a value shaped like an API token (ghp_…, glpat-…, or another service's)"


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


def _forge_config(tmp_path: Path, kind: str) -> Path:
    done = _cli(tmp_path, "init", kind, "--preset", "forge", "--forge-kind", kind)
    assert done.returncode == 0, done.stderr
    return tmp_path / kind / "fleetwarden.yaml"


def _secret_line(config: Path) -> int:
    lines = config.read_text().splitlines()
    return next(n for n, line in enumerate(lines, 1) if "webhook_secret_env:" in line)


@pytest.mark.parametrize(
    ("kind", "token", "secret", "said"),
    [
        ("gitlab", PLAIN_TOKEN, GITLAB_SHAPED, SHAPED),
        ("github", PLAIN_TOKEN, GITHUB_SHAPED, SHAPED),
        ("gitea", PLAIN_TOKEN, PLAIN_TOKEN, "the same value as FORGE_TOKEN (token_env)"),
    ],
    ids=["gitlab-token-shaped", "github-token-shaped", "gitea-the-token-itself"],
)
def test_a_token_in_the_webhook_secret_is_refused_by_check_config_and_run(
    tmp_path: Path, kind: str, token: str, secret: str, said: str
) -> None:
    """check-config and run refuse a token in FORGE_WEBHOOK_SECRET at its line, exit 2,
    naming FORGE_TOKEN and FORGE_WEBHOOK_SECRET and the fix, never the value."""
    config = _forge_config(tmp_path, kind)
    env = {"FORGE_TOKEN": token, "FORGE_WEBHOOK_SECRET": secret}
    for verb in ("check-config", "run"):
        done = _cli(tmp_path, verb, "--config", str(config), **env)
        assert done.returncode == 2, (verb, done.stdout, done.stderr)
        assert (
            f"{config}:{_secret_line(config)}: forges.{kind}.webhook_secret_env: environment "
            f"variable FORGE_WEBHOOK_SECRET holds {said}, not the webhook secret of forge {kind}"
        ) in done.stderr, (verb, done.stderr)
        assert "Put the bot's token in FORGE_TOKEN (token_env)" in done.stderr
        assert "the secret you gave the forge's webhook" in done.stderr
        assert secret not in done.stdout + done.stderr
        assert "Traceback" not in done.stderr
    assert not (config.parent / ".fleetwarden").exists()  # run started nothing


def test_a_random_webhook_secret_passes(tmp_path: Path) -> None:
    """A secret of long random text beside a token of the forge's shape checks OK."""
    config = _forge_config(tmp_path, "gitlab")
    done = _cli(
        tmp_path,
        "check-config",
        "--config",
        str(config),
        FORGE_TOKEN=GITLAB_SHAPED,
        FORGE_WEBHOOK_SECRET="0f" * 32,
    )
    assert done.returncode == 0, done.stderr
    assert f"{config}: OK" in done.stdout

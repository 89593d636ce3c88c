"""A Slack that cannot be reached — a name that never resolves, a loopback port nobody
listens on — is said by the real `fleetwarden run` at start in `check-config --online`'s
words (the address tried, the reason, where to look), never as a bare network exception."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.integration.console_bot import FLEETWARDEN, clean_env
from tests.postgres_server import free_port

pytestmark = pytest.mark.integration

# Built here, never literals shaped like real tokens; Slack is never reached with them.
BOT = "xoxb" + "-1234-5678-" + "abcdef" * 4
APP = "xapp" + "-1-A0123-1-" + "abcdef" * 4


def _config(tmp_path: Path, api_base: str) -> Path:
    config = tmp_path / "fleetwarden.yaml"
    config.write_text(
        "state_dir: ./state\n"
        "connectors:\n"
        "  slack:\n"
        "    bot_token_env: FW_SLACK_BOT\n"
        "    app_token_env: FW_SLACK_APP\n"
        "    channel_id: C0123456789\n"
        f"    api_base: {api_base}\n"
    )
    return config


def _cli(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(FLEETWARDEN), *args],
        cwd=cwd,
        env=clean_env(FW_SLACK_BOT=BOT, FW_SLACK_APP=APP),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.mark.parametrize("where", ["unresolvable", "closed-port"])
def test_run_says_an_unreachable_slack_as_check_config_does(tmp_path: Path, where: str) -> None:
    """`run` with Slack out of reach exits 1 saying "could not reach Slack at URL (why):
    check this machine's network and api_base", as `check-config --online` says it."""
    base = (
        "http://slack.invalid/api/"
        if where == "unresolvable"
        else f"http://127.0.0.1:{free_port()}/api/"
    )
    config = _config(tmp_path, base)
    words = f"could not reach Slack at {base} ("
    fix = "): check this machine's network and api_base"
    checked = _cli(tmp_path, "check-config", "--online", "--config", str(config))
    assert f"connectors.slack.bot_token_env: {words}" in checked.stderr, checked.stderr
    assert fix in checked.stderr
    ran = _cli(tmp_path, "run", "--config", str(config))
    assert ran.returncode == 1, (ran.stdout, ran.stderr)
    assert f"fleetwarden: slack: auth.test: {words}" in ran.stderr, ran.stderr
    assert fix in ran.stderr
    said = ran.stdout + ran.stderr
    assert "ClientConnector" not in said and "Traceback" not in said, said
    assert BOT[-12:] not in said and APP[-12:] not in said

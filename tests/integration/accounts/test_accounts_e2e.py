"""Accounts through the real ``fleetwarden``: a Claude subscription in config, an agent
that spends it while holding only a placeholder, `accounts` showing the window the
provider reported, and no copy of the token in the agent's environment, any log, the
ledger or the state dir. Then the ``fleetwarden accounts`` commands: `check` against a
strict provider, `login` through a stand-in `codex`, `login --from` a Codex auth.json, and
a missing credential refused before anything starts."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.fakes.provider.background import fake_provider_thread
from tests.fakes.provider.server import Accepted, Turn, unified_headers
from tests.integration.console_bot import FLEETWARDEN, ConsoleBot, clean_env, stub_processes_in

pytestmark = pytest.mark.integration

TOKEN = "fake-oat-e2e-subscription-token-never-to-be-seen-42"
CONFIG = """\
state_dir: ./state
log_level: debug
connectors:
  console: {{}}
providers:
  anthropic:
    upstream: {upstream}
accounts:
  claude-max:
    kind: claude_subscription
    token_env: CLAUDE_MAX_TOKEN
  codex-pro:
    kind: chatgpt_subscription
agents:
  - name: asker
    runtime: stub
    model: claude-haiku-4-5
    account: claude-max
"""


def environ_of(pid: int) -> bytes:
    return Path(f"/proc/{pid}/environ").read_bytes()


def test_an_agent_spends_a_subscription_it_never_holds(tmp_path: Path) -> None:
    """The stub asks the model with a placeholder; the strict provider sees the token; the
    `accounts` command shows the 5h window; the token is nowhere but in memory."""
    now = int(time.time())
    with fake_provider_thread(
        default=Turn(text="subscribed answer"), accept=Accepted(oauth_tokens=frozenset({TOKEN}))
    ) as fake:
        fake.quota_headers[TOKEN] = unified_headers(
            five_hour=0.42, seven_day=0.1, reset_5h=now + 3600, reset_7d=now + 86400
        )
        config = tmp_path / "fleetwarden.yaml"
        config.write_text(CONFIG.format(upstream=fake.base_url))
        login = tmp_path / "state" / "accounts" / "codex-pro" / "auth.json"
        login.parent.mkdir(parents=True)
        login.write_text(json.dumps(_chatgpt_login()))
        env = clean_env(CLAUDE_MAX_TOKEN=TOKEN)
        bot = ConsoleBot(tmp_path, "--config", str(config), env=env)
        work = tmp_path / "state" / "agents" / "asker" / "work"
        try:
            bot.command('spawn asker --prompt "ask 2"', r"asker")
            bot.command("logs asker", r"answer 2/2: subscribed answer", timeout=30)
            [pid] = stub_processes_in(work)
            assert TOKEN.encode() not in environ_of(pid)
            bot.command("accounts", r"claude-max.*5h.*42%.*asker")
            bot.command("stop asker", r"Stopped asker")
            assert bot.close() == 0
        finally:
            for pid in stub_processes_in(work):
                os.kill(pid, signal.SIGKILL)
            if bot.proc.poll() is None:
                bot.kill()
        model = [r for r in fake.requests if r.api is not None]
        assert len(model) == 2 and {r.credential for r in model} == {TOKEN}
        assert not fake.refused
    for path in (tmp_path / "state").rglob("*"):
        if path.is_file():
            assert TOKEN.encode() not in path.read_bytes(), path


def test_accounts_check_says_which_credential_is_accepted(tmp_path: Path) -> None:
    """`accounts check` asks the provider (a model list, not billed) and prints no
    secret; a refused token makes it exit 1."""
    with fake_provider_thread(accept=Accepted(oauth_tokens=frozenset({TOKEN}))) as fake:
        config = tmp_path / "fleetwarden.yaml"
        config.write_text(CONFIG.format(upstream=fake.base_url).split("  codex-pro:")[0])
        run = _fleetwarden(tmp_path, "accounts", "check", "--config", str(config), token=TOKEN)
        assert run.returncode == 0, run.stderr
        assert "claude-max" in run.stdout and "accepted" in run.stdout
        assert TOKEN not in run.stdout + run.stderr
        wrong = "fake-oat-a-revoked-token-0000000000"
        run = _fleetwarden(tmp_path, "accounts", "check", "--config", str(config), token=wrong)
        assert run.returncode == 1
        assert "refused by the provider (401)" in run.stdout
        assert wrong not in run.stdout + run.stderr


def test_a_missing_credential_stops_the_start(tmp_path: Path) -> None:
    """An unset token variable and an absent ChatGPT login: exit 2 naming both fixes,
    before any state is made."""
    config = tmp_path / "fleetwarden.yaml"
    config.write_text(CONFIG.format(upstream="http://127.0.0.1:9"))
    run = _fleetwarden(tmp_path, "run", "--config", str(config), token=None)
    assert run.returncode == 2
    assert "CLAUDE_MAX_TOKEN is not set" in run.stderr
    assert "fleetwarden accounts login codex-pro" in run.stderr
    assert not (tmp_path / "state" / "ledger.db").exists()


def test_login_runs_codex_with_a_private_home_and_keeps_its_login(tmp_path: Path) -> None:
    """`accounts login` runs a `codex login` (a stand-in here: the real one needs OpenAI's
    auth host) with a private CODEX_HOME and keeps what it wrote, mode 600."""
    config = tmp_path / "fleetwarden.yaml"
    config.write_text(CONFIG.format(upstream="http://127.0.0.1:9"))
    codex = tmp_path / "bin" / "codex"
    codex.parent.mkdir()
    codex.write_text(
        "#!/usr/bin/env python3\n"
        "import json, os, sys\n"
        "assert sys.argv[1:] == ['login', '--device-auth'], sys.argv\n"
        "home = os.environ['CODEX_HOME']\n"
        "assert 'file' in open(os.path.join(home, 'config.toml')).read()\n"
        f"login = json.loads({json.dumps(json.dumps(_chatgpt_login()))})\n"
        "json.dump(login, open(os.path.join(home, 'auth.json'), 'w'))\n"
    )
    codex.chmod(0o755)
    args = ["accounts", "login", "codex-pro", "--device-auth", "--codex", str(codex)]
    run = _fleetwarden(tmp_path, *args, "--config", str(config), token=TOKEN)
    assert run.returncode == 0, run.stderr
    kept = tmp_path / "state" / "accounts" / "codex-pro" / "auth.json"
    assert json.loads(kept.read_text())["tokens"]["account_id"] == "acct-e2e"
    assert kept.stat().st_mode & 0o777 == 0o600
    assert not list(kept.parent.glob(".login-*"))  # the private CODEX_HOME is gone


def test_login_from_a_file_refuses_what_is_not_a_chatgpt_login(tmp_path: Path) -> None:
    """`--from` takes a Codex auth.json; an API-key login is refused, naming why, and
    nothing is kept."""
    config = tmp_path / "fleetwarden.yaml"
    config.write_text(CONFIG.format(upstream="http://127.0.0.1:9"))
    api_key_login = tmp_path / "auth.json"
    api_key_login.write_text(json.dumps({"OPENAI_API_KEY": "sk-proj-not-a-login-123"}))
    args = ["accounts", "login", "codex-pro", "--from", str(api_key_login)]
    run = _fleetwarden(tmp_path, *args, "--config", str(config), token=TOKEN)
    assert run.returncode == 2
    assert "not a ChatGPT login" in run.stderr and "sk-proj" not in run.stderr
    assert not (tmp_path / "state" / "accounts" / "codex-pro" / "auth.json").exists()
    api_key_login.write_text(json.dumps(_chatgpt_login()))
    run = _fleetwarden(tmp_path, *args, "--config", str(config), token=TOKEN)
    assert run.returncode == 0, run.stderr
    assert "Do not use" in run.stdout


def _fleetwarden(cwd: Path, *args: str, token: str | None) -> subprocess.CompletedProcess[str]:
    env = clean_env()
    env.pop("CLAUDE_MAX_TOKEN", None)
    if token is not None:
        env["CLAUDE_MAX_TOKEN"] = token
    return subprocess.run(
        [str(FLEETWARDEN), *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        stdin=subprocess.DEVNULL,
    )


def _chatgpt_login() -> dict[str, object]:
    """A Codex auth.json in ChatGPT mode (opaque tokens do for these checks)."""
    return {
        "OPENAI_API_KEY": None,
        "auth_mode": "chatgpt",
        "tokens": {
            "id_token": "eyJhbGciOiJub25lIn0.eyJlbWFpbCI6ImFAYi5jIn0.c2ln",
            "access_token": "access-e2e",
            "refresh_token": "refresh-e2e",
            "account_id": "acct-e2e",
        },
        "last_refresh": "2026-11-23T10:00:00Z",
    }

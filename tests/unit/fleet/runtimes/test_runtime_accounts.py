"""What an agent holds when the proxy holds its account: placeholders of the account's
shape, never the credential; and Claude's context kept bounded."""

from __future__ import annotations

import json
import tomllib
from dataclasses import replace
from pathlib import Path

import pytest

from fleet.accounts.chatgpt import jwt_claims, parse_login
from fleet.model import AgentSpec, LaunchPlan
from fleet.names import AgentName
from fleet.placeholders import PLACEHOLDER_ACCOUNT, placeholder_token
from fleet.runtimes import RuntimeContext
from fleet.runtimes.claude import ClaudeRuntime
from fleet.runtimes.codex import CodexRuntime
from fleet.runtimes.command import CommandRuntime
from fleet.runtimes.opencode import OpencodeRuntime
from fleet.runtimes.pi import PiRuntime

NAME = AgentName("coder-1")
SECRETS = {"ANTHROPIC_API_KEY": "real-anthropic-key-0001", "OPENAI_API_KEY": "real-openai-key-02"}
URLS = {
    "anthropic": "http://127.0.0.1:8800/a/coder-1/anthropic/k",
    "openai": "http://127.0.0.1:8800/a/coder-1/openai/k",
    "chatgpt": "http://127.0.0.1:8800/a/coder-1/chatgpt/k",
}


def context(tmp_path: Path, accounts: dict[str, str]) -> RuntimeContext:
    return RuntimeContext(
        home=tmp_path / "home",
        workdir=tmp_path,
        environ={"PATH": "/usr/bin:/bin", **SECRETS},
        provider_urls=URLS,
        accounts=accounts,
    )


def everything(plan: LaunchPlan) -> str:
    return json.dumps([list(plan.argv), dict(plan.env), {str(k): v for k, v in plan.files.items()}])


def spec(runtime: str, **fields: object) -> AgentSpec:
    base: dict[str, object] = {"prompt": "hi", "secret_env": tuple(SECRETS)}
    base.update(fields)
    return AgentSpec(name=NAME, runtime=runtime, **base)  # type: ignore[arg-type]


def test_claude_on_a_subscription_holds_a_placeholder_token(tmp_path: Path) -> None:
    """CLAUDE_CODE_OAUTH_TOKEN is a placeholder; no key, no auth token, MCP off."""
    plan = ClaudeRuntime().plan(
        spec("claude"), context(tmp_path, {"anthropic": "claude_subscription"})
    )
    assert plan.env["CLAUDE_CODE_OAUTH_TOKEN"] == placeholder_token(NAME)
    assert "ANTHROPIC_API_KEY" not in plan.env and "ANTHROPIC_AUTH_TOKEN" not in plan.env
    assert plan.env["ENABLE_CLAUDEAI_MCP_SERVERS"] == "false"
    assert all(secret not in everything(plan) for secret in SECRETS.values())


def test_claude_on_a_key_holds_a_placeholder_key(tmp_path: Path) -> None:
    """An api_key account: ANTHROPIC_API_KEY is a placeholder, not the secret_env value."""
    plan = ClaudeRuntime().plan(spec("claude"), context(tmp_path, {"anthropic": "api_key"}))
    assert plan.env["ANTHROPIC_API_KEY"] == placeholder_token(NAME)
    assert all(secret not in everything(plan) for secret in SECRETS.values())


def test_claude_tui_approves_the_placeholder_key(tmp_path: Path) -> None:
    """On a terminal, the key Claude Code's TUI finds approved is the placeholder it holds."""
    ctx = replace(context(tmp_path, {"anthropic": "api_key"}), tty=True)
    plan = ClaudeRuntime().plan(spec("claude"), ctx)
    state = json.loads(plan.files[ctx.home / ".claude" / ".claude.json"])
    assert state["customApiKeyResponses"]["approved"] == [placeholder_token(NAME)[-20:]]
    assert all(secret[-20:] not in everything(plan) for secret in SECRETS.values())


def test_without_an_account_secret_env_still_passes(tmp_path: Path) -> None:
    """Metering off (no account): the agent gets the key it names, as before."""
    plan = ClaudeRuntime().plan(spec("claude"), context(tmp_path, {}))
    assert plan.env["ANTHROPIC_API_KEY"] == SECRETS["ANTHROPIC_API_KEY"]


def test_claude_context_is_bounded_unless_the_agent_says(tmp_path: Path) -> None:
    """1M context off and compaction at 200k, in the env and settings.json; an agent's own
    env wins."""
    ctx = context(tmp_path, {"anthropic": "claude_subscription"})
    plan = ClaudeRuntime().plan(spec("claude"), ctx)
    assert plan.env["CLAUDE_CODE_DISABLE_1M_CONTEXT"] == "1"
    assert plan.env["CLAUDE_CODE_AUTO_COMPACT_WINDOW"] == "200000"
    settings = json.loads(plan.files[ctx.home / ".claude" / "settings.json"])
    assert settings["autoCompactWindow"] == 200_000
    own = spec("claude", env={"CLAUDE_CODE_AUTO_COMPACT_WINDOW": "120000"})
    plan = ClaudeRuntime().plan(own, ctx)
    assert plan.env["CLAUDE_CODE_AUTO_COMPACT_WINDOW"] == "120000"
    settings = json.loads(plan.files[ctx.home / ".claude" / "settings.json"])
    assert settings["autoCompactWindow"] == 120_000


def test_codex_on_a_chatgpt_login_gets_a_placeholder_login(tmp_path: Path) -> None:
    """auth.json in ChatGPT mode with placeholders; the provider needs OpenAI auth and
    points at the proxy's chatgpt route; refresh goes to the proxy."""
    ctx = context(tmp_path, {"chatgpt": "chatgpt_subscription"})
    plan = CodexRuntime().plan(spec("codex"), ctx)
    codex_home = ctx.home / ".codex"
    login = parse_login(plan.files[codex_home / "auth.json"])
    assert login.account_id == PLACEHOLDER_ACCOUNT
    assert login.refresh_token == placeholder_token(NAME)
    assert jwt_claims(login.id_token)["https://api.openai.com/auth"]["chatgpt_plan_type"]
    config = tomllib.loads(plan.files[codex_home / "config.toml"])
    provider = config["model_providers"][config["model_provider"]]
    assert provider["base_url"] == URLS["chatgpt"] + "/backend-api/codex"
    assert provider["requires_openai_auth"] is True and "env_key" not in provider
    assert config["chatgpt_base_url"] == URLS["chatgpt"] + "/backend-api/"
    assert config["cli_auth_credentials_store"] == "file"
    assert plan.env["CODEX_REFRESH_TOKEN_URL_OVERRIDE"] == URLS["chatgpt"] + "/oauth/token"
    assert "OPENAI_API_KEY" not in plan.env
    assert all(secret not in everything(plan) for secret in SECRETS.values())


def test_codex_on_an_api_key_reads_a_placeholder(tmp_path: Path) -> None:
    """An openai api_key account: env_key OPENAI_API_KEY, holding a placeholder."""
    ctx = context(tmp_path, {"openai": "api_key"})
    plan = CodexRuntime().plan(spec("codex", secret_env=("MY_KEY",)), ctx)
    config = tomllib.loads(plan.files[ctx.home / ".codex" / "config.toml"])
    assert config["model_providers"][config["model_provider"]]["env_key"] == "OPENAI_API_KEY"
    assert plan.env["OPENAI_API_KEY"] == placeholder_token(NAME)


@pytest.mark.parametrize("provider", ["anthropic", "openai"])
def test_plain_programs_get_placeholder_keys(tmp_path: Path, provider: str) -> None:
    """The SDKs a command agent uses insist on a key: they get placeholders."""
    ctx = context(tmp_path, {provider: "api_key"})
    plan = CommandRuntime().plan(spec("command", argv=("python3",)), ctx)
    variable = {"anthropic": "ANTHROPIC_API_KEY", "openai": "OPENAI_API_KEY"}[provider]
    assert plan.env[variable] == placeholder_token(NAME)
    assert SECRETS[variable] not in everything(plan)


@pytest.mark.parametrize("runtime", [PiRuntime(), OpencodeRuntime()])
@pytest.mark.parametrize("kind", ["api_key", "claude_subscription"])
def test_pi_and_opencode_on_an_account_hold_a_placeholder_key(
    runtime: PiRuntime | OpencodeRuntime, kind: str, tmp_path: Path
) -> None:
    """pi and opencode will not start without a key: they get a placeholder (the proxy
    drops it and puts in the account's credential), never the real one."""
    plan = runtime.plan(spec(runtime.name), context(tmp_path, {"anthropic": kind}))
    assert plan.env["ANTHROPIC_API_KEY"] == placeholder_token(NAME)
    assert all(secret not in everything(plan) for secret in SECRETS.values())

"""The `accounts:` and `account_pools:` sections: what a config may say, and every mistake
reported with its line and the fix, before anything starts."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from bot.app.assembly import roster_of
from bot.config import Config, ConfigError, ConfigProblem, Offered, load_config, parse_config
from fleet.accounts.model import AccountKind

FILE = "fleetwarden.yaml"
RUNTIMES = ("stub", "claude", "codex", "pi", "opencode", "command")


def parse(text: str, **kwargs: Any) -> Config:
    return parse_config(text, FILE, base_dir=Path("/srv/fw"), offered=Offered(RUNTIMES), **kwargs)


def problems_of(text: str, **kwargs: Any) -> list[ConfigProblem]:
    with pytest.raises(ConfigError) as caught:
        parse(text, **kwargs)
    return list(caught.value.problems)


def only(text: str, **kwargs: Any) -> ConfigProblem:
    problems = problems_of(text, **kwargs)
    assert len(problems) == 1, problems
    return problems[0]


ACCOUNTS = """\
accounts:
  claude-max:
    kind: claude_subscription
    token_env: CLAUDE_MAX_TOKEN
  claude-team:
    kind: claude_subscription
    token_env: CLAUDE_TEAM_TOKEN
  anthropic-key:
    kind: api_key
    provider: anthropic
    key_env: ANTHROPIC_API_KEY
  codex-pro:
    kind: chatgpt_subscription
account_pools:
  claude: [claude-max, claude-team]
"""


def test_accounts_and_pools_are_read() -> None:
    """Each kind gets its provider; pools list their accounts; the first of a provider is
    its default."""
    config = parse(ACCOUNTS)
    accounts = config.accounts.accounts
    assert accounts["claude-max"].provider == "anthropic"
    assert accounts["claude-max"].kind is AccountKind.CLAUDE_SUBSCRIPTION
    assert accounts["claude-max"].secret_env == "CLAUDE_MAX_TOKEN"
    assert accounts["codex-pro"].provider == "chatgpt"
    assert accounts["anthropic-key"].kind is AccountKind.API_KEY
    assert config.accounts.pools["claude"] == ("claude-max", "claude-team")
    default = config.accounts.default_for("anthropic")
    assert default is not None and default.name == "claude-max"


def test_the_default_mark_wins_over_order() -> None:
    """`default: true` makes an account its provider's default."""
    text = ACCOUNTS.replace(
        "    key_env: ANTHROPIC_API_KEY\n", "    key_env: ANTHROPIC_API_KEY\n    default: true\n"
    )
    default = parse(text).accounts.default_for("anthropic")
    assert default is not None and default.name == "anthropic-key"


def test_a_pool_mixing_providers_is_refused() -> None:
    """A pool's accounts must share one provider: the line and both providers are named."""
    text = ACCOUNTS.replace("claude: [claude-max, claude-team]", "mixed: [claude-max, codex-pro]")
    problem = only(text)
    assert problem.key_path == "account_pools.mixed[1]"
    assert "mixes providers" in problem.message
    assert "'chatgpt'" in problem.message and "'anthropic'" in problem.message


def test_a_pool_naming_an_unknown_account_is_refused() -> None:
    """A typo in a pool is caught, with a guess."""
    text = ACCOUNTS.replace("[claude-max, claude-team]", "[claude-max, claude-tem]")
    problem = only(text)
    assert "unknown account 'claude-tem'" in problem.message
    assert "did you mean 'claude-team'" in problem.message


def test_an_agent_naming_an_undefined_account_is_refused() -> None:
    """The roster entry's line names the account and where to define it."""
    text = ACCOUNTS + "agents:\n  - name: c1\n    runtime: claude\n    account: nope\n"
    problem = only(text)
    assert problem.key_path == "agents[0].account"
    assert "no account or pool named 'nope'" in problem.message


def test_an_agent_asking_for_another_providers_account_is_refused() -> None:
    """Claude Code cannot use a ChatGPT login: said at load, with the providers."""
    text = ACCOUNTS + "agents:\n  - name: c1\n    runtime: claude\n    account: codex-pro\n"
    problem = only(text)
    assert "provider 'chatgpt'" in problem.message
    assert "speaks to anthropic" in problem.message


@pytest.mark.parametrize(
    ("entry", "needle"),
    [
        ("kind: api_key\n    key_env: K", "needs `provider`"),
        ("kind: api_key\n    provider: anthropic", "needs `key_env`"),
        ("kind: claude_subscription", "needs `token_env`"),
        (
            "kind: claude_subscription\n    token_env: T\n    provider: openai",
            "leave `provider` out",
        ),
        ("kind: chatgpt_subscription\n    key_env: K", "its login is in the state dir"),
        ("kind: claude_subscription\n    token_env: sk-ant-oat01-abcdef", "never the secret"),
        ("kind: api_key\n    provider: anthropc\n    key_env: K", "did you mean 'anthropic'"),
    ],
)
def test_bad_entries_name_the_fix(entry: str, needle: str) -> None:
    """Each malformed account says what to write instead (and never echoes a secret)."""
    problem = only(f"accounts:\n  a1:\n    {entry}\n")
    assert needle in problem.message
    assert "sk-ant-oat01-abcdef" not in problem.message


def test_accounts_need_metering() -> None:
    """With metering off nobody could hold the credentials: refused."""
    problem = only(ACCOUNTS + "metering:\n  enabled: false\n")
    assert "accounts need the metering proxy" in problem.message


def test_a_budget_may_name_an_account_or_provider() -> None:
    """`account:NAME` and `provider:NAME` are scopes; an unknown one is refused."""
    budgets = (
        "budgets:\n  - scope: account:claude-max\n    window: 5h\n    limit_tokens: 100\n"
        "  - scope: provider:anthropic\n    window: 7d\n    limit_tokens: 900\n"
    )
    config = parse(ACCOUNTS + budgets)
    assert set(config.budgets) == {"account:claude-max", "provider:anthropic"}
    problem = only(ACCOUNTS + budgets.replace("account:claude-max", "account:nobody"))
    assert "names no account" in problem.message


def test_secret_env_keys_become_implicit_accounts() -> None:
    """An existing roster with `secret_env: [ANTHROPIC_API_KEY]` loads unchanged, and the
    key becomes an api_key account the proxy holds (not the agent)."""
    config = parse(
        "agents:\n  - name: c1\n    runtime: claude\n"
        "    secret_env: [ANTHROPIC_API_KEY, GH_TOKEN]\n"
    )
    account = config.accounts.accounts["env-anthropic-api-key"]
    assert account.implicit and account.kind is AccountKind.API_KEY
    assert account.secret_env == "ANTHROPIC_API_KEY"
    assert roster_of(config)["c1"].account == "env-anthropic-api-key"  # type: ignore[index]
    assert config.accounts.default_for("anthropic") is None  # never a default


def test_without_metering_secret_env_stays_with_the_agent() -> None:
    """Metering off: nothing to hold keys, so no implicit account."""
    config = parse(
        "metering:\n  enabled: false\nagents:\n  - name: c1\n    runtime: claude\n"
        "    secret_env: [ANTHROPIC_API_KEY]\n"
    )
    assert not config.accounts
    assert roster_of(config)["c1"].account is None  # type: ignore[index]


def test_missing_credentials_are_config_errors(tmp_path: Path) -> None:
    """An unset or empty variable, a missing or wrong login: named with the fix; a value
    is never shown."""
    path = tmp_path / FILE
    path.write_text(ACCOUNTS, encoding="utf-8")
    (tmp_path / ".fleetwarden" / "accounts" / "codex-pro").mkdir(parents=True)
    login = tmp_path / ".fleetwarden" / "accounts" / "codex-pro" / "auth.json"
    login.write_text(json.dumps({"OPENAI_API_KEY": "sk-proj-secret-value"}), encoding="utf-8")
    environ = {"CLAUDE_MAX_TOKEN": "tok-max-1234567890", "CLAUDE_TEAM_TOKEN": "  "}
    with pytest.raises(ConfigError) as caught:
        load_config(path, environ, offered=Offered(RUNTIMES))
    text = str(caught.value)
    assert "CLAUDE_TEAM_TOKEN is empty" in text
    assert "ANTHROPIC_API_KEY is not set" in text
    assert "not a ChatGPT login" in text and "fleetwarden accounts login codex-pro" in text
    assert "sk-proj-secret-value" not in text and "tok-max" not in text


def test_credentials_check_can_be_skipped(tmp_path: Path) -> None:
    """`accounts login` loads the config before the login it makes exists."""
    path = tmp_path / FILE
    path.write_text(ACCOUNTS, encoding="utf-8")
    config = load_config(path, {}, offered=Offered(RUNTIMES), credentials=False)
    assert "codex-pro" in config.accounts.accounts


def test_secret_env_may_not_hand_an_account_credential_to_an_agent() -> None:
    """An agent listing an account's variable, or a subscription token, in secret_env is
    refused: the proxy holds those, agents never do."""
    text = ACCOUNTS + (
        "agents:\n  - name: c1\n    runtime: claude\n    secret_env: [CLAUDE_MAX_TOKEN]\n"
        "  - name: c2\n    runtime: claude\n    secret_env: [CLAUDE_CODE_OAUTH_TOKEN]\n"
    )
    first, second = problems_of(text)
    assert first.key_path == "agents[0].secret_env[0]"
    assert "holds account 'claude-max'" in first.message and "account: claude-max" in first.message
    assert "make it an account the proxy holds" in second.message


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        (
            "accounts:\n  c:\n    kind: chatgpt_subscription\n"
            "    token_url: http://auth.example.org/oauth/token\n",
            "must be https://",
        ),
        (
            "accounts:\n  env-mine:\n    kind: api_key\n    provider: anthropic\n    key_env: K\n",
            "names starting with env-",
        ),
    ],
)
def test_risky_account_settings_are_refused(text: str, needle: str) -> None:
    """A refresh token sent in the clear, a name that would shadow an implicit account."""
    assert needle in only(text).message


def test_codex_takes_only_an_openai_variable_for_its_key() -> None:
    """Codex with `secret_env: [GITHUB_TOKEN]` gets no implicit account from it (the
    token stays the agent's and never goes to OpenAI); `MY_OPENAI_KEY` is a key."""
    config = parse(
        "agents:\n  - name: x1\n    runtime: codex\n    secret_env: [GITHUB_TOKEN]\n"
        "  - name: x2\n    runtime: codex\n    secret_env: [GITHUB_TOKEN, MY_OPENAI_KEY]\n"
    )
    specs = roster_of(config)
    assert specs["x1"].account is None  # type: ignore[index]
    assert specs["x2"].account == "env-my-openai-key"  # type: ignore[index]

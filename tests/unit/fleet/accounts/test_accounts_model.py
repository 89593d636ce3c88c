"""Which accounts a run may use: named account or pool, `defaults.account`, the provider's
default; and the headers the proxy swaps."""

from __future__ import annotations

import pytest
from multidict import CIMultiDict

from fleet.accounts.inject import OAUTH_BETA, Credential, inject
from fleet.accounts.model import (
    Account,
    AccountError,
    AccountKind,
    AccountSet,
    implicit_account,
    key_vars_of,
)

MAX = Account("claude-max", "anthropic", AccountKind.CLAUDE_SUBSCRIPTION, "T1")
TEAM = Account("claude-team", "anthropic", AccountKind.CLAUDE_SUBSCRIPTION, "T2")
KEY = Account("openai-key", "openai", AccountKind.API_KEY, "OPENAI_API_KEY")
CODEX = Account("codex-pro", "chatgpt", AccountKind.CHATGPT_SUBSCRIPTION)
ACCOUNTS = AccountSet(
    {a.name: a for a in (MAX, TEAM, KEY, CODEX)}, {"claude": ("claude-max", "claude-team")}
)


def test_a_pool_offers_its_accounts() -> None:
    """A pooled Claude agent may use either subscription."""
    assert ACCOUNTS.choices("claude", "claude") == {"anthropic": (MAX, TEAM)}


def test_no_account_named_means_the_providers_default() -> None:
    """Ad-hoc `spawn --runtime claude` gets the first anthropic account."""
    assert ACCOUNTS.choices("claude", None) == {"anthropic": (MAX,)}


def test_codex_prefers_a_chatgpt_login() -> None:
    """Codex talks to one provider: its ChatGPT login before an API key."""
    assert ACCOUNTS.choices("codex", None) == {"chatgpt": (CODEX,)}
    only_key = AccountSet({KEY.name: KEY})
    assert only_key.choices("codex", None) == {"openai": (KEY,)}


def test_plain_programs_get_every_providers_default() -> None:
    """The command runtime may call any provider."""
    assert set(ACCOUNTS.choices("command", None)) == {"anthropic", "openai", "chatgpt"}


def test_defaults_account_applies_where_it_fits() -> None:
    """`defaults.account` is used by runtimes of its provider, ignored by others."""
    assert ACCOUNTS.choices("claude", None, fallback="claude") == {"anthropic": (MAX, TEAM)}
    assert ACCOUNTS.choices("codex", None, fallback="claude") == {"chatgpt": (CODEX,)}


def test_an_account_of_another_provider_is_refused() -> None:
    """Claude Code cannot spend a ChatGPT login."""
    with pytest.raises(AccountError, match="speaks to anthropic"):
        ACCOUNTS.choices("claude", "codex-pro")
    with pytest.raises(AccountError, match="no account or pool named 'nope'"):
        ACCOUNTS.choices("claude", "nope")


def test_secret_env_provider_keys() -> None:
    """Which secret_env entries are provider keys the proxy takes over."""
    assert key_vars_of("claude", ("GH_TOKEN", "ANTHROPIC_API_KEY")) == {
        "ANTHROPIC_API_KEY": "anthropic"
    }
    assert key_vars_of("codex", ("MY_OPENAI",)) == {"MY_OPENAI": "openai"}
    assert key_vars_of("claude", ("GH_TOKEN",)) == {}
    assert implicit_account("ANTHROPIC_API_KEY", "anthropic").name == "env-anthropic-api-key"


def headers(**values: str) -> CIMultiDict[str]:
    return CIMultiDict((k.replace("_", "-"), v) for k, v in values.items())


def test_an_api_key_replaces_whatever_the_agent_sent() -> None:
    """x-api-key for an Anthropic key; the agent's Bearer and the OAuth flag go."""
    sent = headers(authorization="Bearer placeholder", anthropic_beta=f"a,{OAUTH_BETA}")
    key = Account("k", "anthropic", AccountKind.API_KEY, "K")
    inject(sent, Credential(key, "real-key"), anthropic_api=True)
    assert sent["x-api-key"] == "real-key"
    assert "authorization" not in sent
    assert sent["anthropic-beta"] == "a"


def test_a_subscription_gets_bearer_and_the_oauth_flag() -> None:
    """Claude subscriptions: Bearer plus the OAuth beta flag; any x-api-key dropped."""
    sent = headers(x_api_key="placeholder", anthropic_beta="claude-code-20250219")
    inject(sent, Credential(MAX, "real-token"), anthropic_api=True)
    assert sent["authorization"] == "Bearer real-token"
    assert "x-api-key" not in sent
    assert sent["anthropic-beta"] == f"claude-code-20250219,{OAUTH_BETA}"


def test_a_chatgpt_login_gets_bearer_and_account_id() -> None:
    """Codex: the access token and the real ChatGPT account id."""
    sent = headers(authorization="Bearer p", chatgpt_account_id="fleetwarden-placeholder")
    inject(sent, Credential(CODEX, "access", "acct-1"), anthropic_api=False)
    assert sent["authorization"] == "Bearer access"
    assert sent.getall("chatgpt-account-id") == ["acct-1"]

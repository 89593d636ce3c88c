"""Accounts: what pays for an agent's model requests, and which agents use which.

An **account** is one credential of one provider, held by the metering proxy and never by
an agent:

* ``api_key`` — a provider API key, from an environment variable named in config;
* ``claude_subscription`` — a Claude Pro/Max OAuth token (``claude setup-token``), from an
  environment variable named in config; provider ``anthropic``;
* ``chatgpt_subscription`` — a ChatGPT login for Codex, kept in the state dir; provider
  ``chatgpt`` (Codex's ChatGPT backend, a different API from ``api.openai.com``).

A **pool** is a named list of accounts of one provider. An agent names an account or a
pool (or nothing: the provider's default account); each new run of a pooled agent is
placed on the account with the most room (:mod:`fleet.accounts.routing`).

A provider key listed in an agent's ``secret_env`` (``ANTHROPIC_API_KEY`` for Claude Code,
pi and opencode; Codex's key variable) becomes an *implicit* ``api_key`` account, so a
config written before accounts existed runs unchanged — with the key in the proxy, not
in the agent.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from fleet.errors import FleetError

ANTHROPIC: Final = "anthropic"
OPENAI: Final = "openai"
CHATGPT: Final = "chatgpt"

# The providers each CLI runtime can speak to, most wanted first. Runtimes not listed
# (``stub``, ``command``) are plain programs that may use any provider.
RUNTIME_PROVIDERS: Final[Mapping[str, tuple[str, ...]]] = {
    "claude": (ANTHROPIC,),
    "codex": (CHATGPT, OPENAI),
    "pi": (ANTHROPIC,),
    "opencode": (ANTHROPIC,),
}

# The variable each provider's key is read from when an agent lists it in ``secret_env``.
PROVIDER_KEY_VARS: Final[Mapping[str, str]] = {
    "ANTHROPIC_API_KEY": ANTHROPIC,
    "OPENAI_API_KEY": OPENAI,
}
# Other variables the CLIs read a provider credential from: never given to an agent whose
# credentials the proxy holds (nor made into accounts).
CREDENTIAL_VARS: Final = frozenset({"ANTHROPIC_AUTH_TOKEN", "CLAUDE_CODE_OAUTH_TOKEN"})


class AccountKind(enum.StrEnum):
    """How an account proves itself upstream, and so what the proxy injects."""

    API_KEY = "api_key"
    CLAUDE_SUBSCRIPTION = "claude_subscription"
    CHATGPT_SUBSCRIPTION = "chatgpt_subscription"

    @property
    def fixed_provider(self) -> str | None:
        """The provider a subscription belongs to; ``None`` for API keys (any provider)."""
        return {
            AccountKind.CLAUDE_SUBSCRIPTION: ANTHROPIC,
            AccountKind.CHATGPT_SUBSCRIPTION: CHATGPT,
        }.get(self)

    @property
    def is_subscription(self) -> bool:
        return self is not AccountKind.API_KEY


class AccountError(FleetError):
    """An account that cannot be used as asked: unknown, of another provider, or with no
    usable credential. The message names the account and the fix."""


@dataclass(frozen=True, slots=True)
class Account:
    """One account. ``secret_env`` names the variable holding an API key or OAuth token
    (``None`` for a ChatGPT login, kept in the state dir). ``implicit``: made from an
    agent's ``secret_env``, not written under ``accounts:``."""

    name: str
    provider: str
    kind: AccountKind
    secret_env: str | None = None
    default: bool = False
    implicit: bool = False


@dataclass(frozen=True, slots=True)
class AccountSet:
    """Every account and pool of a Fleetwarden, and the rules that pick one for an agent."""

    accounts: Mapping[str, Account] = field(default_factory=dict)
    pools: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.accounts)

    def names(self) -> tuple[str, ...]:
        """Everything an agent may name: accounts and pools."""
        return tuple(sorted({*self.accounts, *self.pools}))

    def members(self, name: str) -> tuple[Account, ...]:
        """The accounts behind ``name`` (an account is a pool of one)."""
        if name in self.pools:
            return tuple(self.accounts[member] for member in self.pools[name])
        if name in self.accounts:
            return (self.accounts[name],)
        known = ", ".join(self.names()) or "none are configured"
        raise AccountError(
            f"no account or pool named {name!r} (known: {known}); add it under `accounts:` "
            "in the config file"
        )

    def default_for(self, provider: str) -> Account | None:
        """The provider's default account: the one marked ``default``, else the first
        written under ``accounts:``. Implicit accounts are never a default."""
        own = [a for a in self.accounts.values() if a.provider == provider and not a.implicit]
        return next((a for a in own if a.default), own[0] if own else None)

    def choices(
        self, runtime: str, wanted: str | None, *, fallback: str | None = None
    ) -> dict[str, tuple[Account, ...]]:
        """Per provider the agent's runtime speaks, the accounts a new run may use, best
        first by config order: the named account or pool (``wanted``, which must be of one
        of those providers), else ``fallback`` (``defaults.account``) when it fits, else
        each provider's default account. Providers with no account are left out."""
        providers = RUNTIME_PROVIDERS.get(runtime)
        if wanted is not None:
            members = self.members(wanted)
            provider = members[0].provider
            if providers is not None and provider not in providers:
                raise AccountError(
                    f"account {wanted!r} is for provider {provider!r}, but runtime "
                    f"{runtime!r} speaks to {' or '.join(providers)}: name an account of "
                    "that provider"
                )
            return {provider: members}
        if fallback is not None:
            members = self.members(fallback)
            if providers is None or members[0].provider in providers:
                return {members[0].provider: members}
        out: dict[str, tuple[Account, ...]] = {}
        for provider in providers or sorted({a.provider for a in self.accounts.values()}):
            default = self.default_for(provider)
            if default is not None:
                out[provider] = (default,)
                if providers is not None:
                    break  # a CLI talks to one provider at a time: its first with an account
        return out


def implicit_account(variable: str, provider: str) -> Account:
    """The ``api_key`` account an agent's ``secret_env`` entry stands for."""
    return Account(
        name=f"env-{variable.lower().replace('_', '-')}",
        provider=provider,
        kind=AccountKind.API_KEY,
        secret_env=variable,
        implicit=True,
    )


def key_vars_of(runtime: str, secret_env: Sequence[str]) -> dict[str, str]:
    """The entries of an agent's ``secret_env`` that hold a provider key, with the
    provider: ``ANTHROPIC_API_KEY``, ``OPENAI_API_KEY``, and for Codex, without the latter,
    the first entry whose name says OpenAI (``MY_OPENAI_KEY``) — the variable older
    configs told Codex to read its key from. ``GITHUB_TOKEN`` is never taken for one."""
    found = {v: p for v, p in PROVIDER_KEY_VARS.items() if v in secret_env}
    if runtime == "codex" and "OPENAI_API_KEY" not in secret_env:
        named = next((v for v in secret_env if "OPENAI" in v), None)
        if named is not None:
            found[named] = OPENAI
    return found


def own_key_var(runtime: str, secret_env: Sequence[str]) -> tuple[str, str] | None:
    """The provider key among ``secret_env`` the agent's runtime itself would use, and its
    provider: the one its implicit account is made from."""
    providers = RUNTIME_PROVIDERS.get(runtime)
    for variable, provider in key_vars_of(runtime, secret_env).items():
        if providers is None or provider in providers:
            return variable, provider
    return None


def login_path(state_dir: Path, account: str) -> Path:
    """Where a ChatGPT account's login lives: ``<state_dir>/accounts/<name>/auth.json``."""
    return state_dir / "accounts" / account / "auth.json"

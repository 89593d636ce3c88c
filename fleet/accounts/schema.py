"""The config file's ``accounts`` and ``account_pools`` sections, and the checks that span
them and the roster.

Each entry is checked on its own by pydantic (a kind's required variable, a provider a
subscription cannot have). What needs the whole file — a pool naming an unknown account
or mixing providers, two defaults for one provider, an agent naming an account that does
not exist or one its runtime cannot speak to — is :func:`section_problems`. Whether each
named variable is set, and whether a ChatGPT login is in the state dir, is
:func:`environment_problems`, run where the environment is known.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator
from pydantic_core import PydanticCustomError

from fleet.accounts.model import (
    Account,
    AccountError,
    AccountKind,
    AccountSet,
    login_path,
)
from fleet.caps import MAX_RUNNING_HELP
from fleet.schema import EnvVarName, did_you_mean, token_problem

Loc = tuple[str | int, ...]

ACCOUNT_NAME_PATTERN = r"[a-z][a-z0-9-]{0,31}"
DEFAULT_TOKEN_URL = "https://auth.openai.com/oauth/token"
_NAME = re.compile(ACCOUNT_NAME_PATTERN)
_URL = re.compile(r"https?://[^\s/?#@]+(/[^\s?#]*)?")
_PROVIDER = re.compile(r"[a-z][a-z0-9_-]{0,31}")


def _check_name(value: str) -> str:
    if value.startswith("env-"):
        raise PydanticCustomError(
            "account_name",
            f"{value[:40]!r}: names starting with env- are those of the accounts made from "
            "an agent's secret_env; choose another name",
        )
    if not _NAME.fullmatch(value):
        raise PydanticCustomError(
            "account_name",
            f"{value[:40]!r} is not an account name: 1-32 characters, a lowercase letter "
            "first, then lowercase letters, digits or '-' (e.g. claude-max)",
        )
    return value


def _check_url(value: str) -> str:
    if not _URL.fullmatch(value):
        raise PydanticCustomError(
            "token_url", "must be an http:// or https:// URL without credentials or query"
        )
    host = value.split("://", 1)[1].split("/", 1)[0].rsplit(":", 1)[0]
    if value.startswith("http://") and not (host == "localhost" or host.startswith("127.")):
        raise PydanticCustomError(
            "token_url",
            "must be https:// (a refresh token travels to it); plain http:// is only for "
            "127.0.0.1 or localhost",
        )
    return value


AccountRef = Annotated[str, AfterValidator(_check_name)]
KindName = Literal["api_key", "claude_subscription", "chatgpt_subscription"]


class AccountEntry(BaseModel):
    """One account the proxy holds for agents: an API key, a Claude subscription's OAuth
    token, or a ChatGPT login. Agents never see the credential."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: KindName = Field(
        description=(
            "`api_key` (a provider API key, from `key_env`), `claude_subscription` (a "
            "Claude Pro/Max token made once with `claude setup-token`, from `token_env`) or "
            "`chatgpt_subscription` (a ChatGPT login for Codex, made once with "
            "`fleetwarden accounts login NAME` and kept in the state dir)."
        )
    )
    provider: str | None = Field(
        default=None,
        description=(
            "The provider (a name under `providers`: `anthropic`, `openai`, or your own). "
            "Required for `api_key`; a `claude_subscription` is `anthropic` and a "
            "`chatgpt_subscription` is `chatgpt` (Codex's ChatGPT backend)."
        ),
    )
    key_env: EnvVarName | None = Field(
        default=None,
        description="For `api_key`: the environment variable holding the key.",
    )
    token_env: EnvVarName | None = Field(
        default=None,
        description=(
            "For `claude_subscription`: the environment variable holding the token "
            "`claude setup-token` printed."
        ),
    )
    default: bool = Field(
        default=False,
        strict=True,
        description=(
            "The provider's default account: agents that name none use it. Default: the "
            "first account of each provider."
        ),
    )
    token_url: Annotated[str, AfterValidator(_check_url)] = Field(
        default=DEFAULT_TOKEN_URL,
        description=(
            "For `chatgpt_subscription`: where the login's access token is refreshed "
            f"(default `{DEFAULT_TOKEN_URL}`)."
        ),
    )
    max_running: int | None = Field(
        default=None,
        gt=0,
        strict=True,
        description="How many agents on this account may run at once: " + MAX_RUNNING_HELP,
    )

    @model_validator(mode="after")
    def _coherent(self) -> AccountEntry:
        kind = AccountKind(self.kind)
        fixed = kind.fixed_provider
        if fixed is not None and self.provider not in (None, fixed):
            raise PydanticCustomError(
                "account_provider",
                f"a {kind.value} is always provider {fixed!r}: leave `provider` out",
            )
        if self.provider is not None and not _PROVIDER.fullmatch(self.provider):
            raise PydanticCustomError(
                "account_provider", "provider must be a provider name such as anthropic"
            )
        needs = {
            AccountKind.API_KEY: "key_env",
            AccountKind.CLAUDE_SUBSCRIPTION: "token_env",
            AccountKind.CHATGPT_SUBSCRIPTION: None,
        }[kind]
        for key in ("key_env", "token_env"):
            if key != needs and getattr(self, key) is not None:
                raise PydanticCustomError(
                    "account_key",
                    f"`{key}` is not for a {kind.value} account"
                    + (f": it takes `{needs}`" if needs else ": its login is in the state dir"),
                )
        if needs is not None and getattr(self, needs) is None:
            example = "ANTHROPIC_API_KEY" if needs == "key_env" else "CLAUDE_CODE_OAUTH_TOKEN"
            raise PydanticCustomError(
                "account_secret",
                f"a {kind.value} account needs `{needs}`: the NAME of the environment "
                f"variable holding it (e.g. {needs}: {example})",
            )
        if kind is AccountKind.API_KEY and self.provider is None:
            raise PydanticCustomError(
                "account_provider", "an api_key account needs `provider` (e.g. anthropic)"
            )
        return self

    def to_account(self, name: str) -> Account:
        kind = AccountKind(self.kind)
        return Account(
            name=name,
            provider=kind.fixed_provider or self.provider or "",
            kind=kind,
            secret_env=self.key_env or self.token_env,
            default=self.default,
        )


AccountsSection = dict[AccountRef, AccountEntry]
PoolsSection = dict[AccountRef, tuple[AccountRef, ...]]


def account_set(
    accounts: Mapping[str, AccountEntry],
    pools: Mapping[str, Sequence[str]],
    implicit: Sequence[Account] = (),
) -> AccountSet:
    """The sections as an :class:`AccountSet` (checked first by :func:`section_problems`)."""
    named = {name: entry.to_account(name) for name, entry in accounts.items()}
    for account in implicit:
        named.setdefault(account.name, account)
    return AccountSet(named, {name: tuple(members) for name, members in pools.items()})


def section_problems(
    accounts: Mapping[str, AccountEntry],
    pools: Mapping[str, Sequence[str]],
    agents: Sequence[tuple[Loc, str, str | None]],
    providers: Sequence[str],
    where: Callable[[Loc], str],
) -> Iterator[tuple[Loc, str]]:
    """Problems spanning entries, each with its place. ``agents`` holds, per agent entry
    (and ``defaults``), where its ``account`` is written, its runtime and the name it gives;
    ``providers`` the known provider names."""
    for name, entry in accounts.items():
        if entry.provider is not None and entry.provider not in providers:
            guess = did_you_mean(entry.provider, providers)
            hint = f" — did you mean {guess!r}?" if guess else ""
            yield (
                ("accounts", name, "provider"),
                f"unknown provider {entry.provider!r}{hint}; known: {', '.join(providers)} "
                "(add others under `providers:`)",
            )
    defaults: dict[str, str] = {}
    for name, entry in accounts.items():
        provider = entry.to_account(name).provider
        if entry.default:
            if provider in defaults:
                yield (
                    ("accounts", name, "default"),
                    f"accounts {defaults[provider]!r} and {name!r} are both the default of "
                    f"provider {provider!r}: mark one",
                )
            defaults.setdefault(provider, name)
    for name, members in pools.items():
        if name in accounts:
            yield ("account_pools", name), f"{name!r} is both an account and a pool: rename one"
        if not members:
            yield ("account_pools", name), "a pool needs at least one account"
            continue
        seen: dict[str, str] = {}
        for index, member in enumerate(members):
            if member not in accounts:
                guess = did_you_mean(member, accounts)
                hint = f" — did you mean {guess!r}?" if guess else ""
                yield (
                    ("account_pools", name, index),
                    f"unknown account {member!r}{hint}; a pool lists accounts defined under "
                    "`accounts:`",
                )
                continue
            provider = accounts[member].to_account(member).provider
            if seen and provider not in seen.values():
                first = next(iter(seen))
                yield (
                    ("account_pools", name, index),
                    f"pool {name!r} mixes providers: {member!r} is {provider!r} but {first!r} "
                    f"is {seen[first]!r}; a pool's accounts must share one provider",
                )
            seen[member] = provider
    checked = account_set(
        {n: e for n, e in accounts.items() if n not in pools},
        {n: tuple(m for m in ms if m in accounts) for n, ms in pools.items() if ms},
    )
    for loc, runtime, wanted in agents:
        if wanted is None:
            continue
        try:
            checked.choices(runtime, wanted)
        except AccountError as exc:
            yield loc, str(exc)


def environment_problems(
    accounts: Mapping[str, Account],
    environ: Mapping[str, str],
    state_dir: Path,
    login_problem: Callable[[Path], str | None],
) -> Iterator[tuple[Loc, str]]:
    """Credentials that are not there: an unset or empty variable, a ChatGPT login missing
    from the state dir or not a ChatGPT login (``login_problem`` says what is wrong with a
    login file). Implicit accounts are not checked: an agent's ``secret_env`` always
    allowed an unset variable."""
    for account in accounts.values():
        if account.implicit:
            continue
        if account.kind is AccountKind.CHATGPT_SUBSCRIPTION:
            problem = login_problem(login_path(state_dir, account.name))
            if problem is not None:
                yield ("accounts", account.name), problem
            continue
        variable = account.secret_env or ""
        key = "key_env" if account.kind is AccountKind.API_KEY else "token_env"
        made = (
            "the token `claude setup-token` prints"
            if account.kind is AccountKind.CLAUDE_SUBSCRIPTION
            else "the provider's API key"
        )
        problem = token_problem(environ, variable, made)
        if problem is not None:
            yield ("accounts", account.name, key), problem

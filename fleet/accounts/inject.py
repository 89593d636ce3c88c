"""Credentials on the wire: what the proxy removes from an agent's request and what it
puts in, per account kind.

Whatever credential an agent sends is dropped — a placeholder, or a real key it found
somewhere — and the account's own goes upstream:

* ``api_key`` — ``x-api-key`` for an Anthropic-API provider, ``Authorization: Bearer``
  for an OpenAI-style one; the OAuth beta flag is taken out of ``anthropic-beta``;
* ``claude_subscription`` — ``Authorization: Bearer <token>``, with the OAuth beta flag
  added to ``anthropic-beta`` (the API refuses a subscription token without it);
* ``chatgpt_subscription`` — ``Authorization: Bearer <access token>`` and the
  ``chatgpt-account-id`` header.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from multidict import CIMultiDict

from fleet.accounts.model import Account, AccountKind

OAUTH_BETA: Final = "oauth-2025-04-20"
CREDENTIAL_HEADERS: Final = frozenset(
    {
        "authorization",
        "x-api-key",
        "api-key",
        "chatgpt-account-id",
        "openai-organization",
        "openai-project",
        "cookie",
    }
)


@dataclass(frozen=True, slots=True)
class Credential:
    """What the proxy injects for one request: the account and its secret (for a ChatGPT
    login, the access token and the ChatGPT account id)."""

    account: Account
    secret: str
    chatgpt_account: str | None = None


def strip_credentials(headers: CIMultiDict[str]) -> None:
    """Remove every header that could carry a credential."""
    for name in CREDENTIAL_HEADERS:
        headers.popall(name, None)


def inject(headers: CIMultiDict[str], credential: Credential, *, anthropic_api: bool) -> None:
    """Replace whatever credential ``headers`` carry with ``credential``'s."""
    strip_credentials(headers)
    kind = credential.account.kind
    if kind is AccountKind.API_KEY and anthropic_api:
        headers["x-api-key"] = credential.secret
    else:
        headers["Authorization"] = f"Bearer {credential.secret}"
    if credential.chatgpt_account is not None:
        headers["chatgpt-account-id"] = credential.chatgpt_account
    if anthropic_api:
        _set_oauth_beta(headers, on=kind is AccountKind.CLAUDE_SUBSCRIPTION)


def _set_oauth_beta(headers: CIMultiDict[str], *, on: bool) -> None:
    flags = [
        flag.strip()
        for value in headers.popall("anthropic-beta", [])
        for flag in value.split(",")
        if flag.strip() and flag.strip() != OAUTH_BETA
    ]
    if on:
        flags.append(OAUTH_BETA)
    if flags:
        headers["anthropic-beta"] = ",".join(flags)

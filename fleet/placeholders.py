"""What an agent holds instead of a credential: values bound to itself that are worth
nothing anywhere but at Fleetwarden's proxy, which drops them and injects the real one.

Some CLIs refuse to start without a credential of the right shape: Claude Code wants a
token in ``CLAUDE_CODE_OAUTH_TOKEN`` or ``ANTHROPIC_API_KEY``; Codex on a ChatGPT login
wants an ``auth.json`` whose tokens are JWTs it can read claims from (the plan, the
account). These are unsigned look-alikes with no secret in them.
"""

from __future__ import annotations

import base64
import json
from datetime import datetime, timedelta
from typing import Any, Final

PLACEHOLDER_ACCOUNT: Final = "fleetwarden-placeholder"
PLACEHOLDER_PREFIX: Final = "fleetwarden-placeholder-"  # then the agent's name
_LIFETIME: Final = timedelta(days=3650)  # long enough that a CLI never refreshes on its own
_AUTH_CLAIM: Final = "https://api.openai.com/auth"


def placeholder_token(agent: str) -> str:
    """A dummy API key or OAuth token for ``agent``."""
    return f"{PLACEHOLDER_PREFIX}{agent}"


def _b64(data: dict[str, Any]) -> str:
    raw = json.dumps(data, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def placeholder_jwt(agent: str, now: datetime, *, plan: str = "pro") -> str:
    """A JWT-shaped placeholder whose claims say what Codex reads from a ChatGPT token."""
    claims = {
        "iss": "fleetwarden",
        "sub": f"fleetwarden|{agent}",
        "email": f"{agent}@fleetwarden.invalid",
        "iat": int(now.timestamp()),
        "exp": int((now + _LIFETIME).timestamp()),
        _AUTH_CLAIM: {
            "chatgpt_account_id": PLACEHOLDER_ACCOUNT,
            "chatgpt_plan_type": plan,
            "chatgpt_user_id": f"fleetwarden-{agent}",
        },
    }
    return f"{_b64({'alg': 'none', 'typ': 'JWT'})}.{_b64(claims)}.placeholder"


def placeholder_tokens(agent: str, now: datetime) -> dict[str, Any]:
    """The token endpoint's answer, as the proxy gives it to an agent that refreshes."""
    token = placeholder_jwt(agent, now)
    return {
        "id_token": token,
        "access_token": token,
        "refresh_token": placeholder_token(agent),
        "expires_in": int(_LIFETIME.total_seconds()),
    }


def placeholder_login(agent: str, now: datetime) -> dict[str, Any]:
    """A Codex ``auth.json`` in ChatGPT mode with only placeholders in it."""
    token = placeholder_jwt(agent, now)
    return {
        "OPENAI_API_KEY": None,
        "auth_mode": "chatgpt",
        "tokens": {
            "id_token": token,
            "access_token": token,
            "refresh_token": placeholder_token(agent),
            "account_id": PLACEHOLDER_ACCOUNT,
        },
        "last_refresh": now.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
    }

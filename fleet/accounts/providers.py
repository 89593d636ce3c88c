"""The providers agents reach: each one's name in agent URLs, its real upstream, its API
family, and the paths that pass through unmetered; the default routes."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass


class ProviderApi(enum.StrEnum):
    """The error shape and the default APIs of a provider."""

    ANTHROPIC = "anthropic"  # Messages API; errors {"type":"error","error":{...}}
    OPENAI = "openai"  # Responses and Chat Completions; errors {"error":{...}}


@dataclass(frozen=True, slots=True)
class ProviderRoute:
    """One provider agents may reach: its name in agent URLs, its real upstream (the URL the
    provider's own paths, e.g. ``/v1/messages``, are appended to), its API family, and the
    paths beyond its API's known endpoints that pass through unmetered (``passthrough``,
    see :mod:`fleet.metering.wire.endpoints`). ``offline``: answered by the built-in offline
    provider (:mod:`fleet.metering.offline`), whose loopback URL replaces ``upstream`` when
    the metering proxy starts."""

    name: str
    upstream: str
    api: ProviderApi = ProviderApi.ANTHROPIC
    passthrough: tuple[str, ...] = ()
    offline: bool = False


DEFAULT_ROUTES: Mapping[str, ProviderRoute] = {
    "anthropic": ProviderRoute("anthropic", "https://api.anthropic.com", ProviderApi.ANTHROPIC),
    "openai": ProviderRoute("openai", "https://api.openai.com", ProviderApi.OPENAI),
    # Codex on a ChatGPT login: ChatGPT's backend. Codex's model requests go to
    # ``/backend-api/codex/responses`` (no ``/v1``), its account calls under ``/backend-api/``.
    "chatgpt": ProviderRoute("chatgpt", "https://chatgpt.com", ProviderApi.OPENAI),
}

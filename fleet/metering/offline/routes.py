"""Which providers the offline provider stands in for: each built-in provider of an API it
speaks (``anthropic``, ``openai``) that the config leaves unconfigured — no entry under
``providers`` and no account (written under ``accounts``, or made by an agent's
``secret_env``). A provider the config configures in either way is never answered by it."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import replace
from typing import Final

from fleet.accounts.providers import DEFAULT_ROUTES, ProviderRoute

STANDS_IN_FOR: Final = ("anthropic", "openai")
OFFLINE_UPSTREAM: Final = "http://127.0.0.1/offline"
"""A placeholder upstream; the metering proxy puts the offline provider's own in its place."""


def with_offline(
    routes: Mapping[str, ProviderRoute], configured: Iterable[str]
) -> dict[str, ProviderRoute]:
    """``routes`` with every built-in provider of :data:`STANDS_IN_FOR` that is still the
    built-in one and not in ``configured`` (providers with an account or a config entry)
    answered offline."""
    taken = set(configured)
    return {
        name: (
            replace(route, upstream=OFFLINE_UPSTREAM, offline=True)
            if name in STANDS_IN_FOR and name not in taken and DEFAULT_ROUTES.get(name) == route
            else route
        )
        for name, route in routes.items()
    }


def priced_with(
    routes: Mapping[str, ProviderRoute],
    accounts: Iterable[str],
    priced: Callable[[str | None], bool],
) -> Callable[[str | None], bool]:
    """Whether a model's requests have a price: ``priced``, except that when the offline
    provider answers every provider that could serve a model (every other one a built-in
    with no account, which answers nothing), every model has — that of its one model."""
    paid = set(accounts)
    everything = all(
        route.offline or (name not in paid and DEFAULT_ROUTES.get(name) == route)
        for name, route in routes.items()
    ) and any(route.offline for route in routes.values())
    return (lambda model: True) if everything else priced

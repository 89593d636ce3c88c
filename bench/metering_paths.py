"""The paths a request takes in the metering benchmark: their names, and where each one
sends the request (:class:`Target`: the URL, the key, the proxy's process).

``direct`` goes to the fake provider itself; every other path is a proxy in front of it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

LITELLM_PATHS = {  # path name → LiteLLM's route for the request
    "litellm-passthrough": "/anthropic/v1/messages",  # pass-through: no usage recorded
    "litellm-messages": "/v1/messages",  # its Messages route via model_list: metered
}
# "fleetwarden-accounts": the same proxy process, for an agent whose key it holds as an
# account, injecting it into each request in place of the placeholder the client sends.
# "passthrough": a minimal aiohttp pass-through, the floor of a proxy in this stack;
# "fleetwarden-app": the whole app (`fleetwarden run`), its agent's own URL, a budget on;
# "fleetwarden-app-pg": the same, another process, its ledger on PostgreSQL.
PATHS = (
    "direct",
    "passthrough",
    "fleetwarden",
    "fleetwarden-accounts",
    "fleetwarden-app",
    "fleetwarden-app-pg",
    *LITELLM_PATHS,
)
APP_PATHS = ("fleetwarden-app", "fleetwarden-app-pg")  # the whole app: SQLite, PostgreSQL
OWN_TURNS = ("passthrough", *APP_PATHS)  # proxy CPU counted over the path's own turns
ANTHROPIC_VERSION = "2023-06-01"


@dataclass(frozen=True)
class Target:
    """Where one path sends the request; ``pid`` is its proxy's process (None: direct);
    ``helpers`` lists the processes that work for it alone besides (its PostgreSQL server's),
    whose CPU is counted with it."""

    name: str
    url: str
    api_key: str
    pid: int | None
    helpers: Callable[[], list[int]] | None = None

    def headers(self) -> dict[str, str]:
        return {
            "x-api-key": self.api_key,
            "anthropic-version": ANTHROPIC_VERSION,
            "content-type": "application/json",
        }

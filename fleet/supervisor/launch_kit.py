"""What the fleet's launches are made with: the runtimes and backends, the supervisor's
settings and environment, and the services a run is handed (its heartbeat URL, its model
URLs and accounts, its sandbox, its host, its cap, the asks of its session).

The app builds one :class:`LaunchKit` when it starts; the supervisor
(:class:`~fleet.supervisor.fleet.Fleet`) and its :class:`~fleet.runs.keeper.RunKeeper`
launch with that same one. A service left ``None`` is one the config does without (no
metering: no provider URLs, accounts or caps)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass

from fleet.approvals.service import Approvals
from fleet.backends.base import Backend
from fleet.budgets.run_arming import CapArming
from fleet.hosts.service import Hosts
from fleet.repos.service import Repos
from fleet.runtimes import RuntimeRegistry
from fleet.sandbox.service import Sandboxes
from fleet.supervisor.status import (
    AccountAssigner,
    FleetSettings,
    HeartbeatIssuer,
    ProviderUrlIssuer,
)

__all__ = ["LaunchKit"]


@dataclass(frozen=True, slots=True)
class LaunchKit:
    """Everything a launch is made with, built once."""

    runtimes: RuntimeRegistry
    backends: Mapping[str, Backend]
    settings: FleetSettings
    environ: Mapping[str, str]  # the supervisor's own, passed in, never read globally
    heartbeats: HeartbeatIssuer | None = None
    provider_urls: ProviderUrlIssuer | None = None
    accounts: AccountAssigner | None = None
    sandboxes: Sandboxes | None = None
    approvals: Approvals | None = None  # a live session opens its CLI's asks here
    hosts: Hosts | None = None
    # Saves the digests of the tokens given out in the ledger, for a standby to accept:
    # awaited in each launch, before the agent can use them.
    publish_tokens: Callable[[], Awaitable[None]] | None = None
    run_caps: CapArming | None = None  # armed in each launch, before the process starts
    # A run of an agent with a ``repo`` works in its line's checkout, made before it starts;
    # what it leaves is brought to its branch when it ends.
    repos: Repos | None = None

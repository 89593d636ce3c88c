"""What the fleet's launches are made with: the runtimes and backends, the supervisor's
settings and environment, and the services a run is handed (its heartbeat URL, its model
URLs and accounts, its sandbox, its host, its cap, the asks of its session, the comms
block that tells it its peers).

The app builds one :class:`LaunchKit` when it starts (its services grouped: what the run
reaches, :class:`RunDoors`; what pays for and caps it, :class:`RunSpend`; where it works,
:class:`RunPlace`); the supervisor
(:class:`~fleet.supervisor.fleet.Fleet`) and its :class:`~fleet.runs.keeper.RunKeeper`
launch with that same one. A service left ``None`` is one the config does without (no
metering: no provider URLs, accounts or caps)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from fleet.accounts.model import Account
from fleet.approvals.service import Approvals
from fleet.backends.base import Backend
from fleet.budgets.runs.arming import CapArming
from fleet.destinations import DEFAULT_ALLOW
from fleet.hosts.service import Hosts
from fleet.model import DEFAULT_HEARTBEAT_TIMEOUT, AgentSpec, RunBudget
from fleet.names import AgentName
from fleet.permissions.config import PolicyDefaults
from fleet.repos.service import Repos
from fleet.runs.launch.preamble import Preamble
from fleet.runtimes import RuntimeRegistry
from fleet.sandbox.service import Sandboxes

__all__ = [
    "AccountAssigner",
    "FleetSettings",
    "HeartbeatIssuer",
    "LaunchKit",
    "ProviderUrlIssuer",
    "RunDoors",
    "RunPlace",
    "RunSpend",
]


@dataclass(frozen=True, slots=True)
class FleetSettings:
    """The supervisor's knobs, from the config's ``defaults``."""

    state_dir: Path
    default_runtime: str = "stub"
    default_backend: str = "subprocess"
    stop_grace: float = 10.0
    reply_wait: float = 2.0  # how long `send` collects the agent's answer
    reply_quiet: float = 0.3  # ...ending early once output has been quiet this long
    # Seconds without a sign of life before "stalled"; the watchdog owns the default.
    heartbeat_timeout: float = DEFAULT_HEARTBEAT_TIMEOUT
    # Provider name -> base URL for agents' CLIs (the metering proxy, or an upstream).
    provider_urls: Mapping[str, str] = field(default_factory=dict)
    # An ad hoc agent's (sandbox, egress, egress_allow): the config's ``defaults``.
    confinement: tuple[str, str, tuple[str, ...]] = ("bwrap", "locked", DEFAULT_ALLOW)
    policy: PolicyDefaults = field(default_factory=PolicyDefaults)  # an ad hoc agent's
    run_budget: RunBudget | None = None  # an ad hoc agent's cap on each run: ``defaults``'
    # Directories first on an agent's PATH here: Fleetwarden's own tools (``fw-forge``).
    tool_path: tuple[str, ...] = ()
    # An ad hoc agent's ``git_name`` and ``git_email`` (``defaults``'; None: Fleetwarden's).
    git_identity: tuple[str | None, str | None] = (None, None)
    # ``enforce: strict``: no launch without a sandbox or with open egress
    # (:mod:`fleet.runs.launch.strict`), whatever the settings came from.
    strict: bool = False

    def ad_hoc(self, name: AgentName) -> AgentSpec:
        """The spec of an agent no roster names: the defaults' runtime, backend,
        confinement (without a sandbox, the host's network) and permission policy (its MCP
        grants and skills are the config's as it is at each launch:
        :meth:`fleet.mcp.config.rules.McpRules.ad_hoc`)."""
        sandbox, egress, allow = self.confinement
        spec = AgentSpec(
            name=name,
            runtime=self.default_runtime,
            backend=self.default_backend,
            sandbox=sandbox,
            egress="open" if sandbox == "none" else egress,
            egress_allow=allow,
            run_budget=self.run_budget,
            git_name=self.git_identity[0],
            git_email=self.git_identity[1],
        )
        return self.policy.apply(spec)


class HeartbeatIssuer(Protocol):
    """Hands each agent the URL and token it proves it is alive with (and reaches its
    doors with): a token of its run, revoked when the run ends."""

    def url_for(self, agent: str) -> str: ...

    def token_for(self, agent: str) -> str: ...

    def revoke(self, agent: str) -> bool: ...

    def keep_only(
        self, agents: Iterable[str], *, known: Iterable[str] | None = None
    ) -> Sequence[str]: ...


class AccountAssigner(Protocol):
    """Picks, for a new run, the account that pays for each provider the agent uses
    (:meth:`fleet.accounts.book.AccountBook.assign`); raises ``AccountError`` saying why
    when there is none it may use."""

    def assign(self, agent: str, runtime: str, wanted: str | None) -> Mapping[str, Account]: ...


class ProviderUrlIssuer(Protocol):
    """Hands each agent its own base URL per provider (the metering proxy's)."""

    def urls_for(self, agent: str) -> Mapping[str, str]: ...

    @property
    def offline(self) -> frozenset[str]:
        """The providers the offline stand-in answers."""
        ...


@dataclass(frozen=True, slots=True)
class RunDoors:
    """What a run reaches Fleetwarden through: its heartbeat URL and token, the asks of its
    live session, the tokens published for a standby, and the comms block that tells it
    its peers."""

    heartbeats: HeartbeatIssuer | None = None
    approvals: Approvals | None = None  # a live session opens its CLI's asks here
    # Saves the digests of the tokens given out in the ledger, for a standby to accept:
    # awaited in each launch, before the agent can use them.
    publish_tokens: Callable[[], Awaitable[None]] | None = None
    # The comms block of an agent that works with peers (:mod:`fleet.runs.launch.preamble`):
    # told before its run's prompt and written to its HOME at each launch.
    preamble: Preamble | None = None


@dataclass(frozen=True, slots=True)
class RunSpend:
    """What a run's model requests go through and are paid and capped by: its provider
    URLs (the metering proxy's), the accounts that pay, its cap."""

    provider_urls: ProviderUrlIssuer | None = None
    accounts: AccountAssigner | None = None
    run_caps: CapArming | None = None  # armed in each launch, before the process starts


@dataclass(frozen=True, slots=True)
class RunPlace:
    """Where a run works: its sandbox, its host, and — for an agent with a ``repo`` — its
    line's checkout, made before it starts (what it leaves is brought to its branch when it
    ends)."""

    sandboxes: Sandboxes | None = None
    hosts: Hosts | None = None
    repos: Repos | None = None


@dataclass(frozen=True, slots=True)
class LaunchKit:
    """Everything a launch is made with, built once: the runtimes and backends, the
    supervisor's settings and environment, and the services a run is handed, by concept
    (a group left empty is one the config does without)."""

    runtimes: RuntimeRegistry
    backends: Mapping[str, Backend]
    settings: FleetSettings
    environ: Mapping[str, str]  # the supervisor's own, passed in, never read globally
    doors: RunDoors = RunDoors()
    spend: RunSpend = RunSpend()
    place: RunPlace = RunPlace()

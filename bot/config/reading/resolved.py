"""The validated configuration as the app uses it: :class:`Config`, resolved from the
file's sections (:class:`~bot.config.schema.ConfigFile`) with paths made absolute, the
implicit accounts added and each section's settings built."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final
from zoneinfo import ZoneInfo

from bot.config.chat import Operator
from bot.config.checks.doors import env_variables
from bot.config.checks.forges import with_forge_credentials
from bot.config.dashboard import DashboardSettings
from bot.config.reading.defaults import Defaults
from bot.config.schema import ConfigFile, LogLevel
from connectors.console.config import ConsoleConfig
from connectors.discord.config import DiscordConfig
from connectors.matrix.config import MatrixConfig
from connectors.slack.config import SlackConfig
from fleet.accounts.model import Account, AccountSet, implicit_account, key_vars_of
from fleet.accounts.providers import ProviderRoute
from fleet.accounts.schema import account_set
from fleet.agents.roster import AgentEntry
from fleet.budgets.model import Groups
from fleet.budgets.schema import budgets_of, groups_of
from fleet.forge.schema import ForgeEntry
from fleet.hosts.schema import HostEntry
from fleet.ledger.database.location import is_url
from fleet.ledger.records.budgets import Budget
from fleet.mcp.config.schema import server_of
from fleet.mcp.model import McpServer
from fleet.metering.config import MeteringSettings, PriceTable
from fleet.metering.offline.routes import priced_with, with_offline
from fleet.metering.schema import price_table, provider_routes
from fleet.repos.schema import RepoEntry
from scheduler.config import PacingSettings

LOCAL_SHELL: Final[dict[str, object]] = {
    "operators": [{"id": "local", "role": "admin", "connector": "shell"}],
    "shell": {"as": "local"},
}
"""What the embedded default holds of its own: the shell's operator, ``local``, an admin of
the shell alone (only the state dir's owner may use the control socket)."""


@dataclass(frozen=True, slots=True)
class Config:
    """The validated configuration, paths absolute. Built once at the entry point."""

    source: Path | None
    """The config file it came from; ``None`` for the embedded defaults."""
    state_dir: Path
    """Absolute; may not exist yet."""
    workdirs: Path | None
    """Absolute: the directory of agents' workdirs every sandbox hides whole, if named."""
    ledger_path: Path
    """Absolute: ``ledger`` from the file, else ``<state_dir>/ledger.db`` (also with a
    PostgreSQL ledger: the lock beside it keeps one orchestrator per state dir)."""
    ledger_url: str | None
    """The PostgreSQL ledger's URL (no password in it); ``None``: the SQLite file."""
    ledger_password_env: str | None
    """The variable holding the PostgreSQL ledger's password, if the config names one."""
    command_prefix: str
    log_level: LogLevel
    operators: tuple[Operator, ...]
    """As listed; :meth:`effective_operators` adds the console user."""
    console: ConsoleConfig | None
    """The console connector's settings, or ``None`` when it does not run."""
    matrix: MatrixConfig | None
    """The Matrix connector's settings, or ``None`` when it does not run."""
    discord: DiscordConfig | None
    """The Discord connector's settings, or ``None`` when it does not run."""
    slack: SlackConfig | None
    """The Slack connector's settings, or ``None`` when it does not run."""
    agents: tuple[AgentEntry, ...]
    """The roster, in file order; :meth:`AgentEntry.to_spec` with ``defaults`` to launch."""
    defaults: Defaults
    metering: MeteringSettings | None
    """The proxy's settings, or ``None`` when metering is off."""
    providers: dict[str, ProviderRoute]
    """Every provider by name: the built-in ones, as the config overrides and extends them."""
    prices: PriceTable
    timezone: ZoneInfo
    """Calendar windows, ``reset_at`` without an offset, the report's cron, times shown."""
    groups: Groups
    hosts: tuple[HostEntry, ...]
    """The `hosts:` section, in file order."""
    repos: dict[str, RepoEntry]
    """The `repos:` section: the repositories agents work on, by name."""
    forges: dict[str, ForgeEntry]
    """The `forges:` section: the forges whose issues become runs, by name."""
    mcp: dict[str, McpServer]
    """The `mcp:` section: the MCP servers agents may be granted, by name."""
    dashboard: DashboardSettings | None
    """The web dashboard's settings, or ``None`` when it is off."""
    budgets: dict[str, Budget]
    """The config's budgets by scope (``str(scope)``); ``budget set`` may replace one."""
    accounts: AccountSet
    """Every account and pool, with the implicit ``api_key`` accounts agents' ``secret_env``
    makes when metering is on."""
    pacing: PacingSettings
    document: ConfigFile = field(repr=False)
    """The validated file, section by section (paths in it already resolved)."""

    @classmethod
    def default(cls, cwd: Path) -> Config:
        """The embedded defaults: the console as an admin, state in ``cwd/.fleetwarden``,
        and commands typed in a shell by the state dir's owner (``fleetwarden ps``) as the
        local admin, as every preset has them (:data:`LOCAL_SHELL`)."""
        return cls.from_document(ConfigFile.model_validate(LOCAL_SHELL), source=None, base_dir=cwd)

    def at_real_state_dir(self) -> Config:
        """This config with its state dir at its real path: ``run`` takes it once the
        state dir and every link on the way to it were judged Fleetwarden's own
        (:func:`bot.app.own_files.refusal`), so the links are followed there once and never
        again — what lies in the state dir is opened without following a link, and a link
        re-pointed later changes nothing."""
        real = self.state_dir.resolve()
        if real == self.state_dir:
            return self
        base = self.source.parent if self.source is not None else Path.cwd()
        document = self.document.model_copy(update={"state_dir": real})
        return Config.from_document(document, source=self.source, base_dir=base)

    @classmethod
    def from_document(cls, document: ConfigFile, *, source: Path | None, base_dir: Path) -> Config:
        """Resolve a validated file against ``base_dir`` (absolute: the file's directory)."""
        state_dir = absolute_path(base_dir, document.state_dir)
        ledger = document.ledger
        console = ConsoleConfig() if document.connectors is None else document.connectors.console
        matrix = None if document.connectors is None else document.connectors.matrix
        discord = None if document.connectors is None else document.connectors.discord
        slack = None if document.connectors is None else document.connectors.slack
        timezone = ZoneInfo(document.timezone)
        accounts = account_set(
            document.accounts,
            document.account_pools,
            implicit_accounts(document.agents, document.defaults.runtime)
            if document.metering.enabled
            else (),
        )
        return cls(
            source=source,
            state_dir=state_dir,
            workdirs=None
            if document.workdirs is None
            else absolute_path(base_dir, document.workdirs),
            ledger_path=state_dir / "ledger.db"
            if ledger is None or is_url(ledger)
            else absolute_path(base_dir, Path(ledger)),
            ledger_url=ledger if ledger is not None and is_url(ledger) else None,
            ledger_password_env=document.ledger_password_env,
            command_prefix=document.command_prefix,
            log_level=document.log_level,
            operators=document.operators,
            console=console if console is not None and console.enabled else None,
            matrix=matrix if matrix is not None and matrix.enabled else None,
            discord=discord if discord is not None and discord.enabled else None,
            slack=slack if slack is not None and slack.enabled else None,
            agents=document.agents,
            defaults=document.defaults,
            metering=document.metering.settings() if document.metering.enabled else None,
            providers=served_routes(document, accounts),
            prices=price_table(document.prices, document.price_default),
            timezone=timezone,
            groups=groups_of(document.groups),
            hosts=document.hosts,
            repos=with_forge_credentials(document.repos, document.forges),
            forges=dict(document.forges),
            mcp={name: server_of(name, entry) for name, entry in document.mcp.items()},
            dashboard=document.dashboard.settings(state_dir)
            if document.dashboard is not None
            else None,
            budgets=budgets_of(document.budgets, timezone),
            accounts=accounts,
            pacing=document.pacing.settings(),
            document=document,
        )

    def effective_operators(self) -> tuple[Operator, ...]:
        """``operators``, plus the console user with the console's role when the console
        runs and no entry (for any connector, or for ``console``) names that user."""
        if self.console is None:
            return self.operators
        user = self.console.user_id
        if any(op.id == user and op.connector in (None, "console") for op in self.operators):
            return self.operators
        return (*self.operators, Operator(id=user, role=self.console.role, connector="console"))

    def secret_env_names(self) -> frozenset[str]:
        """Every variable the config names as holding a secret: the value of each ``*_env``
        key anywhere (each value of a mapping one, such as an MCP server's ``headers_env``),
        and every agent's ``secret_env``. For the log redactor."""
        return frozenset(variable for _, variable in env_variables(self.document))


def served_routes(document: ConfigFile, accounts: AccountSet) -> dict[str, ProviderRoute]:
    """Every provider's route; with metering on, the built-in ones the config configures
    neither under ``providers`` nor with an account are answered by the offline provider."""
    routes = provider_routes(document.providers)
    if not document.metering.enabled:
        return routes
    configured = {*document.providers, *(a.provider for a in accounts.accounts.values())}
    return with_offline(routes, configured)


def implicit_accounts(agents: Iterable[AgentEntry], default_runtime: str) -> list[Account]:
    """The ``api_key`` accounts agents' ``secret_env`` entries stand for."""
    return [
        implicit_account(variable, provider)
        for agent in agents
        for variable, provider in key_vars_of(
            agent.runtime or default_runtime, agent.secret_env
        ).items()
    ]


def absolute_path(base_dir: Path, path: Path) -> Path:
    """``path`` made absolute against ``base_dir`` and normalised."""
    return Path(os.path.normpath(base_dir / path))


def model_priced(cfg: Config) -> Callable[[str | None], bool] | None:
    """Whether a model's requests have a price, as the metering proxy will price them: the
    price table's, or every model while the offline provider answers every provider
    (:func:`~fleet.metering.offline.routes.priced_with`); ``None`` without the proxy (no
    request is priced). Every decision that hangs on a price — a cap in dollars, a quote's
    hint — asks this one."""
    if cfg.metering is None:
        return None
    paid = (account.provider for account in cfg.accounts.accounts.values())
    return priced_with(cfg.providers, paid, cfg.prices.priced)

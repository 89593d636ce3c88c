"""The schema of ``fleetwarden.yaml`` (:class:`ConfigFile` and its sections) and the
validated result, :class:`Config`.

Sections live next to what they configure: an agent entry in :mod:`fleet.agents.roster`,
each connector's settings beside the connector (:mod:`connectors.console.config`), the
connectors and the operators in :mod:`bot.config.chat`, the MCP servers in
:mod:`fleet.mcp.config.schema`. Reading and checking a file is :mod:`bot.config.reading.load`;
:mod:`bot.config` re-exports both.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from bot.config.chat import ConnectorsSection, Operator, ShellSection
from bot.config.dashboard import DashboardSection
from bot.config.reading.defaults import Defaults
from fleet.accounts.schema import AccountsSection, PoolsSection
from fleet.agents.roster import AgentEntry
from fleet.budgets.schema import (
    DEFAULT_TIMEZONE,
    BudgetEntry,
    GroupsSection,
    TimezoneName,
)
from fleet.caps import LimitsSection
from fleet.forge.schema import FORGE_NAME_PATTERN, ForgeEntry, is_forge_name
from fleet.hosts.schema import HostEntry
from fleet.ledger.database.location import check_url, is_url
from fleet.mcp.config.names import McpName
from fleet.mcp.config.schema import McpServerEntry
from fleet.metering.schema import (
    MeteringSection,
    PriceEntry,
    Prices,
    Providers,
)
from fleet.pipelines.schema import Name as PipelineName
from fleet.pipelines.schema import PipelineEntry
from fleet.repos.schema import REPO_NAME_PATTERN, RepoEntry, is_repo_name
from fleet.sandbox.schema import AgentUidsSection
from fleet.schema import ConfigPath, EnvVarName, resolve_path
from scheduler.config import PacingSection

LogLevel = Literal["debug", "info", "warning", "error"]

_MAX_PREFIX = 8


def _repo_name(value: str) -> str:
    if not is_repo_name(value):
        raise PydanticCustomError(
            "repo_name",
            "invalid repository name {name}: must match {pattern} (a lowercase letter, then "
            "up to 31 lowercase letters, digits or '-'; for example 'app')",
            {"name": repr(value[:40]), "pattern": REPO_NAME_PATTERN},
        )
    return value


RepoName = Annotated[str, AfterValidator(_repo_name)]


def _forge_name(value: str) -> str:
    if not is_forge_name(value):
        raise PydanticCustomError(
            "forge_name",
            "invalid forge name {name}: must match {pattern} (a lowercase letter, then up to "
            "31 lowercase letters, digits or '-'; for example 'github')",
            {"name": repr(value[:40]), "pattern": FORGE_NAME_PATTERN},
        )
    return value


ForgeName = Annotated[str, AfterValidator(_forge_name)]

# --- The schema -------------------------------------------------------------------------


class ConfigFile(BaseModel):
    """The config file, `fleetwarden.yaml`. Every key is optional: an empty file means the
    defaults. Relative paths are resolved against the file's directory."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    state_dir: ConfigPath = Field(
        default=Path(".fleetwarden"),
        description=(
            "Where Fleetwarden keeps its state: the ledger, agents' run directories and logs, "
            "the lock that stops two instances sharing it. Default: `.fleetwarden` next to "
            "the config file."
        ),
    )
    workdirs: ConfigPath | None = Field(
        default=None,
        description=(
            "A directory holding the agents' workdirs on this machine (e.g. "
            "`/srv/fleet/work`): every sandbox hides it whole and shows only its own "
            "workdir inside, so an agent cannot see a workdir made or named after it "
            "started. Created (0700) if missing. Without it, a sandbox hides the other "
            "workdirs the roster and the ledger name when it starts."
        ),
    )
    agent_uids: AgentUidsSection = Field(
        default_factory=AgentUidsSection,
        description=(
            "When Fleetwarden runs as root: the host uids its sandboxed agents run as, one "
            "per agent, held on this machine while it runs so that no other orchestrator "
            "here gives the same uids to its agents (see Isolation: Fleets apart on one "
            "host). Read at start: a change takes a restart."
        ),
    )
    ledger: str | None = Field(
        default=None,
        description=(
            "Where the ledger is: a SQLite database file (default: `ledger.db` in "
            "`state_dir`), or a PostgreSQL database, "
            "`postgresql://USER@HOST:PORT/DATABASE`, which several orchestrators (an active "
            "one and its standby) can share. No password in the URL: see "
            "`ledger_password_env`."
        ),
    )
    ledger_password_env: EnvVarName | None = Field(
        default=None,
        description=(
            "With a PostgreSQL `ledger`: the environment variable holding its password. "
            "Without it libpq's own PGPASSWORD or PGPASSFILE (`~/.pgpass`) apply."
        ),
    )
    command_prefix: str = Field(
        default="!",
        description=(
            "What starts a command in a chat room, e.g. `!ps` (a mention works too; optional "
            'on the console). 1-8 characters, no spaces; quote it in YAML: `"!"`.'
        ),
    )
    log_level: LogLevel = Field(
        default="info",
        description="How much Fleetwarden logs: `debug`, `info`, `warning` or `error`.",
    )
    enforce: Literal["warn", "strict"] = Field(
        default="warn",
        description=(
            "What Fleetwarden does with an agent (or `defaults`) left unmetered "
            "(`metering: {enabled: false}`), unconfined (`sandbox: none`) or open to any host "
            "(`egress: open`): `warn` (check-config warns, it runs) or `strict` (refused at "
            "start, at `roster reload` and from chat, naming the agent, the line and the "
            "fix). A reload cannot change it: edit the file and restart."
        ),
    )
    operators: tuple[Operator, ...] = Field(
        default=(),
        description="Who may talk to the bot, and with which role. Anyone else is ignored.",
    )
    connectors: ConnectorsSection | None = Field(
        default=None,
        description="The chat connectors to run. Default (no `connectors` key): the console.",
    )
    agents: tuple[AgentEntry, ...] = Field(
        default=(),
        description=(
            "The roster: the agents Fleetwarden knows by name. Either the list itself, or the "
            "path of a YAML file holding the list (relative to this file's directory; "
            "relative paths inside it resolve against its own directory)."
        ),
    )
    metering: MeteringSection = Field(
        default_factory=MeteringSection,
        description="The metering proxy on 127.0.0.1 that counts every token agents spend.",
    )
    providers: Providers = Field(
        default_factory=dict,
        description=(
            "Providers agents reach through the proxy, by name. Built in: `anthropic` "
            "(https://api.anthropic.com) and `openai` (https://api.openai.com); an entry "
            "with their name replaces the upstream, e.g. to use a gateway. A built-in one "
            "with no entry here and no account (nor an agent's `secret_env` for it) is "
            "answered by the offline provider, a stand-in with no key or network."
        ),
    )
    accounts: AccountsSection = Field(
        default_factory=dict,
        description=(
            "The accounts that pay for agents' model requests, by name: API keys, Claude "
            "subscriptions and ChatGPT logins (see the Accounts section). The metering "
            "proxy holds their credentials and injects them; agents hold placeholders."
        ),
    )
    account_pools: PoolsSection = Field(
        default_factory=dict,
        description=(
            "Pools of accounts of one provider, by name: an agent naming a pool starts each "
            "run on the account with the most room, and moves off one its provider refuses."
        ),
    )
    prices: Prices = Field(
        default_factory=dict,
        description=(
            "Token prices by model name, exactly as the provider reports the model "
            "(e.g. `claude-sonnet-4-5-20250929`). Models without a price are metered in "
            "tokens only, and `usage` says so; a budget in dollars refuses their requests "
            "unless `price_default` is set."
        ),
    )
    price_default: PriceEntry | None = Field(
        default=None,
        description=(
            "The price of every model `prices` does not list. Without it such a model costs "
            "nothing it could be charged, so a budget with `limit_usd` refuses its requests, "
            "naming the model; with it, they are charged at this price."
        ),
    )
    timezone: TimezoneName = Field(
        default=DEFAULT_TIMEZONE,
        description=(
            "The IANA time zone (e.g. `Europe/Berlin`) of calendar budget windows (`daily`, "
            "`weekly`, `monthly`), of `reset_at` times written without an offset, of "
            "`pacing.report_cron` and of operator schedules (`schedule add`), and of times "
            "shown in budget and schedule answers."
        ),
    )
    groups: GroupsSection = Field(
        default_factory=dict,
        description=(
            "Groups of agents by name, for budgets over several agents (`group:NAME`). "
            "Groups may nest through `parent`."
        ),
    )
    budgets: tuple[BudgetEntry, ...] = Field(
        default=(),
        description=(
            "Spending limits, one per scope (`global`, `group:NAME`, `agent:NAME`). The most "
            "specific scope with a budget governs an agent; `budget set` may replace one, until "
            "`budget unset`."
        ),
    )
    hosts: tuple[HostEntry, ...] = Field(
        default=(),
        description=(
            "Other machines reached over SSH, each with its host key on record (`fleetwarden "
            "hosts trust NAME` records it). `hosts` in chat and `fleetwarden hosts check` show "
            "whether each is reachable, its load, free disk and agent CLIs."
        ),
    )
    repos: dict[RepoName, RepoEntry] = Field(
        default_factory=dict,
        description=(
            "The repositories agents work on, by name (see the Repositories guide): each run "
            "of an agent with `repo: NAME` gets a checkout and a branch of its own, and its "
            "pushes go through Fleetwarden's git door, never to the upstream itself."
        ),
    )
    forges: dict[ForgeName, ForgeEntry] = Field(
        default_factory=dict,
        description=(
            "The GitHub, Gitea, Forgejo or GitLab servers whose issues become runs, by name "
            "(see the Forges guide): an issue labelled `fleetwarden:AGENT` (or assigned to the "
            "bot) by someone allowed becomes a run of that agent on the repository, and its "
            "pull (merge) request the conversation. Webhooks come to `POST /webhooks/NAME` on the "
            "dashboard's address."
        ),
    )
    mcp: dict[McpName, McpServerEntry] = Field(
        default_factory=dict,
        description=(
            "The MCP servers agents may use, by name (see the MCP guide): each reached over "
            "HTTP or run over stdio by Fleetwarden, which holds its credential. An agent "
            "granted one (its `mcp:`) reaches it only through its MCP door, at `/mcp/NAME`; "
            "every call is relayed, checked against the allow-list and audited."
        ),
    )
    shell: ShellSection | None = Field(
        default=None,
        description=(
            "Who a command typed in a shell (`fleetwarden ps`, `fleetwarden spawn NAME`) "
            "is: `shell: {as: ID}`, an operator's id. Without it the control socket answers "
            "every command with how to set it."
        ),
    )
    dashboard: DashboardSection | None = Field(
        default=None,
        description=(
            "The read-only web dashboard, its JSON API and Prometheus `/metrics`, served by "
            "the orchestrator. Off when the section is absent; `dashboard: {}` serves it on "
            "127.0.0.1:8750. Sign in with the `dashboard` command."
        ),
    )
    limits: LimitsSection = Field(
        default_factory=LimitsSection, description="Fleet-wide limits: how many agents may run."
    )
    pacing: PacingSection = Field(
        default_factory=PacingSection,
        description="How budgets are paced: the tick that applies the law, and the report.",
    )
    defaults: Defaults = Field(
        default_factory=Defaults, description="Fleet-wide defaults for agents and commands."
    )
    pipelines: dict[PipelineName, PipelineEntry] = Field(
        default_factory=dict,
        description=(
            "Pipelines of stages, by name (see Tasks and missions: Pipelines): `mission new "
            "NAME --pipeline P TITLE` makes one task per stage, each started once the stages "
            "it waits for are done and through their gates (`auto`, `approve`, `check`)."
        ),
    )

    @field_validator("ledger")
    @classmethod
    def _ledger(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is None:
            return None
        if is_url(value):
            try:
                return check_url(value)
            except ValueError as exc:
                raise PydanticCustomError(
                    "ledger_url", "the PostgreSQL URL {problem}", {"problem": str(exc)}
                ) from None
        if value == "":
            raise PydanticCustomError(
                "empty_path", "must not be empty: give a path or leave it out"
            )
        return str(resolve_path(Path(value), info))

    @model_validator(mode="after")
    def _password_needs_url(self) -> ConfigFile:
        if self.ledger_password_env is not None and (
            self.ledger is None or not is_url(self.ledger)
        ):
            raise PydanticCustomError(
                "password_without_url",
                "ledger_password_env is only for a PostgreSQL ledger: set `ledger` to "
                "postgresql://USER@HOST:PORT/DATABASE, or remove ledger_password_env",
            )
        return self

    @field_validator("command_prefix")
    @classmethod
    def _check_prefix(cls, value: str) -> str:
        if not value:
            raise PydanticCustomError(
                "prefix_empty", 'must not be empty (in YAML, quote it: command_prefix: "!")'
            )
        if any(char.isspace() for char in value):
            raise PydanticCustomError("prefix_space", "must not contain spaces")
        if len(value) > _MAX_PREFIX:
            raise PydanticCustomError(
                "prefix_long", f"must be at most {_MAX_PREFIX} characters, found {len(value)}"
            )
        return value

    @field_validator("connectors", mode="before")
    @classmethod
    def _empty_means_none_listed(cls, value: object) -> object:
        # `connectors:` with nothing under it lists no connector; that is not the same
        # as leaving the key out (which runs the console).
        return {} if value is None else value

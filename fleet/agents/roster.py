"""The roster: the schema of one ``agents:`` entry in the config file, and its :class:`AgentSpec`.

Validating an entry needs facts from outside the file — which runtimes and backends
exist, which directory relative paths are resolved against — and takes them from a
:class:`SchemaContext` passed as pydantic's validation context. Secrets never appear
here: an entry names the environment variables that hold them (``secret_env``).

An entry also says how the watchdog treats the agent: its ``class`` (free text, the
agent's role in the team), ``autostart``, a ``restart`` policy (:class:`RestartSettings`,
also the type of ``defaults.restart``), ``heartbeat_timeout`` and a wall-clock ``timeout``
per run, and — for the ``command`` runtime only — the ``argv`` to run
(:mod:`fleet.agents.command_argv`). Its permission policy (``permissions``, ``allow``,
``deny``, ``approval_timeout``, ``max_open_approvals``) is read and applied by
:mod:`fleet.permissions.config`. How it works with its peers (``role``, ``talks_to``,
``wake``, ``messages_per_hour``) is :mod:`fleet.agents.peer_keys`'s, a base of the entry;
the team's tools it may use (``mcp``, ``skills``) are :mod:`fleet.agents.tool_keys`'s.

The small schema helpers (:data:`EnvVarName`, :func:`check_known`, …) are
:mod:`fleet.schema`'s, shared with the rest of the configuration schema; an entry's
``restart`` is :mod:`fleet.agents.restart_settings`'s and its ``fallback``
:mod:`fleet.agents.fallback`'s.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Annotated, Protocol

from pydantic import (
    AfterValidator,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationInfo,
    field_serializer,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from fleet.accounts.schema import AccountRef
from fleet.agents.command_argv import ARGV_HELP, check_argv
from fleet.agents.fallback import FallbackEntry
from fleet.agents.peer_keys import PeerDefaults, PeerKeys
from fleet.agents.restart_settings import RestartSettings, restart_shorthand
from fleet.agents.tool_keys import ToolDefaults, ToolKeys
from fleet.budgets.quoting.quote import QUOTE_UNDER_HELP, QuoteUnder
from fleet.budgets.runs.budget import RunBudgetEntry
from fleet.hosts.schema import check_placement
from fleet.model import AgentSpec
from fleet.names import AGENT_NAME_PATTERN, RESERVED, AgentName, is_agent_name, reserved_why
from fleet.permissions.config import (
    ALLOW_HELP,
    APPROVAL_TIMEOUT_HELP,
    DENY_HELP,
    MAX_OPEN_HELP,
    PERMISSIONS_HELP,
    ApprovalTimeout,
    MaxOpen,
    PermissionModeName,
    PolicyDefaults,
    Rules,
)
from fleet.repos.schema import GIT_EMAIL_HELP, GIT_NAME_HELP, GitEmail, GitName
from fleet.sandbox.schema import (
    EGRESS_ALLOW_HELP,
    EGRESS_HELP,
    SANDBOX_HELP,
    EgressHost,
    EgressMode,
    SandboxMode,
)
from fleet.schema import EnvKey, EnvVarName, Seconds, WorkDir, check_known, schema_context

MAX_CLASS_LENGTH = 64
"""The longest ``class`` (an agent's role) an entry may have."""


class RosterDefaults(PeerDefaults, ToolDefaults, Protocol):
    """The fleet-wide fallbacks an entry's unset fields take (``defaults:`` in the file)."""

    @property
    def runtime(self) -> str: ...

    @property
    def backend(self) -> str: ...

    @property
    def restart(self) -> RestartSettings: ...

    @property
    def sandbox(self) -> str: ...

    @property
    def egress(self) -> str: ...

    @property
    def egress_allow(self) -> tuple[str, ...]: ...

    @property
    def policy(self) -> PolicyDefaults: ...

    @property
    def run_budget(self) -> RunBudgetEntry | None: ...

    @property
    def git_name(self) -> str | None: ...

    @property
    def git_email(self) -> str | None: ...


class AgentEntry(ToolKeys, PeerKeys):
    """One agent in the roster: what to launch and how.

    Fields left unset fall back to `defaults` (runtime, backend, restart, heartbeat
    timeout) or to the runtime's own behaviour (model, prompt). Listing an agent makes it
    known to the bot; `spawn NAME` starts it (or `autostart`).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: AgentName = Field(
        description=(
            "The agent's name, used in every command (`spawn coder-1`). 1-32 characters: "
            f"a lowercase letter, then lowercase letters, digits or '-' ({AGENT_NAME_PATTERN}). "
            "Unique within the roster."
        ),
    )
    runtime: str | None = Field(
        default=None,
        description=(
            "Which agent CLI to run: `stub` or a runtime this installation provides (an "
            "unknown name is reported with the list). Default: `defaults.runtime`."
        ),
    )
    model: str | None = Field(
        default=None,
        min_length=1,
        description="The model to ask the runtime for. Default: the runtime's own default.",
    )
    prompt: str | None = Field(
        default=None,
        description="The first instruction the agent gets when it starts. Default: none.",
    )
    workdir: WorkDir | None = Field(
        default=None,
        description=(
            "The directory the agent works in; it must exist. Relative paths are resolved "
            "against the config file's directory. Default: `agents/NAME/work` in `state_dir`."
        ),
    )
    backend: str | None = Field(
        default=None,
        description=(
            "Where the process runs: `subprocess` (a child process in its own process "
            "group) or `tmux` (a session on Fleetwarden's private tmux server, in a real "
            "terminal). Default: `defaults.backend`."
        ),
    )
    host: Annotated[str, AfterValidator(check_placement)] = Field(
        default="local",
        description=(
            "Where it runs: `local` (this machine), the name of an entry of the config's "
            "`hosts:` (over SSH, in tmux there), or `any` (the host with the most room under "
            "its `max_agents` that has the agent's CLI). Default: `local`."
        ),
    )
    repo: str | None = Field(
        default=None,
        description=(
            "The repository (a name under `repos:`) the agent works on: its run gets a "
            "checkout of its own on a branch of its own (`fw/NAME/N`, `N` the branch's own "
            "number; its later runs go on on it until it is merged, discarded or `--fresh`), "
            "which is its workdir, so `workdir` is not set with it."
        ),
    )
    git_name: GitName | None = Field(
        default=None,
        description=GIT_NAME_HELP + " Default: `defaults.git_name`, else `{agent}`.",
    )
    git_email: GitEmail | None = Field(
        default=None,
        description=GIT_EMAIL_HELP
        + " Default: `defaults.git_email`, else `{agent}@{host}.fleetwarden.invalid`.",
    )
    env: Mapping[EnvKey, str] = Field(
        default_factory=dict,
        description=(
            "Extra environment variables for the agent, name: value. Only non-secret values: "
            "a name that looks like a secret (…TOKEN, …KEY, …PASSWORD, …SECRET) is refused; "
            "use `secret_env` for those. So is the variable of a secret another `*_env` key of "
            "the config names."
        ),
    )
    secret_env: tuple[EnvVarName, ...] = Field(
        default=(),
        description=(
            "Names of environment variables passed through from Fleetwarden's own environment "
            "to the agent (e.g. `NPM_TOKEN`). The values never touch the config file, "
            "the ledger or any log. A variable another `*_env` key of the config names is "
            "refused, as it holds a secret of Fleetwarden's own: a forge's or a repository's "
            "token (the agent reaches those through its doors), a chat connector's token, "
            "the dashboard's token, the ledger's password. A provider key its runtime uses "
            "(`ANTHROPIC_API_KEY`, Codex's `OPENAI_API_KEY`) is not passed: with metering on "
            "it becomes an implicit `api_key` account the proxy holds."
        ),
    )

    account: AccountRef | None = Field(
        default=None,
        description=(
            "The account or pool (under `accounts:` / `account_pools:`) that pays for the "
            "agent's model requests; the proxy holds its credential, the agent never sees "
            "it. Default: `defaults.account`, else the provider's default account."
        ),
    )
    fallback: FallbackEntry | None = Field(
        default=None,
        description=(
            "Where the agent's next run starts when its budget turns the run away (queued "
            "or refused), e.g. `{runtime: codex, account: codex-pro}`: the last step of the "
            "ladder, after the model downgrades. A run in progress never changes CLI."
        ),
    )
    role: str | None = Field(
        default=None,
        alias="class",
        description=(
            "The agent's class in the team, a short word such as `orchestrator`, `coder` or "
            f"`reviewer` (1-{MAX_CLASS_LENGTH} characters, one line). Written `class:`; what "
            "it is for, in a line its peers are told, is `role:`. Default: none."
        ),
    )
    autostart: bool = Field(
        default=False,
        strict=True,
        description="Start the agent when Fleetwarden starts, without a `spawn`.",
    )
    restart: Annotated[RestartSettings | None, BeforeValidator(restart_shorthand)] = Field(
        default=None,
        description=(
            "When the watchdog relaunches the agent after it ended or stalled: `never`, "
            "`on-failure`, `always`, or a mapping (see `defaults.restart`). Default: "
            "`defaults.restart`."
        ),
    )
    heartbeat_timeout: Seconds | None = Field(
        default=None,
        description=(
            "Seconds without a heartbeat or output before the agent counts as stalled (more "
            "than 0). An agent whose last heartbeat said it waits for input does not stall. "
            "Default: `defaults.heartbeat_timeout_seconds`."
        ),
    )
    timeout: Seconds | None = Field(
        default=None,
        description=(
            "Wall-clock limit of one run, in seconds (more than 0): a run still going after "
            "this long is stopped, which counts as a failure for `restart`. Default: no limit."
        ),
    )
    argv: tuple[str, ...] | None = Field(
        default=None,
        validate_default=True,
        description=ARGV_HELP,
    )

    sandbox: SandboxMode | None = Field(
        default=None, description=SANDBOX_HELP + " Default: `defaults.sandbox`."
    )
    egress: EgressMode | None = Field(
        default=None, description=EGRESS_HELP + " Default: `defaults.egress`."
    )
    egress_allow: tuple[EgressHost, ...] | None = Field(
        default=None, description=EGRESS_ALLOW_HELP + " Default: `defaults.egress_allow`."
    )
    run_budget: RunBudgetEntry | None = Field(
        default=None,
        description=(
            "A cap on each run's spend, `{max_tokens: N, max_usd: X}`: past it the run's "
            "model requests are refused (`spawn --max-tokens`/`--max-usd` override it for "
            "one spawn). Default: `defaults.run_budget`."
        ),
    )
    quote_under: QuoteUnder | None = Field(
        default=None,
        description=QUOTE_UNDER_HELP + " `spawn --quote-under X` overrides it for one spawn.",
    )

    permissions: PermissionModeName | None = Field(
        default=None, description=PERMISSIONS_HELP + " Default: `defaults.permissions`."
    )
    allow: Rules = Field(default=(), description=ALLOW_HELP + " Added to `defaults.allow`.")
    deny: Rules = Field(default=(), description=DENY_HELP + " Added to `defaults.deny`.")
    approval_timeout: ApprovalTimeout | None = Field(
        default=None, description=APPROVAL_TIMEOUT_HELP + " Default: `defaults.approval_timeout`."
    )
    max_open_approvals: MaxOpen | None = Field(
        default=None, description=MAX_OPEN_HELP + " Default: `defaults.max_open_approvals`."
    )

    @field_validator("name")
    @classmethod
    def _check_name(cls, value: AgentName) -> AgentName:
        if value in RESERVED:
            raise PydanticCustomError("agent_name", reserved_why(value))
        if not is_agent_name(value):
            raise PydanticCustomError(
                "agent_name",
                f"invalid agent name {value[:40]!r}: must match {AGENT_NAME_PATTERN} "
                "(1-32 characters: a lowercase letter first, then lowercase letters, digits "
                "or '-'; for example 'coder-1')",
            )
        return value

    @field_validator("runtime")
    @classmethod
    def _check_runtime(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is None:
            return None
        return check_known("runtime", value, schema_context(info).runtimes)

    @field_validator("backend")
    @classmethod
    def _check_backend(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is None:
            return None
        return check_known("backend", value, schema_context(info).backends)

    @field_validator("role")
    @classmethod
    def _check_role(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if not value.strip():
            raise PydanticCustomError(
                "class_empty", "must not be empty: give a role or leave it out"
            )
        if len(value) > MAX_CLASS_LENGTH:
            raise PydanticCustomError(
                "class_long",
                f"must be at most {MAX_CLASS_LENGTH} characters, found {len(value)}",
            )
        if any(not char.isprintable() for char in value):
            raise PydanticCustomError(
                "class_line", "must be one line of text, without control characters"
            )
        return value

    @field_validator("argv")
    @classmethod
    def _argv_only_for_command(
        cls, value: tuple[str, ...] | None, info: ValidationInfo
    ) -> tuple[str, ...] | None:
        if "runtime" not in info.data:  # the runtime was invalid: that is reported instead
            return value
        return check_argv(value, info.data["runtime"], info.data.get("name"))

    @field_validator("env")
    @classmethod
    def _freeze_env(cls, value: Mapping[str, str]) -> Mapping[str, str]:
        return MappingProxyType(dict(value))

    @field_serializer("env")
    def _dump_env(self, value: Mapping[str, str]) -> dict[str, str]:
        return dict(value)

    @model_validator(mode="after")
    def _env_or_secret(self) -> AgentEntry:
        both = sorted(set(self.env) & set(self.secret_env))
        if both:
            raise PydanticCustomError(
                "env_conflict",
                f"{', '.join(both)} is in both env and secret_env: keep it in one of them",
            )
        return self

    def to_spec(self, defaults: RosterDefaults) -> AgentSpec:
        """The launch specification, unset fields taken from ``defaults`` (``restart`` key by
        key). ``heartbeat_timeout`` stays ``None`` when unset: the watchdog applies the
        fleet default then, so a changed default reaches agents already in the ledger."""
        spec = AgentSpec(
            name=self.name,
            runtime=self.runtime if self.runtime is not None else defaults.runtime,
            backend=self.backend if self.backend is not None else defaults.backend,
            model=self.model,
            prompt=self.prompt,
            workdir=self.workdir,
            env=self.env,
            secret_env=self.secret_env,
            role=self.role,
            autostart=self.autostart,
            restart=(self.restart or defaults.restart).over(defaults.restart),
            heartbeat_timeout=self.heartbeat_timeout,
            timeout=self.timeout,
            argv=self.argv or (),
            account=self.account,
            fallback=self.fallback.to_fallback() if self.fallback else None,
            sandbox=self.sandbox or defaults.sandbox,
            # Without a sandbox there is no network of its own: the host's, whatever the default.
            egress=self.egress
            or ("open" if (self.sandbox or defaults.sandbox) == "none" else defaults.egress),
            egress_allow=(
                self.egress_allow if self.egress_allow is not None else defaults.egress_allow
            ),
            run_budget=(
                entry.to_budget() if (entry := self.run_budget or defaults.run_budget) else None
            ),
            quote_under=self.quote_under,
            host=self.host,
            repo=self.repo,
            git_name=self.git_name or defaults.git_name,
            git_email=self.git_email or defaults.git_email,
        )
        return defaults.policy.apply(
            self.with_tools(self.with_peers(spec, defaults), defaults),
            permissions=self.permissions,
            allow=self.allow,
            deny=self.deny,
            approval_timeout=self.approval_timeout,
            max_open_approvals=self.max_open_approvals,
        )

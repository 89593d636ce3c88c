"""The config file's ``defaults`` section: what an agent entry or a command falls back to."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator
from pydantic_core import PydanticCustomError

from fleet.accounts.schema import AccountRef
from fleet.agents.peer_keys import (
    DEFAULT_MESSAGE_CHARS,
    DEFAULT_MESSAGE_QUEUE,
    MAX_MESSAGES_PER_HOUR,
    MESSAGE_CHARS_BOUNDS,
    MESSAGE_CHARS_HELP,
    MESSAGE_QUEUE_BOUNDS,
    MESSAGE_QUEUE_HELP,
    MESSAGES_PER_HOUR_HELP,
    WAKE_HELP,
    WakeName,
)
from fleet.agents.restart_settings import RestartField, RestartSettings
from fleet.agents.tool_keys import check_skills
from fleet.budgets.runs.budget import RunBudgetEntry
from fleet.destinations import DEFAULT_ALLOW
from fleet.mcp.config.grants import MCP_GRANTS_HELP, McpGrants
from fleet.mcp.config.skills import SKILLS_HELP, SkillDir
from fleet.model import DEFAULT_HEARTBEAT_TIMEOUT, DEFAULT_MESSAGES_PER_HOUR, PermissionMode
from fleet.permissions.config import (
    ALLOW_HELP,
    APPROVAL_TIMEOUT_HELP,
    DEFAULT_MAX_OPEN,
    DENY_HELP,
    MAX_OPEN_HELP,
    PERMISSIONS_HELP,
    ApprovalTimeout,
    MaxOpen,
    PermissionModeName,
    PolicyDefaults,
    Rules,
    unsandboxed_full,
)
from fleet.repos.schema import GitEmail, GitName
from fleet.sandbox.schema import (
    DEFAULT_EGRESS,
    EGRESS_ALLOW_HELP,
    EGRESS_HELP,
    SANDBOX_HELP,
    EgressHost,
    EgressMode,
    SandboxMode,
)
from fleet.schema import check_known, schema_context


class Defaults(BaseModel):
    """Fleet-wide defaults: what an agent entry or a command falls back to."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    runtime: str = Field(
        default="stub",
        description="The runtime of agents that name none (and of `spawn` without one).",
    )
    backend: str = Field(
        default="subprocess", description="The backend of agents that name none: `subprocess`."
    )
    account: AccountRef | None = Field(
        default=None,
        description=(
            "The account or pool of agents (and `spawn`s) that name none, when its provider "
            "is one their runtime speaks to; otherwise each provider's default account."
        ),
    )
    stop_grace_seconds: float = Field(
        default=10.0,
        gt=0,
        le=600,
        strict=True,
        description=(
            "How long `stop` waits after asking an agent to end before it kills it "
            "(more than 0, at most 600)."
        ),
    )
    logs_lines: int = Field(
        default=40,
        ge=1,
        le=10_000,
        strict=True,
        description="How many lines `logs NAME` shows without `--lines` (1 to 10000).",
    )
    send_reply_wait_seconds: float = Field(
        default=2.0,
        ge=0,
        le=30,
        strict=True,
        description=(
            "How long `send` waits for the agent's output to include it in the reply "
            "(0 to 30; 0 replies at once)."
        ),
    )
    heartbeat_timeout_seconds: float = Field(
        default=DEFAULT_HEARTBEAT_TIMEOUT,
        gt=0,
        le=86_400,
        strict=True,
        description=(
            "Seconds without a heartbeat or output before an agent counts as stalled, for "
            "agents that set no `heartbeat_timeout` (more than 0, at most 86400)."
        ),
    )
    watchdog_interval_seconds: float = Field(
        default=30.0,
        ge=5,
        le=3600,
        strict=True,
        description=(
            "How often the watchdog checks the agents for stalls, ends, timeouts and due "
            "restarts (5 to 3600)."
        ),
    )
    sandbox: SandboxMode = Field(default="bwrap", description=SANDBOX_HELP + " Default: `bwrap`.")
    egress: EgressMode = Field(
        default=DEFAULT_EGRESS, description=EGRESS_HELP + " Default: `locked`."
    )
    egress_allow: tuple[EgressHost, ...] = Field(
        default=DEFAULT_ALLOW, description=EGRESS_ALLOW_HELP
    )
    run_budget: RunBudgetEntry | None = Field(
        default=None,
        description=(
            "A cap on each run's spend for agents (and `spawn`s) that set none, "
            "`{max_tokens: N, max_usd: X}`. Default: none."
        ),
    )
    restart: RestartField = Field(
        default_factory=RestartSettings,
        description=(
            "The restart policy of agents that set no `restart`: a mode (`never`, "
            "`on-failure`, `always`) or a mapping of the keys below. Default: `never`."
        ),
    )

    permissions: PermissionModeName | None = Field(
        default=None,
        description=PERMISSIONS_HELP
        + " Default: `edits` for sandboxed agents, `ask` for those with `sandbox: none`.",
    )
    allow: Rules = Field(default=(), description=ALLOW_HELP)
    deny: Rules = Field(default=(), description=DENY_HELP)
    approval_timeout: ApprovalTimeout = Field(
        default="30m", validate_default=True, description=APPROVAL_TIMEOUT_HELP
    )
    max_open_approvals: MaxOpen = Field(default=DEFAULT_MAX_OPEN, description=MAX_OPEN_HELP)
    git_name: GitName | None = Field(
        default=None,
        description=(
            "The `git_name` of agents that set none: the name their commits carry, `{agent}` "
            "and `{host}` filled in. Default: `{agent}`."
        ),
    )
    git_email: GitEmail | None = Field(
        default=None,
        description=(
            "The `git_email` of agents that set none: the address their commits carry, "
            "`{agent}` and `{host}` filled in. Default: `{agent}@{host}.fleetwarden.invalid`."
        ),
    )
    wake: WakeName = Field(
        default="wait", description=WAKE_HELP + " For agents that set no `wake`. Default: `wait`."
    )
    messages_per_hour: int = Field(
        default=DEFAULT_MESSAGES_PER_HOUR,
        ge=1,
        le=MAX_MESSAGES_PER_HOUR,
        strict=True,
        description=MESSAGES_PER_HOUR_HELP
        + f" For agents that set no `messages_per_hour`. Default: {DEFAULT_MESSAGES_PER_HOUR}.",
    )
    message_chars: int = Field(
        default=DEFAULT_MESSAGE_CHARS,
        ge=MESSAGE_CHARS_BOUNDS[0],
        le=MESSAGE_CHARS_BOUNDS[1],
        strict=True,
        description=MESSAGE_CHARS_HELP,
    )
    message_queue: int = Field(
        default=DEFAULT_MESSAGE_QUEUE,
        ge=MESSAGE_QUEUE_BOUNDS[0],
        le=MESSAGE_QUEUE_BOUNDS[1],
        strict=True,
        description=MESSAGE_QUEUE_HELP,
    )

    mcp: McpGrants = Field(
        default_factory=dict,
        description=MCP_GRANTS_HELP + " For agents that set no `mcp`. Default: none.",
    )
    skills: tuple[SkillDir, ...] = Field(
        default=(), description=SKILLS_HELP + " For agents that set no `skills`. Default: none."
    )

    @field_validator("skills")
    @classmethod
    def _one_skill_per_name(cls, value: tuple[Path, ...]) -> tuple[Path, ...]:
        return check_skills(value) or ()

    @property
    def policy(self) -> PolicyDefaults:
        """The permission policy's defaults, for roster entries and ad hoc agents."""
        mode = PermissionMode(self.permissions) if self.permissions else None
        return PolicyDefaults(
            mode, self.allow, self.deny, self.approval_timeout, self.max_open_approvals
        )

    @model_validator(mode="after")
    def _full_needs_a_sandbox(self) -> Defaults:
        wrong = unsandboxed_full("every agent by default", self.sandbox, self.permissions)
        if wrong is not None:
            raise PydanticCustomError("permissions_full", wrong)
        return self

    @field_validator("runtime")
    @classmethod
    def _known_runtime(cls, value: str, info: ValidationInfo) -> str:
        return check_known("runtime", value, schema_context(info).runtimes)

    @field_validator("backend")
    @classmethod
    def _known_backend(cls, value: str, info: ValidationInfo) -> str:
        return check_known("backend", value, schema_context(info).backends)

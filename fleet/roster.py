"""The roster: the schema of one ``agents:`` entry in the config file, and its :class:`AgentSpec`.

Validating an entry needs facts from outside the file — which runtimes and backends
exist, which directory relative paths are resolved against — and takes them from a
:class:`SchemaContext` passed as pydantic's validation context. Secrets never appear
here: an entry names the environment variables that hold them (``secret_env``).

An entry also says how the watchdog treats the agent: its ``class`` (free text, the
agent's role in the team), ``autostart``, a ``restart`` policy (:class:`RestartSettings`,
also the type of ``defaults.restart``), ``heartbeat_timeout`` and a wall-clock ``timeout``
per run, and — for the ``command`` runtime only — the ``argv`` to run.

The small schema helpers (:data:`EnvVarName`, :data:`ConfigPath`, :func:`check_known`,
:func:`unknown_value_message`, :func:`expand_path`) are shared with the rest of the
configuration schema.
"""

from __future__ import annotations

import difflib
import math
import os
import re
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Annotated, Literal, Protocol, get_args

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationInfo,
    field_serializer,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from fleet.model import AgentSpec, RestartMode, RestartPolicy
from fleet.names import AGENT_NAME_PATTERN, AgentName, is_agent_name

ENV_NAME_PATTERN = r"[A-Z_][A-Z0-9_]*"
"""What a variable named by a ``*_env`` key (or listed in ``secret_env``) must look like."""

ENV_KEY_PATTERN = r"[A-Za-z_][A-Za-z0-9_]*"
"""What a key of an agent's ``env`` must look like (lowercase allowed: ``http_proxy``)."""

COMMAND_RUNTIME = "command"
"""The runtime that runs an entry's own ``argv`` (the only one that takes ``argv``)."""

MAX_CLASS_LENGTH = 64
"""The longest ``class`` (an agent's role) an entry may have."""

RestartModeName = Literal["never", "on-failure", "always"]
"""How ``restart`` modes are written in the file: the values of :class:`RestartMode`."""

RESTART_MODES: tuple[str, ...] = get_args(RestartModeName)

_DEFAULT_POLICY = RestartPolicy()
_ENV_NAME_RE = re.compile(ENV_NAME_PATTERN)
_ENV_KEY_RE = re.compile(ENV_KEY_PATTERN)
_SECRET_WORDS = frozenset(
    {"token", "password", "passwd", "secret", "apikey", "key", "credential", "credentials"}
)


@dataclass(frozen=True, slots=True)
class SchemaContext:
    """What validation needs to know beyond the file itself.

    ``base_dir`` is the config file's directory (absolute); ``home`` expands ``~``.
    Validating without a context accepts the default runtime and backend only and
    leaves relative paths as written.
    """

    base_dir: Path | None = None
    home: str | None = None
    runtimes: frozenset[str] = frozenset({"stub"})
    backends: frozenset[str] = frozenset({"subprocess"})


class RosterDefaults(Protocol):
    """The fleet-wide fallbacks an entry's unset fields take (``defaults:`` in the file)."""

    @property
    def runtime(self) -> str: ...

    @property
    def backend(self) -> str: ...

    @property
    def restart(self) -> RestartSettings: ...


def schema_context(info: ValidationInfo) -> SchemaContext:
    """The :class:`SchemaContext` validation runs with (the default one if none was given)."""
    context = info.context
    return context if isinstance(context, SchemaContext) else SchemaContext()


def did_you_mean(value: str, choices: Collection[str]) -> str | None:
    """The choice closest to ``value``, if one is close enough to be a likely typo."""
    lowered = {choice.lower(): choice for choice in choices}
    if value.lower() in lowered:
        return lowered[value.lower()]
    close = difflib.get_close_matches(value, list(choices), n=1, cutoff=0.6)
    return close[0] if close else None


def unknown_value_message(noun: str, value: object, allowed: Sequence[str]) -> str:
    """``unknown runtime 'claud' — did you mean 'claude'? allowed: claude, stub``."""
    shown = ", ".join(allowed) if allowed else "(none)"
    guess = did_you_mean(value, allowed) if isinstance(value, str) else None
    if guess is not None:
        return f"unknown {noun} {value!r} — did you mean {guess!r}? allowed: {shown}"
    return f"unknown {noun} {value!r}; allowed: {shown}"


def check_known(noun: str, value: str, allowed: Collection[str]) -> str:
    """Return ``value`` if it is one of ``allowed``; otherwise fail validation, saying so."""
    if value in allowed:
        return value
    message = unknown_value_message(noun, value, sorted(allowed))
    raise PydanticCustomError(f"unknown_{noun}", message)


def looks_secret(key: str) -> bool:
    """Whether a key or variable name reads like it holds a credential (``api_key``, ``TOKEN``)."""
    return any(word in _SECRET_WORDS for word in re.split(r"[_\-.]+", key.lower()))


def _check_env_name(value: str) -> str:
    if not _ENV_NAME_RE.fullmatch(value):
        # The value is not echoed: someone may have pasted the secret itself here.
        raise PydanticCustomError(
            "env_var_name",
            "must be the NAME of an environment variable (capital letters, digits and '_', "
            f"matching {ENV_NAME_PATTERN}, e.g. GITHUB_TOKEN), never the secret itself; "
            "the value is not shown",
        )
    return value


def _check_env_key(value: str) -> str:
    if not _ENV_KEY_RE.fullmatch(value):
        raise PydanticCustomError(
            "env_key",
            f"{value!r} is not an environment variable name: use letters, digits and '_', "
            f"not starting with a digit ({ENV_KEY_PATTERN})",
        )
    if looks_secret(value):
        raise PydanticCustomError(
            "secret_in_env",
            f"{value!r} looks like a secret, and secrets never go in the config file: set it "
            "in Fleetwarden's environment and list its name in secret_env instead",
        )
    return value


def _reject_empty_path(value: object) -> object:
    if value == "":
        raise PydanticCustomError("empty_path", "must not be empty: give a path or leave it out")
    return value


def resolve_path(value: Path, info: ValidationInfo) -> Path:
    """Expand a leading ``~`` and make ``value`` absolute against the config file's directory."""
    return expand_path(value, schema_context(info))


def expand_path(value: Path, context: SchemaContext) -> Path:
    """:func:`resolve_path` outside validation: ``~`` expanded with ``context.home``, relative
    paths made absolute against ``context.base_dir``. Raises ``PydanticCustomError``."""
    first = value.parts[0] if value.parts else ""
    if first.startswith("~"):
        if first != "~":
            raise PydanticCustomError(
                "path_user", "'~user' paths are not supported: write the full path"
            )
        if not context.home:
            raise PydanticCustomError(
                "path_home", "cannot expand '~' because HOME is not set: write the full path"
            )
        value = Path(context.home, *value.parts[1:])
    if not value.is_absolute() and context.base_dir is not None:
        value = context.base_dir / value
    return Path(os.path.normpath(value)) if value.is_absolute() else value


def _finite(value: float) -> float:
    if math.isinf(value):
        raise PydanticCustomError("not_finite", "must be a finite number of seconds, found .inf")
    return value


def _existing_dir(value: Path) -> Path:
    if not value.is_dir():
        what = "is not a directory" if value.exists() else "does not exist"
        raise PydanticCustomError(
            "workdir_missing",
            f"directory {str(value)!r} {what}: create it or fix the path "
            "(relative paths are resolved against the config file's directory)",
        )
    return value


EnvVarName = Annotated[str, AfterValidator(_check_env_name)]
"""The name of an environment variable holding a secret. Every ``*_env`` field uses this type."""

EnvKey = Annotated[str, AfterValidator(_check_env_key)]
"""A key of an agent's non-secret ``env``."""

ConfigPath = Annotated[Path, BeforeValidator(_reject_empty_path), AfterValidator(resolve_path)]
"""A path in the config file: ``~`` expanded, relative ones made absolute against its directory."""

WorkDir = Annotated[ConfigPath, AfterValidator(_existing_dir)]
"""A :data:`ConfigPath` that must be an existing directory."""

Seconds = Annotated[float, Field(gt=0, strict=True), AfterValidator(_finite)]
"""A duration in seconds: a finite number greater than 0 (``nan`` fails the bound)."""


def _restart_shorthand(value: object) -> object:
    """``restart: always`` is short for ``restart: {mode: always}``."""
    if isinstance(value, str):
        if value not in RESTART_MODES:
            message = unknown_value_message("restart mode", value, RESTART_MODES)
            raise PydanticCustomError("restart_mode", message)
        return {"mode": value}
    if value is None or isinstance(value, Mapping | RestartSettings):
        return value
    raise PydanticCustomError(
        "restart_type",
        f"expected one of {', '.join(RESTART_MODES)}, or a mapping with mode, max_restarts, "
        f"backoff_initial and backoff_max; found {_kind_of(value)}",
    )


def _kind_of(value: object) -> str:
    if isinstance(value, bool):
        return f"a boolean ({str(value).lower()})"
    if isinstance(value, int):
        return f"an integer ({value})"
    if isinstance(value, float):
        return f"a number ({value})"
    if isinstance(value, list | tuple):
        return "a list"
    return f"a {type(value).__name__}"


class RestartSettings(BaseModel):
    """When, and how soon, the watchdog relaunches an agent that ended or stalled.

    Write a mode alone (`restart: on-failure`) or a mapping. Keys left out take their value
    from `defaults.restart` (there: the values shown). The n-th restart in a row waits
    `min(backoff_initial * 2**(n-1), backoff_max)` seconds; after `max_restarts` restarts
    in a row the agent is left down and reported. A run that stays healthy for
    `backoff_max` seconds starts the count again.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    mode: RestartModeName = Field(
        default="never",
        description=(
            "`never`; `on-failure` (after a non-zero exit or a stall); `always` (after any "
            "end an operator did not ask for). An agent an operator stopped is never restarted."
        ),
    )
    max_restarts: int = Field(
        default=_DEFAULT_POLICY.max_restarts,
        ge=0,
        le=100,
        strict=True,
        description="Restarts in a row before giving up (0 to 100).",
    )
    backoff_initial: Seconds = Field(
        default=_DEFAULT_POLICY.backoff_initial,
        description="Seconds before the first restart (more than 0); doubled for each next one.",
    )
    backoff_max: Seconds = Field(
        default=_DEFAULT_POLICY.backoff_max,
        description=(
            "The longest wait between restarts, in seconds (at least `backoff_initial`); also "
            "how long a run must stay healthy to reset the count."
        ),
    )

    @model_validator(mode="after")
    def _max_not_below_initial(self) -> RestartSettings:
        # Checked only when both are written in this mapping: with one inherited from
        # defaults.restart the pair may differ, and then every restart waits backoff_max
        # (the formula's min()), which is well defined.
        both = {"backoff_initial", "backoff_max"} <= self.model_fields_set
        if both and self.backoff_max < self.backoff_initial:
            raise PydanticCustomError(
                "backoff_order",
                f"backoff_max ({self.backoff_max:g}) must be at least backoff_initial "
                f"({self.backoff_initial:g})",
            )
        return self

    def over(self, fallback: RestartSettings) -> RestartPolicy:
        """The policy: the keys written here, the others from ``fallback``."""
        values = fallback.model_dump()
        values.update(self.model_dump(include=set(self.model_fields_set)))
        return RestartPolicy(
            mode=RestartMode(values["mode"]),
            max_restarts=values["max_restarts"],
            backoff_initial=values["backoff_initial"],
            backoff_max=values["backoff_max"],
        )


RestartField = Annotated[RestartSettings, BeforeValidator(_restart_shorthand)]
"""A ``restart:`` value: a mode alone, or a :class:`RestartSettings` mapping."""


class AgentEntry(BaseModel):
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
            "Where the process runs: `subprocess` (a child process; the only backend so "
            "far). Default: `defaults.backend`."
        ),
    )
    env: Mapping[EnvKey, str] = Field(
        default_factory=dict,
        description=(
            "Extra environment variables for the agent, name: value. Only non-secret values: "
            "a name that looks like a secret (…TOKEN, …KEY, …PASSWORD, …SECRET) is refused; "
            "use `secret_env` for those."
        ),
    )
    secret_env: tuple[EnvVarName, ...] = Field(
        default=(),
        description=(
            "Names of environment variables passed through from Fleetwarden's own environment "
            "to the agent (e.g. `ANTHROPIC_API_KEY`). The values never touch the config file, "
            "the ledger or any log."
        ),
    )

    role: str | None = Field(
        default=None,
        alias="class",
        description=(
            "The agent's class: its role in the team, free text such as `orchestrator`, "
            f"`coder` or `reviewer` (1-{MAX_CLASS_LENGTH} characters, one line). Written "
            "`class:`. Default: none."
        ),
    )
    autostart: bool = Field(
        default=False,
        strict=True,
        description="Start the agent when Fleetwarden starts, without a `spawn`.",
    )
    restart: Annotated[RestartSettings | None, BeforeValidator(_restart_shorthand)] = Field(
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
        description=(
            f"The command line of the `{COMMAND_RUNTIME}` runtime, program first "
            "(`[python3, -m, mybot]`); never run through a shell. Required with runtime "
            f"`{COMMAND_RUNTIME}`, refused with any other."
        ),
    )

    @model_validator(mode="before")
    @classmethod
    def _role_is_written_class(cls, data: object) -> object:
        # The attribute is `role`, the key is `class`: point the likely mistake at the key.
        if isinstance(data, Mapping) and "role" in data and "class" not in data:
            raise PydanticCustomError(
                "role_key",
                "unknown key 'role': an agent's role is written `class:` (e.g. class: coder)",
            )
        return data

    @field_validator("name")
    @classmethod
    def _check_name(cls, value: AgentName) -> AgentName:
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
        runtime, name = info.data["runtime"], info.data.get("name")
        who = f"agent {name!r}" if isinstance(name, str) else "this agent"
        if runtime == COMMAND_RUNTIME:
            if not value:
                raise PydanticCustomError(
                    "argv_missing",
                    f"{who} has runtime '{COMMAND_RUNTIME}', which needs argv: the command "
                    "line to run, as a non-empty list of strings (argv: [python3, -m, mybot])",
                )
            if not value[0].strip():
                raise PydanticCustomError(
                    "argv_program", f"{who}: argv[0], the program to run, must not be empty"
                )
        elif value is not None:
            shown = f"is {runtime!r}" if runtime is not None else "is not set here"
            raise PydanticCustomError(
                "argv_forbidden",
                f"{who}: argv is only for runtime '{COMMAND_RUNTIME}', and its runtime "
                f"{shown}; set runtime: {COMMAND_RUNTIME} or remove argv",
            )
        return value

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
        return AgentSpec(
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
        )

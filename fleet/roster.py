"""The roster: the schema of one ``agents:`` entry in the config file, and its :class:`AgentSpec`.

Validating an entry needs facts from outside the file — which runtimes and backends
exist, which directory relative paths are resolved against — and takes them from a
:class:`SchemaContext` passed as pydantic's validation context. Secrets never appear
here: an entry names the environment variables that hold them (``secret_env``).

The small schema helpers (:data:`EnvVarName`, :data:`ConfigPath`, :func:`check_known`,
:func:`unknown_value_message`) are shared with the rest of the configuration schema.
"""

from __future__ import annotations

import difflib
import os
import re
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Annotated, Protocol

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

from fleet.model import AgentSpec
from fleet.names import AGENT_NAME_PATTERN, AgentName, is_agent_name

ENV_NAME_PATTERN = r"[A-Z_][A-Z0-9_]*"
"""What a variable named by a ``*_env`` key (or listed in ``secret_env``) must look like."""

ENV_KEY_PATTERN = r"[A-Za-z_][A-Za-z0-9_]*"
"""What a key of an agent's ``env`` must look like (lowercase allowed: ``http_proxy``)."""

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
    context = schema_context(info)
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


class AgentEntry(BaseModel):
    """One agent in the roster: what to launch and how.

    Fields left unset fall back to `defaults` (runtime, backend) or to the runtime's
    own behaviour (model, prompt). Listing an agent makes it known to the bot;
    `spawn NAME` starts it.
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
        """The launch specification, unset fields taken from ``defaults``."""
        return AgentSpec(
            name=self.name,
            runtime=self.runtime if self.runtime is not None else defaults.runtime,
            backend=self.backend if self.backend is not None else defaults.backend,
            model=self.model,
            prompt=self.prompt,
            workdir=self.workdir,
            env=self.env,
            secret_env=self.secret_env,
        )

"""Schema helpers shared by every section of the config file.

Validating a value sometimes needs facts from outside the file — which runtimes and
backends exist, which directory relative paths are resolved against — and takes them from
a :class:`SchemaContext` passed as pydantic's validation context.

The types here (:data:`EnvVarName`, :data:`EnvKey`, :data:`ConfigPath`, :data:`WorkDir`,
:data:`Seconds`) and the checks (:func:`check_known`, :func:`unknown_value_message`,
:func:`did_you_mean`, :func:`looks_secret`, :func:`expand_path`) are used by the roster
(:mod:`fleet.agents.roster`), the connectors' settings and :mod:`bot.config`.
"""

from __future__ import annotations

import difflib
import math
import os
import re
import unicodedata
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

from pydantic import AfterValidator, BeforeValidator, Field, ValidationInfo
from pydantic_core import PydanticCustomError

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


def no_agent_words(name: str, known: Collection[str]) -> str:
    """Why ``name`` names no agent, the same wherever it is said: the likeliest one meant,
    when one is close (a typo, never one to spawn), else that ``spawn`` starts one. A name
    ``known`` holds (the roster's, never launched) has not run yet, and is told so."""
    if name in known:
        return f"{name} has not run yet — `spawn {name}` starts it"
    guess = did_you_mean(name, sorted(known))
    if guess is not None:
        return f"no agent is called {name!r} — did you mean {guess!r}? `ps` lists them"
    return f"no agent is called {name!r} — `ps` lists them, `spawn {name}` starts one"


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


def unset_variable(environ: Mapping[str, str], variable: str, what: str) -> str | None:
    """What is wrong with the secret variable ``variable`` in ``environ`` (unset or empty),
    saying to set it to ``what``; None when it holds something. The value is never shown."""
    value = environ.get(variable)
    if value is not None and value.strip():
        return None
    state = "is not set" if value is None else "is empty"
    return (
        f"environment variable {variable} {state}: set it to {what} in Fleetwarden's "
        "environment (the value never goes in this file, and no agent sees it)"
    )


def token_problem(environ: Mapping[str, str], variable: str, what: str) -> str | None:
    """What is wrong with the token in ``variable`` (sent as an HTTP header or a git
    credential, so one word): unset or empty (:func:`unset_variable`), or holding a line
    break, a space or another control character (most often a newline a file or a paste
    left at its end), which no request could carry. None when it is usable. The value is
    never shown."""
    if (unset := unset_variable(environ, variable, what)) is not None:
        return unset
    value = environ[variable]
    if not any(char.isspace() or unicodedata.category(char) == "Cc" for char in value):
        return None
    breaks = any(char in "\r\n" for char in value)
    kind = "a line break" if breaks else "a space or a control character"
    return (
        f"environment variable {variable} holds {kind}: a token is one word, sent as it "
        f"is; set it to {what} alone, with nothing before or after it (the value is not "
        "shown)"
    )


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

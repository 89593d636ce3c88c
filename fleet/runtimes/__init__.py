"""Runtimes: how each kind of agent is launched headless, given a model and a prompt.

A runtime only *plans*: it turns an :class:`~fleet.model.AgentSpec` into a
:class:`~fleet.model.LaunchPlan` (argv list, explicit environment, working directory).
Backends carry the plan out. Nothing an operator types is ever given to a shell.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from fleet.errors import UnknownRuntime
from fleet.model import AgentSpec, LaunchPlan

# Variables an agent process may see from Fleetwarden's own environment, besides the
# secrets its spec names. Everything else is left behind on purpose.
PASSTHROUGH_ENV = ("PATH", "LANG", "LC_ALL", "TZ", "TMPDIR")


@dataclass(frozen=True, slots=True)
class RuntimeContext:
    """What a runtime needs to know about the agent's place on this host."""

    home: Path  # the agent's private HOME: its config files live here, never the operator's
    workdir: Path
    environ: Mapping[str, str]  # Fleetwarden's own environment, to pick pass-throughs from


class Runtime(Protocol):
    """How to launch one kind of agent."""

    @property
    def name(self) -> str: ...

    def plan(self, spec: AgentSpec, ctx: RuntimeContext) -> LaunchPlan:
        """The argv, environment and directory that start ``spec`` headless."""
        ...


def base_env(spec: AgentSpec, ctx: RuntimeContext) -> dict[str, str]:
    """The explicit environment every agent starts from: a private HOME, a few safe
    pass-throughs, the spec's own non-secret values and the secrets it names."""
    env = {key: ctx.environ[key] for key in PASSTHROUGH_ENV if key in ctx.environ}
    env.setdefault("PATH", "/usr/local/bin:/usr/bin:/bin")
    env.setdefault("LANG", "C.UTF-8")
    env["HOME"] = str(ctx.home)
    env["FLEETWARDEN_AGENT"] = spec.name
    env.update(spec.env)
    for key in spec.secret_env:
        if key in ctx.environ:
            env[key] = ctx.environ[key]
    return env


class RuntimeRegistry:
    """The runtimes this Fleetwarden knows, by name."""

    def __init__(self, runtimes: Mapping[str, Runtime]) -> None:
        self._runtimes = dict(runtimes)

    def get(self, name: str) -> Runtime:
        try:
            return self._runtimes[name]
        except KeyError:
            known = ", ".join(sorted(self._runtimes))
            raise UnknownRuntime(f"unknown runtime {name!r}; known runtimes: {known}") from None

    def names(self) -> tuple[str, ...]:
        return tuple(sorted(self._runtimes))


def default_registry() -> RuntimeRegistry:
    """Every runtime that ships with Fleetwarden."""
    from fleet.runtimes.stub import StubRuntime

    return RuntimeRegistry({"stub": StubRuntime()})

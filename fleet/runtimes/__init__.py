"""Runtimes: how each kind of agent is launched headless, given a model and a prompt.

A runtime only *plans*: it turns an :class:`~fleet.model.AgentSpec` into a
:class:`~fleet.model.LaunchPlan` (argv list, explicit environment, working directory).
Backends carry the plan out. Nothing an operator types is ever given to a shell. The shared
types are in :mod:`fleet.runtimes.base`; each runtime has its own module.
"""

from __future__ import annotations

from fleet.runtimes.base import (
    PASSTHROUGH_ENV,
    Runtime,
    RuntimeContext,
    RuntimeRegistry,
    base_env,
    provider_env,
)

__all__ = [
    "PASSTHROUGH_ENV",
    "Runtime",
    "RuntimeContext",
    "RuntimeRegistry",
    "base_env",
    "default_registry",
    "provider_env",
]


def default_registry() -> RuntimeRegistry:
    """Every runtime that ships with Fleetwarden."""
    from fleet.runtimes.claude import ClaudeRuntime
    from fleet.runtimes.codex import CodexRuntime
    from fleet.runtimes.command import CommandRuntime
    from fleet.runtimes.opencode import OpencodeRuntime
    from fleet.runtimes.pi import PiRuntime
    from fleet.runtimes.stub import StubRuntime

    runtimes: list[Runtime] = [
        StubRuntime(),
        ClaudeRuntime(),
        CodexRuntime(),
        PiRuntime(),
        OpencodeRuntime(),
        CommandRuntime(),
    ]
    return RuntimeRegistry({runtime.name: runtime for runtime in runtimes})

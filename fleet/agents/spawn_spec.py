"""What a ``spawn`` starts: the agent's spec with what the operator gave for this spawn.

Pure: the supervisor reads the agent (roster entry, ledger record or the defaults' ad
hoc spec) and launches what :func:`spawn_spec` makes of it.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

from fleet.errors import LaunchFailed
from fleet.model import AgentSpec, PermissionMode, RunBudget
from fleet.permissions.config import unsandboxed_full


@dataclass(frozen=True, slots=True)
class SpawnOverrides:
    """What one ``spawn`` sets for this run; ``None`` keeps the agent's own."""

    runtime: str | None = None
    model: str | None = None
    prompt: str | None = None
    workdir: Path | None = None
    account: str | None = None
    permissions: PermissionMode | None = None
    run_budget: RunBudget | None = None
    host: str | None = None  # another host, `any` (the one with the most room), or `local`


def spawn_spec(spec: AgentSpec, given: SpawnOverrides) -> AgentSpec:
    """``spec`` with ``given`` applied. Another CLI does not take this one's model names
    nor its account: those fall back to the new CLI's own defaults unless given. Refuses
    (:class:`LaunchFailed`) a ``full`` permission mode for an agent without a sandbox."""
    same_cli = given.runtime is None or given.runtime == spec.runtime
    made = replace(
        spec,
        runtime=given.runtime or spec.runtime,
        model=given.model if given.model is not None else (spec.model if same_cli else None),
        prompt=given.prompt if given.prompt is not None else spec.prompt,
        workdir=given.workdir if given.workdir is not None else spec.workdir,
        account=(
            given.account if given.account is not None else (spec.account if same_cli else None)
        ),
        permissions=given.permissions or spec.permissions,
        run_budget=given.run_budget if given.run_budget is not None else spec.run_budget,
        host=given.host or spec.host,
    )
    if wrong := unsandboxed_full(made.name, made.sandbox, made.permissions):
        raise LaunchFailed(wrong)
    return made

"""What a launch starts: the agent's spec with what its request overrides for this run.

Pure: the launcher (:meth:`fleet.supervisor.launcher.Launcher.spawn`) reads the agent
(roster entry, ledger record or the defaults' ad hoc spec) and launches what
:func:`spawn_spec` makes of it and the request as it came (every override ``None`` keeps
the agent's own setting; ``host``: another host, ``any`` — the one with the most room — or
``local``; ``repo``: a ``repos:`` entry, whose checkout becomes the run's workdir;
``repo_base``: the branch a new line of it is cut from).
"""

from __future__ import annotations

from dataclasses import replace

from fleet.errors import LaunchFailed
from fleet.mcp.config.grants import MCP_RUNTIMES, NO_MCP_RUNTIMES, no_mcp_why
from fleet.model import AgentSpec
from fleet.permissions.config import unsandboxed_full
from fleet.supervisor.admission.request import LaunchRequest


def spawn_spec(spec: AgentSpec, given: LaunchRequest) -> AgentSpec:
    """``spec`` with the overrides the request ``given`` asks for. Another CLI does not
    take this one's model names nor its account: those fall back to the new CLI's own
    defaults unless given. A repository given sets the agent's own workdir aside (its
    checkout is the workdir), a workdir given its repository (``spawn`` never gives both). Refuses
    (:class:`LaunchFailed`) a ``full`` permission mode for an agent without a sandbox, and
    a runtime that cannot be given the MCP servers the agent may use."""
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
        repo=given.repo or spec.repo,
        # A base belongs to its repository: another repository starts from its default.
        repo_base=given.repo_base or (spec.repo_base if given.repo in (None, spec.repo) else None),
    )
    if given.repo is not None:
        made = replace(made, workdir=None)  # a repository's run works in its checkout
    elif given.workdir is not None:
        made = replace(made, repo=None, repo_base=None)  # a workdir given: no repository
    if wrong := unsandboxed_full(made.name, made.sandbox, made.permissions):
        raise LaunchFailed(wrong)
    if made.mcp and made.runtime in NO_MCP_RUNTIMES:
        servers = ", ".join(grant.server for grant in made.mcp)
        raise LaunchFailed(
            f"{made.name} may use MCP servers ({servers}), and runtime {made.runtime} is one "
            f"{no_mcp_why(made.runtime)}: spawn it with its own runtime, or one of {MCP_RUNTIMES}"
        )
    return made

"""What ``fleetwarden check-config`` says of a config it found sound: where its state and
ledger are, who and what it runs, how agents are kept apart here, and what was asked online.
"""

from __future__ import annotations

import os

from bot.cli.check.mcp import online_summary as mcp_tools
from bot.config import Config
from bot.config.checks.forges import summary_lines as forge_summary_lines
from bot.config.checks.peers import summary_lines as peer_summary_lines
from bot.config.checks.provider_keys import key_warnings
from bot.config.checks.repos import summary_lines
from bot.config.checks.slack import online_summary
from bot.config.mcp.checks import direct_reach_warnings, missing_program_warnings
from bot.config.mcp.checks import summary_lines as mcp_summary_lines
from fleet.budgets.runs.budget import cap_warnings
from fleet.budgets.schema import unpriced_warnings
from fleet.hosts.schema import LOCAL_HOST
from fleet.mcp.model import HttpServer
from fleet.model import AgentSpec
from fleet.sandbox.host.layout_check import LayoutReport
from fleet.sandbox.host.layout_check import report as layout_report
from fleet.sandbox.lanes import FIRST_UID, Lanes, enforcement
from fleet.sandbox.schema import unsandboxed_warnings


def specs(config: Config) -> list[AgentSpec]:
    return [entry.to_spec(config.defaults) for entry in config.agents]


def layout(config: Config) -> LayoutReport:
    """The layout as the agents' users walk it: Fleetwarden's places and the workdirs of
    the roster's sandboxed agents here."""
    places = [config.state_dir, config.ledger_path.parent]
    if config.source is not None:
        places.append(config.source.parent)
    workdirs = [
        (spec.name, spec.workdir)
        for spec in specs(config)
        if spec.sandbox != "none" and spec.host == LOCAL_HOST and spec.workdir is not None
    ]
    lanes = Lanes(config.state_dir).distinct
    return layout_report(places, workdirs, lanes=lanes, uid=FIRST_UID)


def _lanes(config: Config) -> Lanes:
    """The lanes as the config asks for them (``agent_uids``), held by no one here."""
    return Lanes(config.state_dir, wanted=config.document.agent_uids.wanted())


def summary(config: Config, resolving: list[str]) -> str:
    source = config.source or "embedded defaults"
    running = {
        "console": config.console,
        "matrix": config.matrix,
        "discord": config.discord,
        "slack": config.slack,
    }
    connectors = ", ".join(name for name, section in running.items() if section) or "none"
    agents = specs(config)
    warnings = unsandboxed_warnings((s.name, s.sandbox, s.egress) for s in agents) + resolving
    warnings += unpriced_warnings(
        config.budgets,
        config.groups,
        ((spec.name, spec.model) for spec in agents),
        config.prices.priced,
    )
    # Each agent's permission mode, its default included (it follows the sandbox).
    modes = ", ".join(f"{spec.name} {spec.permissions}" for spec in agents)
    modes = f"  permissions: {modes}\n" if modes else ""
    warnings += cap_warnings(
        ((spec.name, spec.model, spec.run_budget) for spec in agents),
        config.prices.priced,
        metered=config.metering is not None,
    )
    warnings += direct_reach_warnings(config.document)
    warnings += key_warnings(config.document, os.environ)
    warnings += missing_program_warnings(config.document, os.environ.get("PATH"))
    return (
        f"{source}: OK\n"
        f"  state dir:  {config.state_dir}\n"
        f"  ledger:     {config.ledger_url or config.ledger_path}\n"
        f"  connectors: {connectors}\n"
        f"  operators:  {len(config.effective_operators())}\n"
        f"  agents:     {', '.join(a.name for a in config.agents) or 'none in the roster'}\n"
        + modes
        + f"  accounts:   {', '.join(config.accounts.names()) or 'none'}"
        + "".join(f"\n  peers:      {line}" for line in peer_summary_lines(agents))
        + _repos(config)
        + _forges(config)
        + "".join(f"\n  mcp:        {line}" for line in mcp_summary_lines(config.document))
        + "".join(
            f"\n  isolation:  {line}"
            for line in [*enforcement(_lanes(config)).lines(), *layout(config).notes]
        )
        + "".join(f"\nwarning: {line}" for line in warnings)
    )


def _repos(config: Config) -> str:
    """The ``repos:`` entries, each with its url and the credential Fleetwarden uses."""
    lines = summary_lines(config.repos)
    if not lines:
        return "\n  repos:      none"
    return "".join(f"\n  repos:      {line}" for line in lines)


def online(config: Config, *, asked: bool) -> str:
    """Whether the repositories, forges, MCP token endpoints and Slack were asked with their
    credentials."""
    endpoints = oauth_servers(config)
    slack = online_summary(config.slack, asked=asked) + mcp_tools(config.mcp, asked=asked)
    if not (config.repos or config.forges or endpoints):
        return slack
    if not asked:
        return slack + (
            "\n  online:     not asked (`check-config --online` asks each repository and "
            "forge with its credential"
            + (", and each MCP server's OAuth token endpoint" if endpoints else "")
            + ")"
        )
    repos, forges = len(config.repos), len(config.forges)
    tokens = f", {endpoints} MCP token endpoint{'' if endpoints == 1 else 's'}" if endpoints else ""
    return slack + (
        f"\n  online:     {repos} repositor{'y' if repos == 1 else 'ies'}{tokens} and {forges} "
        f"forge{'' if forges == 1 else 's'} answered with their credentials"
    )


def oauth_servers(config: Config) -> int:
    """How many MCP servers get their token with OAuth client credentials."""
    return sum(
        1
        for server in config.mcp.values()
        if isinstance(server.transport, HttpServer) and server.transport.oauth is not None
    )


def _forges(config: Config) -> str:
    """The ``forges:`` entries: kind, API, credential kind, how events come (the webhook's
    whole address), trigger."""
    from bot.cli.check.offline import webhook_base

    lines = forge_summary_lines(config.forges, webhook_base(config))
    return "".join(f"\n  forges:     {line}" for line in lines)

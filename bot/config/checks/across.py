"""The checks of ``fleetwarden.yaml`` across entries, once each entry has passed the
schema: names that name nothing (an agent's repository, account, provider, host or MCP
server, a budget's scope, a peer), settings that cannot go together (egress a sandbox
cannot give, budgets without metering, a credential an agent must not hold), entries given
twice.
:mod:`bot.config.reading.load` runs them over the whole file, or over what is sound of it
(:mod:`bot.config.reading.partial`).
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterator, Mapping
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from bot.config.checks.doors import door_secret_problems
from bot.config.checks.enforce import strict_problems
from bot.config.checks.forges import forge_problems, review_problems
from bot.config.checks.peers import roster_problems as peer_roster_problems
from bot.config.checks.problems import ConfigProblem, Locator
from bot.config.checks.provider_keys import strict_key_problems
from bot.config.checks.repos import roster_problems as repo_roster_problems
from bot.config.mcp.checks import mcp_problems
from bot.config.reading.resolved import implicit_accounts
from bot.config.roster.file import RosterSource
from bot.config.schema import ConfigFile
from fleet.accounts.model import CREDENTIAL_VARS
from fleet.accounts.schema import section_problems
from fleet.agents.command_argv import COMMAND_RUNTIME
from fleet.budgets.schema import Loc
from fleet.budgets.schema import section_problems as budget_section_problems
from fleet.hosts.schema import LOCAL_HOST, placement_problems
from fleet.hosts.schema import section_problems as host_section_problems
from fleet.metering.schema import provider_routes
from fleet.permissions.config import unsandboxed_full
from fleet.pipelines.schema import check_gate_problems, pipeline_problems
from fleet.sandbox.schema import check_egress
from fleet.schema import SchemaContext


def across_entries(
    document: ConfigFile,
    context: SchemaContext,
    locate: Locator,
    file_name: str,
    roster: RosterSource,
    now: datetime | None,
) -> list[ConfigProblem]:
    """What is wrong across entries of ``document``: names that name nothing, settings that
    cannot go together. ``document`` may be the sound part of a file whose schema failed."""
    problems: list[ConfigProblem] = []
    problems.extend(_unavailable_fallbacks(document, context, roster))
    problems.extend(_egress_problems(document, roster))
    problems.extend(strict_problems(document, locate, file_name, roster))
    problems.extend(strict_key_problems(document, roster))
    loaded_at = now if now is not None else datetime.now(UTC)
    problems.extend(_budget_problems(document, locate, file_name, loaded_at))
    problems.extend(_account_problems(document, locate, file_name, roster))
    problems.extend(
        ConfigProblem(file_name, *locate(loc)[:2], message)
        for loc, message in host_section_problems(document.hosts)
    )
    problems.extend(
        ConfigProblem(roster.file_name, *roster.locate(loc)[:2], message)
        for loc, message in placement_problems(document.hosts, document.agents)
    )
    problems.extend(repo_roster_problems(document, roster))
    problems.extend(peer_roster_problems(document, roster))
    problems.extend(door_secret_problems(document, roster))
    problems.extend(mcp_problems(document, locate, file_name, roster, context.base_dir))
    problems.extend(
        ConfigProblem(file_name, *locate(loc)[:2], message)
        for loc, message in (*forge_problems(document), *review_problems(document))
    )
    agents = [agent.name for agent in document.agents]
    roles = [agent.role for agent in document.agents if agent.role is not None]
    problems.extend(
        ConfigProblem(file_name, *locate(loc)[:2], message)
        for loc, message in pipeline_problems(document.pipelines, agents, roles)
    )
    problems.extend(
        ConfigProblem(file_name, *locate(loc)[:2], message)
        for loc, message in check_gate_problems(document.pipelines, _check_doers(document))
    )
    return problems


def _check_doers(document: ConfigFile) -> list[tuple[str, str | None, str]]:
    """Each agent, its class and why a ``check:`` gate could not run its code (or "")."""
    doers: list[tuple[str, str | None, str]] = []
    for agent in document.agents:
        why = ""
        if agent.host != LOCAL_HOST:
            why = f"runs on host {agent.host!r}"
        elif (agent.sandbox or document.defaults.sandbox) == "none":
            why = "has `sandbox: none`"
        doers.append((agent.name, agent.role, why))
    return doers


def repeated_entries(
    data: Mapping[str, object], locate: Locator, file_name: str, roster: RosterSource
) -> Iterator[ConfigProblem]:
    """Two agents with one name (in ``roster``, wherever it is); one operator listed twice."""

    def agent_key(item: Mapping[str, object]) -> Hashable | None:
        name = item.get("name")
        return name if isinstance(name, str) else None

    def operator_key(item: Mapping[str, object]) -> Hashable | None:
        user = item.get("id")
        return (user, item.get("connector")) if isinstance(user, str) else None

    yield from _repeats(
        {"agents": roster.items},
        "agents",
        "name",
        agent_key,
        "duplicate agent name {!r}",
        roster.locate,
        roster.file_name,
    )
    yield from _repeats(
        data, "operators", "id", operator_key, "operator {!r} is listed twice", locate, file_name
    )


def _repeats(
    data: Mapping[str, object],
    section: str,
    field_name: str,
    key_of: Callable[[Mapping[str, object]], Hashable | None],
    what: str,
    locate: Locator,
    file_name: str,
) -> Iterator[ConfigProblem]:
    items = data.get(section)
    if not isinstance(items, list):
        return
    first: dict[Hashable, int] = {}
    for index, item in enumerate(items):
        key = key_of(item) if isinstance(item, dict) else None
        if key is None:
            continue
        if key not in first:
            first[key] = index
            continue
        earlier_line, earlier_path, _ = locate((section, first[key], field_name))
        line, path, _ = locate((section, index, field_name))
        on_line = f" on line {earlier_line}" if earlier_line is not None else ""
        message = what.format(item[field_name]) + f": {earlier_path}{on_line} already has it"
        yield ConfigProblem(file_name, line, path, message)


def _unavailable_fallbacks(
    document: ConfigFile, context: SchemaContext, roster: RosterSource
) -> Iterator[ConfigProblem]:
    """Agents that rely on a default runtime/backend this installation lacks.

    Only reachable when ``defaults`` left the value unset: a value written there is
    checked like any other.
    """
    for index, agent in enumerate(document.agents):
        for noun, own, fallback, allowed in (
            ("runtime", agent.runtime, document.defaults.runtime, context.runtimes),
            ("backend", agent.backend, document.defaults.backend, context.backends),
        ):
            if own is None and fallback not in allowed:
                line, path, _ = roster.locate(("agents", index))
                message = (
                    f"no {noun} set, and the default {noun} {fallback!r} is not available; "
                    f"set {noun} here or defaults.{noun} (allowed: {', '.join(sorted(allowed))})"
                )
                yield ConfigProblem(roster.file_name, line, path, message)
        if (
            agent.runtime is None
            and document.defaults.runtime == COMMAND_RUNTIME
            and not agent.argv
        ):
            line, path, _ = roster.locate(("agents", index))
            yield ConfigProblem(
                roster.file_name,
                line,
                path,
                f"agent {agent.name!r} runs the default runtime `command`, which needs argv: "
                "add `argv: [program, args…]` or set another runtime",
            )


def _egress_problems(document: ConfigFile, roster: RosterSource) -> Iterator[ConfigProblem]:
    """Agents whose egress or permission mode, with the defaults applied, their sandbox
    cannot give."""
    for index, agent in enumerate(document.agents):
        spec = agent.to_spec(document.defaults)
        who = f"agent {agent.name!r}"
        for wrong in (
            check_egress(who, spec.sandbox, spec.egress, spec.egress_allow),
            unsandboxed_full(who, spec.sandbox, spec.permissions),
        ):
            if wrong is not None:
                line, path, _ = roster.locate(("agents", index))
                yield ConfigProblem(roster.file_name, line, path, wrong)


def _budget_problems(
    document: ConfigFile, locate: Locator, file_name: str, now: datetime
) -> Iterator[ConfigProblem]:
    """Groups and budgets checked across entries (:func:`section_problems`)."""
    tz = ZoneInfo(document.timezone)
    where = _where(locate)
    for loc, message in budget_section_problems(document.groups, document.budgets, tz, now, where):
        line, path, _ = locate(loc)
        yield ConfigProblem(file_name, line, path, message)


def _where(locate: Locator) -> Callable[[Loc], str]:
    """How a message names another place: ``budgets[0].scope on line 3``."""

    def where(loc: Loc) -> str:
        line, path, _ = locate(loc)
        return path if line is None else f"{path} on line {line}"

    return where


UNMETERED_BUDGETS = (
    "budgets bind through the metering proxy, which is off here (`metering: {enabled: "
    "false}`), so no budget could be enforced: turn metering on, or remove the budgets"
)


def _account_problems(
    document: ConfigFile, locate: Locator, file_name: str, roster: RosterSource
) -> Iterator[ConfigProblem]:
    """Accounts and pools checked across entries and against the agents that name them."""
    where = _where(locate)
    if (document.accounts or document.account_pools) and not document.metering.enabled:
        line, path, _ = locate(("accounts",))
        yield ConfigProblem(
            file_name,
            line,
            path,
            "accounts need the metering proxy, which holds their credentials for agents: "
            "remove `metering: {enabled: false}` or the accounts",
        )
    if document.budgets and not document.metering.enabled:
        line, path, _ = locate(("budgets",))
        yield ConfigProblem(file_name, line, path, UNMETERED_BUDGETS)
    runtime = document.defaults.runtime
    agents: list[tuple[Loc, str, str | None]] = [
        (("defaults", "account"), runtime, document.defaults.account)
    ]
    agents.extend(
        (("agents", index, "account"), agent.runtime or runtime, agent.account)
        for index, agent in enumerate(document.agents)
    )
    agents.extend(
        (("agents", index, "fallback", "account"), agent.fallback.runtime, agent.fallback.account)
        for index, agent in enumerate(document.agents)
        if agent.fallback is not None
    )
    held = {
        variable: name
        for name, entry in document.accounts.items()
        for variable in (entry.key_env, entry.token_env)
        if variable is not None
    }
    for index, agent in enumerate(document.agents):
        for item, variable in enumerate(agent.secret_env):
            fix = None
            if variable in held:
                fix = (
                    f"{variable} holds account {held[variable]!r}'s credential, which the "
                    f"proxy holds for agents and never gives one: remove it from secret_env "
                    f"and name the account instead (account: {held[variable]})"
                )
            elif variable in CREDENTIAL_VARS and document.metering.enabled:
                fix = (
                    f"{variable} is a Claude subscription token: agents never hold one; "
                    "make it an account the proxy holds (accounts: {NAME: {kind: "
                    f"claude_subscription, token_env: {variable}}}}}) and remove it here"
                )
            if fix is not None:
                line, path, _ = roster.locate(("agents", index, "secret_env", item))
                yield ConfigProblem(roster.file_name, line, path, fix)
    providers = sorted(provider_routes(document.providers))
    implicit = implicit_accounts(document.agents, document.defaults.runtime)
    known = {
        "account": set(document.accounts) | {a.name for a in implicit},
        "provider": set(providers),
        "host": {entry.name for entry in document.hosts} | {"local"},
    }
    for index, budget in enumerate(document.budgets):
        kind, _, name = budget.scope.partition(":")
        if kind in known and name not in known[kind]:
            line, path, _ = locate(("budgets", index, "scope"))
            listed = ", ".join(sorted(known[kind])) or "none"
            yield ConfigProblem(
                file_name,
                line,
                path,
                f"budget scope {budget.scope!r} names no {kind} (known: {listed})",
            )
    for loc, message in section_problems(
        document.accounts, document.account_pools, agents, providers, where
    ):
        if loc[0] == "agents":
            line, path, _ = roster.locate(loc)
            yield ConfigProblem(roster.file_name, line, path, message)
        else:
            line, path, _ = locate(loc)
            yield ConfigProblem(file_name, line, path, message)

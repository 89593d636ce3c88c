"""Reading ``fleetwarden.yaml`` into a :class:`~bot.config_schema.Config`: the file, the
roster file ``agents:`` may name, and the checks that span entries.

The file is parsed with PyYAML's node tree kept, validated with pydantic, and every
problem is reported against a line of the file; all problems are collected and raised
together as one :class:`ConfigError`. Only :func:`load_config` touches the filesystem (and
:func:`parse_config`, to read the roster file and check agents' ``workdir`` directories).

``agents:`` is either the list of agents or the path of a separate YAML file holding that
list (relative to the config file's directory). Problems in a roster file are reported
against that file's own lines, and relative paths inside it resolve against its directory.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Collection, Hashable, Iterator, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from pydantic import BaseModel, TypeAdapter, ValidationError
from pydantic_core import PydanticCustomError
from yaml.nodes import MappingNode, Node, ScalarNode

from bot.config_problems import ConfigError, ConfigProblem, Locator, compose, describe, translate
from bot.config_schema import (
    Config,
    ConfigFile,
    ConnectorsSection,
    absolute_path,
    implicit_accounts,
)
from fleet.accounts.chatgpt import login_problem
from fleet.accounts.model import CREDENTIAL_VARS
from fleet.accounts.schema import environment_problems, section_problems
from fleet.budgets.schema import Loc
from fleet.budgets.schema import section_problems as budget_section_problems
from fleet.hosts.schema import section_problems as host_section_problems
from fleet.metering.schema import provider_routes
from fleet.permission_config import unsandboxed_full
from fleet.roster import COMMAND_RUNTIME, AgentEntry
from fleet.sandbox.schema import check_egress
from fleet.schema import SchemaContext, expand_path

CONFIG_ENV_VAR = "FLEETWARDEN_CONFIG"
"""The environment variable naming the config file when ``--config`` is not given."""

# --- Loading ----------------------------------------------------------------------------


_KEY_NOUNS: Mapping[type[BaseModel], str] = {ConnectorsSection: "connector"}
"""What an unknown key is called in a section: ``connectors.matrx`` is an unknown connector."""


def load_config(
    path: Path | None,
    environ: Mapping[str, str],
    *,
    runtimes: Collection[str] = ("stub",),
    backends: Collection[str] = ("subprocess",),
    cwd: Path | None = None,
    now: datetime | None = None,
    credentials: bool = True,
) -> Config:
    """Read and validate the config file: ``path``, else ``$FLEETWARDEN_CONFIG``, else the
    embedded defaults. ``runtimes`` and ``backends`` are the names agents may use; ``cwd``
    (default: the process's) anchors a relative ``path``; ``now`` (default: the system
    clock) is the load time budgets' ``reset_at`` must be ahead of; ``credentials``: check
    that every account's credential is there (its variable set, its login in the state
    dir). Raises :class:`ConfigError`."""
    here = cwd if cwd is not None else Path.cwd()
    from_env = False
    if path is None:
        named = environ.get(CONFIG_ENV_VAR, "")
        if not named:
            return Config.default(here)
        path, from_env = Path(named), True
    shown = str(path)
    absolute = absolute_path(here, path)
    try:
        text = absolute.read_text(encoding="utf-8")
    except FileNotFoundError:
        origin = f" (named by {CONFIG_ENV_VAR})" if from_env else ""
        message = f"config file not found{origin}; pass --config PATH or unset {CONFIG_ENV_VAR}"
        raise ConfigError([ConfigProblem(shown, None, "", message)]) from None
    except IsADirectoryError:
        raise ConfigError([ConfigProblem(shown, None, "", "is a directory, not a file")]) from None
    except UnicodeDecodeError as exc:
        message = f"cannot read config file: not UTF-8 text (bad byte at offset {exc.start})"
        raise ConfigError([ConfigProblem(shown, None, "", message)]) from None
    except OSError as exc:
        message = f"cannot read config file: {exc.strerror or exc}"
        raise ConfigError([ConfigProblem(shown, None, "", message)]) from None
    return parse_config(
        text,
        shown,
        base_dir=absolute.parent,
        source=absolute,
        runtimes=runtimes,
        backends=backends,
        home=environ.get("HOME"),
        now=now,
        environ=environ if credentials else None,
    )


def parse_config(
    text: str,
    file_name: str,
    *,
    base_dir: Path,
    source: Path | None = None,
    runtimes: Collection[str] = ("stub",),
    backends: Collection[str] = ("subprocess",),
    home: str | None = None,
    now: datetime | None = None,
    environ: Mapping[str, str] | None = None,
) -> Config:
    """Validate config ``text``; ``file_name`` is how problems name the file. Relative paths
    resolve against ``base_dir`` (absolute); ``home`` expands ``~``; ``now`` (default: the
    system clock) is the load time budgets' ``reset_at`` must be ahead of; ``environ``, when
    given, is where the accounts' credentials must be. Reads nothing, except the roster file
    ``agents:`` may name, checking that agents' ``workdir`` directories exist and, with
    ``environ``, that ChatGPT logins are in the state dir. Raises :class:`ConfigError`."""
    root, data, problems = compose(text, file_name)
    locate = Locator(root)
    if data is None:
        data = {}
    if not isinstance(data, dict):
        line = root.start_mark.line + 1 if root is not None else None
        message = (
            "the top level must be a mapping of settings (key: value lines), "
            f"found {describe(data)}"
        )
        raise ConfigError([*problems, ConfigProblem(file_name, line, "", message)])
    context = SchemaContext(
        base_dir=base_dir,
        home=home,
        runtimes=frozenset(runtimes),
        backends=frozenset(backends),
    )
    roster = _Roster(data.get("agents"), file_name, locate)
    if isinstance(roster.items, str):
        # Validated on its own (its own lines, its own directory), then handed to the
        # document as entries; () when it has problems, so the rest is still checked.
        roster, entries = _roster_file(roster.items, locate, file_name, context, problems)
        data = {**data, "agents": entries}
    document: ConfigFile | None = None
    try:
        document = ConfigFile.model_validate(data, context=context)
    except ValidationError as exc:
        problems.extend(
            translate(error, locate, file_name, schema=ConfigFile, key_nouns=_KEY_NOUNS)
            for error in exc.errors()
        )
    problems.extend(_repeated_entries(data, locate, file_name, roster))
    if document is not None:
        problems.extend(_unavailable_fallbacks(document, context, roster))
        problems.extend(_egress_problems(document, roster))
        loaded_at = now if now is not None else datetime.now(UTC)
        problems.extend(_budget_problems(document, locate, file_name, loaded_at))
        problems.extend(_account_problems(document, locate, file_name, roster))
        problems.extend(
            ConfigProblem(file_name, *locate(loc)[:2], message)
            for loc, message in host_section_problems(document.hosts)
        )
    if problems or document is None:
        # The config file's problems first, then the roster file's; each by line.
        problems.sort(key=lambda p: (p.file != file_name, p.line is None, p.line or 0))
        raise ConfigError(problems)
    config = Config.from_document(document, source=source, base_dir=base_dir)
    if environ is not None:
        found = environment_problems(
            config.accounts.accounts, environ, config.state_dir, login_problem
        )
        missing = [ConfigProblem(file_name, *locate(loc)[:2], message) for loc, message in found]
        if missing:
            raise ConfigError(missing)
    return config


# --- Checks across entries -----------------------------------------------------------------


def _repeated_entries(
    data: Mapping[str, object], locate: Locator, file_name: str, roster: _Roster
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
    document: ConfigFile, context: SchemaContext, roster: _Roster
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


def _egress_problems(document: ConfigFile, roster: _Roster) -> Iterator[ConfigProblem]:
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
    document: ConfigFile, locate: Locator, file_name: str, roster: _Roster
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


# --- A roster in its own file ------------------------------------------------------------------


_ROSTER_ADAPTER = TypeAdapter(tuple[AgentEntry, ...])


@dataclass(frozen=True, slots=True)
class _Roster:
    """The agents as written (``items``), and where problems in them are reported: the
    config file itself, or the roster file ``agents:`` names."""

    items: object
    file_name: str
    locate: Locator


def _roster_file(
    written: str,
    locate: Locator,
    file_name: str,
    context: SchemaContext,
    problems: list[ConfigProblem],
) -> tuple[_Roster, tuple[AgentEntry, ...]]:
    """Read, parse and validate the roster file named by ``agents: <written>``; its problems
    are appended to ``problems``. Returns where the entries came from and the entries (empty
    when there were problems)."""
    line, _, _ = locate(("agents",))
    empty = _Roster([], file_name, locate)

    def refuse(message: str) -> tuple[_Roster, tuple[AgentEntry, ...]]:
        problems.append(ConfigProblem(file_name, line, "agents", message))
        return empty, ()

    if not written.strip():
        return refuse("expected a list of agents or the path of a roster file, found ''")
    try:
        path = expand_path(Path(written), context)
    except PydanticCustomError as exc:
        return refuse(exc.message())
    shown = _shown_path(written, path, file_name)
    where = f"roster file {str(path)!r}"
    try:
        if not path.is_file():
            what = "does not exist" if not path.exists() else "is not a regular file"
            return refuse(
                f"{where} {what} (a relative path is resolved against the config file's directory)"
            )
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        return refuse(f"cannot read {where}: not UTF-8 text (bad byte at offset {exc.start})")
    except OSError as exc:
        return refuse(f"cannot read {where}: {exc.strerror or exc}")
    try:
        root, items, duplicates = compose(text, shown)
    except ConfigError as exc:
        problems.extend(exc.problems)
        return empty, ()
    # compose() names keys from the file's top ("[0].name"); here they sit under agents.
    problems.extend(p._replace(key_path=f"agents{p.key_path}") for p in duplicates)
    roster = _Roster([] if items is None else items, shown, Locator(_under_agents(root)))
    if not isinstance(roster.items, list):
        found = describe(roster.items)
        roster_line, _, _ = roster.locate(("agents",))
        message = f"a roster file must be a list of agents (- name: ...), found {found}"
        problems.append(ConfigProblem(shown, roster_line, "", message))
        return empty, ()
    roster_context = replace(context, base_dir=path.parent)
    try:
        entries = _ROSTER_ADAPTER.validate_python(roster.items, context=roster_context)
    except ValidationError as exc:
        for error in exc.errors():
            located = error.copy()
            located["loc"] = ("agents", *error["loc"])
            problems.append(
                translate(located, roster.locate, shown, schema=ConfigFile, key_nouns=_KEY_NOUNS)
            )
        return roster, ()
    return roster, entries


def _shown_path(written: str, path: Path, file_name: str) -> str:
    """How problems name the roster file: next to ``file_name`` as the operator wrote it
    when relative (``etc/roster.yaml``), else the absolute path."""
    if Path(written).is_absolute() or written.startswith("~"):
        return str(path)
    return os.path.normpath(Path(file_name).parent / written)


def _under_agents(root: Node | None) -> Node | None:
    """``root`` (the roster file's list) as the value of an ``agents`` key, so that locations
    like ``("agents", 1, "runtime")`` find their line in the roster file."""
    if root is None:
        return None
    key = ScalarNode("tag:yaml.org,2002:str", "agents", root.start_mark, root.start_mark)
    return MappingNode("tag:yaml.org,2002:map", [(key, root)], root.start_mark, root.end_mark)

"""Configuration: the top-level schema of ``fleetwarden.yaml``, loaded into a :class:`Config`.

The file is parsed with PyYAML's node tree kept, validated with pydantic, and every
problem is reported against a line of the file: ``fleetwarden.yaml:12: agents[1].runtime:
unknown runtime 'claud' — did you mean 'claude'? allowed: claude, stub``. All problems
are collected, not only the first, and raised together as one :class:`ConfigError`.

How problems are found and worded (the YAML node tree, duplicate keys, pydantic's errors
in plain words) is :mod:`bot.config_problems`; :class:`ConfigError` and
:class:`ConfigProblem` live there and are re-exported here.

Secrets never appear in the file: keys ending in ``_env`` name environment variables,
and :meth:`Config.secret_env_names` lists them for the log redactor. The environment is
passed in; only :func:`load_config` touches the filesystem (and :func:`parse_config`, to
read the roster file ``agents:`` may name).

``agents:`` is either the list of agents or the path of a separate YAML file holding that
list (relative to the config file's directory). Problems in a roster file are reported
against that file's own lines (``roster.yaml:7: agents[1].restart.max_restarts: ...``), and
relative paths inside it resolve against its directory.

Sections live next to what they configure: an agent entry in :mod:`fleet.roster`, each
connector's settings beside the connector (:mod:`connectors.console_config`).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Collection, Hashable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
    ValidationInfo,
    field_validator,
)
from pydantic_core import PydanticCustomError
from yaml.nodes import MappingNode, Node, ScalarNode

from bot.config_problems import ConfigError, ConfigProblem, Locator, compose, describe, translate
from connectors.console_config import ConsoleConfig, Role
from connectors.matrix.config import MatrixConfig
from fleet.roster import (
    AgentEntry,
    ConfigPath,
    RestartField,
    RestartSettings,
    SchemaContext,
    check_known,
    expand_path,
    schema_context,
)

__all__ = [
    "CONFIG_ENV_VAR",
    "AgentEntry",
    "Config",
    "ConfigError",
    "ConfigFile",
    "ConfigProblem",
    "ConnectorsSection",
    "ConsoleConfig",
    "Defaults",
    "LogLevel",
    "Operator",
    "Role",
    "load_config",
    "parse_config",
]

CONFIG_ENV_VAR = "FLEETWARDEN_CONFIG"
"""The environment variable naming the config file when ``--config`` is not given."""

LogLevel = Literal["debug", "info", "warning", "error"]

_MAX_PREFIX = 8


# --- The schema -------------------------------------------------------------------------


class Operator(BaseModel):
    """A person allowed to talk to the bot, and what they may do.

    Messages from anyone not listed are ignored, never answered. The console user needs
    no entry: it gets `connectors.console.role` unless an entry names its `user_id`.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(
        min_length=1,
        description=(
            'The person\'s user id on the connector: a Matrix user id ("@alice:example.org"), '
            'a Discord user id (the number, in quotes), or the console\'s `user_id` ("console").'
        ),
    )
    role: Role = Field(
        description=(
            "What they may do: `viewer` (read-only commands), `operator` (also start, stop "
            "and talk to agents), `admin` (also budgets, bursts and roster reloads)."
        ),
    )
    connector: str | None = Field(
        default=None,
        description=(
            "Match this id only on this connector (e.g. `console`). Default: on every connector."
        ),
    )

    @field_validator("connector")
    @classmethod
    def _known_connector(cls, value: str | None) -> str | None:
        if value is None:
            return None
        return check_known("connector", value, tuple(ConnectorsSection.model_fields))


class Defaults(BaseModel):
    """Fleet-wide defaults: what an agent entry or a command falls back to."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    runtime: str = Field(
        default="stub",
        description="The runtime of agents that name none (and of `spawn` without one).",
    )
    backend: str = Field(
        default="subprocess", description="The backend of agents that name none: `subprocess`."
    )
    stop_grace_seconds: float = Field(
        default=10.0,
        gt=0,
        le=600,
        strict=True,
        description=(
            "How long `stop` waits after asking an agent to end before it kills it "
            "(more than 0, at most 600)."
        ),
    )
    logs_lines: int = Field(
        default=40,
        ge=1,
        le=10_000,
        strict=True,
        description="How many lines `logs NAME` shows without `--lines` (1 to 10000).",
    )
    send_reply_wait_seconds: float = Field(
        default=2.0,
        ge=0,
        le=30,
        strict=True,
        description=(
            "How long `send` waits for the agent's output to include it in the reply "
            "(0 to 30; 0 replies at once)."
        ),
    )
    heartbeat_timeout_seconds: float = Field(
        default=120.0,
        gt=0,
        le=86_400,
        strict=True,
        description=(
            "Seconds without a heartbeat or output before an agent counts as stalled, for "
            "agents that set no `heartbeat_timeout` (more than 0, at most 86400)."
        ),
    )
    watchdog_interval_seconds: float = Field(
        default=30.0,
        ge=5,
        le=3600,
        strict=True,
        description=(
            "How often the watchdog checks the agents for stalls, ends, timeouts and due "
            "restarts (5 to 3600)."
        ),
    )
    restart: RestartField = Field(
        default_factory=RestartSettings,
        description=(
            "The restart policy of agents that set no `restart`: a mode (`never`, "
            "`on-failure`, `always`) or a mapping of the keys below. Default: `never`."
        ),
    )

    @field_validator("runtime")
    @classmethod
    def _known_runtime(cls, value: str, info: ValidationInfo) -> str:
        return check_known("runtime", value, schema_context(info).runtimes)

    @field_validator("backend")
    @classmethod
    def _known_backend(cls, value: str, info: ValidationInfo) -> str:
        return check_known("backend", value, schema_context(info).backends)


class ConnectorsSection(BaseModel):
    """The chat connectors to run, one key per connector.

    Only the connectors listed here run. Without a `connectors` key at all, the console
    runs; with one, a deployment (a service with no terminal) can leave the console out.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    console: ConsoleConfig | None = Field(
        default=None,
        description=(
            "The terminal: commands on stdin, replies on stdout. An empty `console:` runs it "
            "with the defaults."
        ),
    )

    matrix: MatrixConfig | None = Field(
        default=None,
        description="A Matrix homeserver account and the rooms it serves (see the Matrix section).",
    )

    @field_validator("console", mode="before")
    @classmethod
    def _empty_means_defaults(cls, value: object) -> object:
        return {} if value is None else value


class ConfigFile(BaseModel):
    """The config file, `fleetwarden.yaml`. Every key is optional: an empty file means the
    defaults. Relative paths are resolved against the file's directory."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    state_dir: ConfigPath = Field(
        default=Path(".fleetwarden"),
        description=(
            "Where Fleetwarden keeps its state: the ledger, agents' run directories and logs, "
            "the lock that stops two instances sharing it. Default: `.fleetwarden` next to "
            "the config file."
        ),
    )
    ledger: ConfigPath | None = Field(
        default=None,
        description="The ledger's SQLite database file. Default: `ledger.db` in `state_dir`.",
    )
    command_prefix: str = Field(
        default="!",
        description=(
            "What starts a command in a chat room, e.g. `!ps` (a mention works too; optional "
            'on the console). 1-8 characters, no spaces; quote it in YAML: `"!"`.'
        ),
    )
    log_level: LogLevel = Field(
        default="info",
        description="How much Fleetwarden logs: `debug`, `info`, `warning` or `error`.",
    )
    operators: tuple[Operator, ...] = Field(
        default=(),
        description="Who may talk to the bot, and with which role. Anyone else is ignored.",
    )
    connectors: ConnectorsSection | None = Field(
        default=None,
        description="The chat connectors to run. Default (no `connectors` key): the console.",
    )
    agents: tuple[AgentEntry, ...] = Field(
        default=(),
        description=(
            "The roster: the agents Fleetwarden knows by name. Either the list itself, or the "
            "path of a YAML file holding the list (relative to this file's directory; "
            "relative paths inside it resolve against its own directory)."
        ),
    )
    defaults: Defaults = Field(
        default_factory=Defaults, description="Fleet-wide defaults for agents and commands."
    )

    @field_validator("command_prefix")
    @classmethod
    def _check_prefix(cls, value: str) -> str:
        if not value:
            raise PydanticCustomError(
                "prefix_empty", 'must not be empty (in YAML, quote it: command_prefix: "!")'
            )
        if any(char.isspace() for char in value):
            raise PydanticCustomError("prefix_space", "must not contain spaces")
        if len(value) > _MAX_PREFIX:
            raise PydanticCustomError(
                "prefix_long", f"must be at most {_MAX_PREFIX} characters, found {len(value)}"
            )
        return value

    @field_validator("connectors", mode="before")
    @classmethod
    def _empty_means_none_listed(cls, value: object) -> object:
        # `connectors:` with nothing under it lists no connector; that is not the same
        # as leaving the key out (which runs the console).
        return {} if value is None else value


# --- The result -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Config:
    """The validated configuration, paths absolute. Built once at the entry point."""

    source: Path | None
    """The config file it came from; ``None`` for the embedded defaults."""
    state_dir: Path
    """Absolute; may not exist yet."""
    ledger_path: Path
    """Absolute: ``ledger`` from the file, else ``<state_dir>/ledger.db``."""
    command_prefix: str
    log_level: LogLevel
    operators: tuple[Operator, ...]
    """As listed; :meth:`effective_operators` adds the console user."""
    console: ConsoleConfig | None
    """The console connector's settings, or ``None`` when it does not run."""
    matrix: MatrixConfig | None
    """The Matrix connector's settings, or ``None`` when it does not run."""
    agents: tuple[AgentEntry, ...]
    """The roster, in file order; :meth:`AgentEntry.to_spec` with ``defaults`` to launch."""
    defaults: Defaults
    document: ConfigFile = field(repr=False)
    """The validated file, section by section (paths in it already resolved)."""

    @classmethod
    def default(cls, cwd: Path) -> Config:
        """The embedded defaults: the console as an admin, state in ``cwd/.fleetwarden``."""
        return cls.from_document(ConfigFile(), source=None, base_dir=cwd)

    @classmethod
    def from_document(cls, document: ConfigFile, *, source: Path | None, base_dir: Path) -> Config:
        """Resolve a validated file against ``base_dir`` (absolute: the file's directory)."""
        state_dir = _absolute(base_dir, document.state_dir)
        ledger = document.ledger
        console = ConsoleConfig() if document.connectors is None else document.connectors.console
        matrix = None if document.connectors is None else document.connectors.matrix
        return cls(
            source=source,
            state_dir=state_dir,
            ledger_path=state_dir / "ledger.db" if ledger is None else _absolute(base_dir, ledger),
            command_prefix=document.command_prefix,
            log_level=document.log_level,
            operators=document.operators,
            console=console if console is not None and console.enabled else None,
            matrix=matrix if matrix is not None and matrix.enabled else None,
            agents=document.agents,
            defaults=document.defaults,
            document=document,
        )

    def effective_operators(self) -> tuple[Operator, ...]:
        """``operators``, plus the console user with the console's role when the console
        runs and no entry (for any connector, or for ``console``) names that user."""
        if self.console is None:
            return self.operators
        user = self.console.user_id
        if any(op.id == user and op.connector in (None, "console") for op in self.operators):
            return self.operators
        return (*self.operators, Operator(id=user, role=self.console.role, connector="console"))

    def secret_env_names(self) -> frozenset[str]:
        """Every variable the config names as holding a secret: the value of each ``*_env``
        key anywhere, and every agent's ``secret_env``. For the log redactor."""
        return frozenset(_env_names(self.document))


def _absolute(base_dir: Path, path: Path) -> Path:
    return Path(os.path.normpath(base_dir / path))


def _env_names(value: object) -> Iterator[str]:
    if isinstance(value, BaseModel):
        for name in type(value).model_fields:
            item = getattr(value, name)
            if not name.endswith("_env"):
                yield from _env_names(item)
            elif isinstance(item, str):
                yield item
            elif isinstance(item, tuple | list | frozenset):
                yield from (entry for entry in item if isinstance(entry, str))
    elif isinstance(value, tuple | list):
        for item in value:
            yield from _env_names(item)


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
) -> Config:
    """Read and validate the config file: ``path``, else ``$FLEETWARDEN_CONFIG``, else the
    embedded defaults. ``runtimes`` and ``backends`` are the names agents may use; ``cwd``
    (default: the process's) anchors a relative ``path``. Raises :class:`ConfigError`."""
    here = cwd if cwd is not None else Path.cwd()
    from_env = False
    if path is None:
        named = environ.get(CONFIG_ENV_VAR, "")
        if not named:
            return Config.default(here)
        path, from_env = Path(named), True
    shown = str(path)
    absolute = _absolute(here, path)
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
) -> Config:
    """Validate config ``text``; ``file_name`` is how problems name the file. Relative paths
    resolve against ``base_dir`` (absolute); ``home`` expands ``~``. Reads nothing, except
    the roster file ``agents:`` may name and checking that agents' ``workdir`` directories
    exist. Raises :class:`ConfigError`."""
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
    if problems or document is None:
        # The config file's problems first, then the roster file's; each by line.
        problems.sort(key=lambda p: (p.file != file_name, p.line is None, p.line or 0))
        raise ConfigError(problems)
    return Config.from_document(document, source=source, base_dir=base_dir)


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

"""Reading ``fleetwarden.yaml`` into a :class:`~bot.config.reading.resolved.Config`: the file, the
roster file ``agents:`` may name, and the checks that span entries
(:mod:`bot.config.checks.across`).

The file is parsed with PyYAML's node tree kept, validated with pydantic, and every
problem is reported against a line of the file; all problems are collected and raised
together as one :class:`ConfigError` — where the schema refused something, the checks
across entries still run over the rest (:mod:`bot.config.reading.partial`). Only
:func:`load_config` touches the filesystem (and :func:`parse_config`, to read the roster
file and check agents' ``workdir`` directories).

``agents:`` is either the list of agents or the path of a separate YAML file holding that
list (relative to the config file's directory). Problems in a roster file are reported
against that file's own lines, and relative paths inside it resolve against its directory.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Final

from pydantic import ValidationError

from bot.config.checks.across import across_entries, repeated_entries
from bot.config.checks.forges import environment_problems as forge_environment_problems
from bot.config.checks.problems import (
    ConfigError,
    ConfigProblem,
    Locator,
    compose,
    describe,
    translate,
)
from bot.config.checks.provider_keys import strict_shape_problems
from bot.config.checks.repos import environment_problems as repo_environment_problems
from bot.config.checks.slack import environment_problems as slack_environment_problems
from bot.config.mcp.checks import environment_problems as mcp_environment_problems
from bot.config.mcp.places import place_problems
from bot.config.reading.partial import KeptLocator, SoundPart, sound_document, unsaid
from bot.config.reading.resolved import Config, absolute_path
from bot.config.roster.file import KEY_NOUNS, RosterSource, roster_file
from bot.config.schema import ConfigFile
from fleet.accounts.chatgpt import login_problem
from fleet.accounts.schema import environment_problems
from fleet.schema import SchemaContext

CONFIG_ENV_VAR = "FLEETWARDEN_CONFIG"
"""The environment variable naming the config file when ``--config`` is not given."""


@dataclass(frozen=True, slots=True)
class Offered:
    """The runtimes and backends this Fleetwarden offers: the names an agent's ``runtime``
    and ``backend`` may take."""

    runtimes: Collection[str] = ("stub",)
    backends: Collection[str] = ("subprocess",)


STUB_ONLY: Final = Offered()
"""The stub runtime on the subprocess backend: what a config is checked against unless told."""

# --- Loading ----------------------------------------------------------------------------


def load_config(
    path: Path | None,
    environ: Mapping[str, str],
    *,
    offered: Offered = STUB_ONLY,
    cwd: Path | None = None,
    now: datetime | None = None,
    credentials: bool = True,
    texts: Mapping[Path, str] | None = None,
) -> Config:
    """Read and validate the config file: ``path``, else ``$FLEETWARDEN_CONFIG``, else the
    embedded defaults. ``offered``: the runtimes and backends agents may name; ``cwd``
    (default: the process's) anchors a relative ``path``; ``now`` (default: the system
    clock) is the load time budgets' ``reset_at`` must be ahead of; ``credentials``: check
    that every account's credential is there (its variable set, its login in the state
    dir); ``texts``: files read as these texts instead of from the disk, by absolute path
    (a roster edit checked before it is written). Raises :class:`ConfigError`."""
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
        text = texts[absolute] if texts and absolute in texts else absolute.read_text("utf-8")
    except FileNotFoundError:
        if from_env:
            how = f" (named by {CONFIG_ENV_VAR}); pass --config PATH or unset {CONFIG_ENV_VAR}"
        else:  # named by --config: the fix is another path, or none for the defaults
            how = "; check the path given to --config (without it, the defaults are run)"
        message = f"config file not found{how}"
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
        offered=offered,
        home=environ.get("HOME"),
        now=now,
        environ=environ if credentials else None,
        texts=texts,
    )


def parse_config(
    text: str,
    file_name: str,
    *,
    base_dir: Path,
    source: Path | None = None,
    offered: Offered = STUB_ONLY,
    home: str | None = None,
    now: datetime | None = None,
    environ: Mapping[str, str] | None = None,
    texts: Mapping[Path, str] | None = None,
) -> Config:
    """Validate config ``text``; ``file_name`` is how problems name the file. Relative paths
    resolve against ``base_dir`` (absolute); ``offered``: the runtimes and backends agents
    may name; ``home`` expands ``~``; ``now`` (default: the
    system clock) is the load time budgets' ``reset_at`` must be ahead of; ``environ``, when
    given, is where the accounts', the repositories' and the MCP servers' credentials must
    be. Reads nothing, except the roster file ``agents:`` may name, checking that agents'
    ``workdir`` and skill directories exist and, with ``environ``, that ChatGPT logins are
    in the state dir and repositories' ssh keys are kept private; ``texts``: as for
    :func:`load_config`. Raises :class:`ConfigError`."""
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
        runtimes=frozenset(offered.runtimes),
        backends=frozenset(offered.backends),
    )
    roster = RosterSource(data.get("agents"), file_name, locate)
    part = SoundPart(data)
    if isinstance(roster.items, str):
        # Validated on its own (its own lines, its own directory), then handed to the
        # document as entries: those sound on their own when some are not, so the checks
        # across entries still read them.
        roster, entries = roster_file(roster.items, locate, file_name, context, problems, texts)
        data = {**data, "agents": entries}
        damaged = {f"agents[{index}]" for index in roster.damaged}
        part = SoundPart(data, _kept_agents(roster), _dropped_agents(roster), damaged)
    document: ConfigFile | None = None
    try:
        document = ConfigFile.model_validate(data, context=context)
    except ValidationError as exc:
        problems.extend(
            translate(error, locate, file_name, schema=ConfigFile, key_nouns=KEY_NOUNS)
            for error in exc.errors()
        )
        # The rest of the file, without what failed, for the checks across entries.
        failed = [(tuple(error["loc"]), error["type"]) for error in exc.errors()]
        sound = sound_document(part, failed, context)
        if sound is not None:
            document, part = sound
    problems.extend(repeated_entries(data, locate, file_name, roster))
    if document is not None:
        checked = KeptLocator(locate, part.kept)
        listed = RosterSource(roster.items, roster.file_name, KeptLocator(roster.locate, part.kept))
        across = across_entries(document, context, checked, file_name, listed, now)
        problems.extend(unsaid(across, part))
    if problems or document is None:
        # The config file's problems first, then the roster file's; each by line.
        problems.sort(key=lambda p: (p.file != file_name, p.line is None, p.line or 0))
        raise ConfigError(problems)
    config = Config.from_document(document, source=source, base_dir=base_dir)
    if environ is not None:
        found = [
            *environment_problems(
                config.accounts.accounts, environ, config.state_dir, login_problem
            ),
            *repo_environment_problems(document.repos, environ),
            *forge_environment_problems(document.forges, environ),
            *mcp_environment_problems(document.mcp, environ),
            *slack_environment_problems(config.slack, environ),
        ]
        missing = [ConfigProblem(file_name, *locate(loc)[:2], message) for loc, message in found]
        missing.extend(strict_shape_problems(document, roster, environ))
        # What a stdio server's env_env variables hold is known only now.
        missing.extend(place_problems(document, locate, file_name, roster, base_dir, environ))
        missing.sort(key=lambda p: (p.line is None, p.line or 0))  # by line, as above
        if missing:
            raise ConfigError(missing)
    return config


# --- The agents a roster file handed on ----------------------------------------------------


def _kept_agents(roster: RosterSource) -> dict[str, list[int]]:
    """Which written agents a roster file handed on, when some failed."""
    return {} if roster.kept is None else {"agents": list(roster.kept)}


def _dropped_agents(roster: RosterSource) -> set[str]:
    """The names of the agents a roster file did not hand on, as written."""
    if roster.kept is None or not isinstance(roster.items, list):
        return set()
    return {
        item["name"]
        for index, item in enumerate(roster.items)
        if index not in roster.kept and isinstance(item, dict) and isinstance(item.get("name"), str)
    }

"""Configuration: the top-level schema of ``fleetwarden.yaml``, loaded into a :class:`Config`.

The file is parsed with PyYAML's node tree kept, validated with pydantic, and every
problem is reported against a line of the file: ``fleetwarden.yaml:12: agents[1].runtime:
unknown runtime 'claud' — did you mean 'claude'? allowed: claude, stub``. All problems
are collected, not only the first, and raised together as one :class:`ConfigError`.

How problems are found and worded (the YAML node tree, duplicate keys, pydantic's errors
in plain words) is :mod:`bot.config.checks.problems`; :class:`ConfigError` and
:class:`ConfigProblem` live there and are re-exported here.

Secrets never appear in the file: keys ending in ``_env`` name environment variables,
and :meth:`Config.secret_env_names` lists them for the log redactor. The environment is
passed in; only :func:`load_config` touches the filesystem (and :func:`parse_config`, to
read the roster file ``agents:`` may name).

``agents:`` is either the list of agents or the path of a separate YAML file holding that
list (relative to the config file's directory). Problems in a roster file are reported
against that file's own lines (``roster.yaml:7: agents[1].restart.max_restarts: ...``), and
relative paths inside it resolve against its directory.

Sections live next to what they configure: an agent entry in :mod:`fleet.agents.roster`, each
connector's settings beside the connector (:mod:`connectors.console.config`).

This module is the public face: the schema is :mod:`bot.config.schema` (its chat sections
:mod:`bot.config.chat`), :class:`Config` is :mod:`bot.config.reading.resolved`, reading and checking
a file is :mod:`bot.config.reading.load`; every name is re-exported here.
"""

from __future__ import annotations

from bot.config.chat import ConnectorsSection, Operator
from bot.config.checks.problems import ConfigError, ConfigProblem
from bot.config.checks.problems import Locator as Locator
from bot.config.checks.problems import compose as compose
from bot.config.checks.problems import describe as describe
from bot.config.checks.problems import translate as translate
from bot.config.reading.defaults import Defaults
from bot.config.reading.load import CONFIG_ENV_VAR, Offered, load_config, parse_config
from bot.config.reading.resolved import Config
from bot.config.schema import ConfigFile, LogLevel
from connectors.console.config import ConsoleConfig, Role
from connectors.matrix.config import MatrixConfig as MatrixConfig
from fleet.agents.restart_settings import RestartField as RestartField
from fleet.agents.restart_settings import RestartSettings as RestartSettings
from fleet.agents.roster import AgentEntry
from fleet.schema import ConfigPath as ConfigPath
from fleet.schema import SchemaContext as SchemaContext
from fleet.schema import check_known as check_known
from fleet.schema import expand_path as expand_path
from fleet.schema import schema_context as schema_context

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
    "Offered",
    "Operator",
    "Role",
    "load_config",
    "parse_config",
]

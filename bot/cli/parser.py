"""The ``fleetwarden`` command line's parser: its commands, each one's options loaded from
its own module only when that command is typed, so a command loads what it runs and no more
(``fleetwarden --version`` loads nothing)."""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Final, cast

from bot.cli.parsing import Parser, add_first_config, past_config

COMMANDS: Final = ("run", "check-config", "accounts", "hosts", "status", "tasks", "init", "matrix")
"""The command line's own commands (beside the chat verbs, :data:`~bot.cli.verbs.words.VERBS`)."""


def command_line(only: str | None = None) -> Parser:
    """The command line's parser. Each command's options come from its own module, loaded
    for it: ``only`` names the one command to give its options (the one typed; the others
    keep their line in ``--help``), ``None`` all of them (``--help``, a typo, the
    reference)."""
    configures = _configurers(only)
    parser = Parser(
        prog="fleetwarden",
        description="Run a fleet of AI coding agents from chat: launch, watch, meter and pace.",
    )
    parser.add_argument(
        "--version", action=_Version, nargs=0, help="print the version and commit, then exit"
    )
    config_help = "configuration file (default: $FLEETWARDEN_CONFIG, else the embedded defaults)"
    add_first_config(parser, f"{config_help}; before the command or after it")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    run = sub.add_parser(
        "run",
        help="run the bot (the console on stdin/stdout when no config is given)",
        description="Run Fleetwarden until end of input, `quit`, SIGINT or SIGTERM.",
    )
    run.add_argument("--config", type=Path, help=config_help)
    check = sub.add_parser("check-config", help="validate a configuration file and summarise it")
    check.add_argument("--config", type=Path, help=config_help)
    check.add_argument(
        "--online",
        action="store_true",
        help="also ask each repository, forge, MCP OAuth token endpoint and Slack, with "
        "its credential, whether it answers",
    )
    configures["accounts"](
        sub.add_parser("accounts", help="log in an account, or check the accounts' credentials"),
        config_help,
    )
    configures["hosts"](
        sub.add_parser("hosts", help="trust a host's key, or check every host"), config_help
    )
    configures["status"](
        sub.add_parser(
            "status",
            help="the running fleet, an agent, budgets or usage, from the dashboard's API",
            description="Read the running orchestrator's dashboard API (the config's "
            "`dashboard:` section; with it off, `status` and `status --json` ask the "
            "control socket for `ps` instead): the fleet and its forge runs, the tasks, the "
            "cost per merged change (`status changes`), or one agent "
            "(`status NAME`). The config's secrets need not be set. --json prints the API's "
            "answer as it is.",
        ),
        config_help,
    )
    configures["tasks"](
        sub.add_parser(
            "tasks",
            help="write the task register as TASKS.md and MISSIONS.md (--markdown), or print "
            "it as data (--json, --csv); without those, chat's `tasks` from the orchestrator",
            description="Write the task register from the ledger as two documents, "
            "TASKS.md (every task by state, its projection beside its actual) and MISSIONS.md "
            "(each mission, its sub-missions nested, its progress and sums), each replaced "
            "whole; or print it as JSON or CSV. The config's secrets need not be set but the "
            "ledger's password: the register's words were redacted as they were stored, and "
            "words stored before that which this command cannot check are withheld.",
        ),
        config_help,
    )
    configures["init"](
        sub.add_parser(
            "init",
            help="write a commented config and roster from a preset (solo, pair, forge, pipeline)",
            description="Write fleetwarden.yaml and roster.yaml into DIR from a preset, ready "
            "for check-config and run; nothing existing is overwritten.",
        ),
        config_help,
    )
    configures["shell"](sub, config_help)
    matrix = sub.add_parser("matrix", help="Matrix homeserver helpers")
    matrix_sub = cast(  # a Parser's, whose helpers take any argument parser's
        "argparse._SubParsersAction[argparse.ArgumentParser]",
        matrix.add_subparsers(dest="matrix_command", metavar="COMMAND", required=True),
    )
    configures["matrix"](matrix_sub, config_help)
    return parser


def _configurers(only: str | None) -> dict[str, Configure]:
    """Each command's way to add its options: its module's, loaded when it is to be
    configured, else one that adds none."""
    wanted = (*COMMANDS, "shell") if only is None else (only,)
    loaders: dict[str, Callable[[], Configure]] = {
        "accounts": _accounts_options,
        "hosts": _hosts_options,
        "status": _status_options,
        "tasks": _tasks_options,
        "init": _init_options,
        "shell": _shell_options,
        "matrix": _matrix_options,
    }
    return {name: load() if name in wanted else _no_options for name, load in loaders.items()}


Configure = Callable[[Any, str], None]


def _no_options(*_: object) -> None:
    """A command not typed keeps its line in ``--help`` and nothing more."""


def _accounts_options() -> Configure:
    from bot.cli.accounts import configure_parser

    return configure_parser


def _hosts_options() -> Configure:
    from bot.cli.hosts import configure_parser

    return configure_parser


def _status_options() -> Configure:
    from bot.cli.status.command import configure_parser

    return configure_parser


def _tasks_options() -> Configure:
    from bot.cli.tasks.command import configure_parser

    return configure_parser


def _init_options() -> Configure:
    from bot.cli.init.command import configure_parser

    def configure(parser: Any, _: str) -> None:
        configure_parser(parser)

    return configure


def _shell_options() -> Configure:
    from bot.cli.verbs.shell import configure as verbs

    def configure(sub: Any, _: str) -> None:
        verbs(sub)

    return configure


def _matrix_options() -> Configure:
    from connectors.matrix.cli import cross_sign, device, setup
    from connectors.matrix.verification import cli as verify

    def configure(matrix_sub: Any, config_help: str) -> None:
        said = "register the bot, create its room, print the config"
        setup.configure_parser(matrix_sub.add_parser("setup", help=said))
        device.configure(matrix_sub, config_help)
        verify.configure(matrix_sub, config_help)
        cross_sign.configure(matrix_sub, config_help)

    return configure


class _Version(argparse.Action):
    """``--version``: the build, read only when asked (a checkout's commit runs git)."""

    def __call__(self, parser: argparse.ArgumentParser, *_: object) -> None:
        from bot import build

        print(f"{parser.prog} {build.current().words}")
        parser.exit()


def typed(words: Sequence[str]) -> str | None:
    """The command typed, when it is one of the command line's own (``""`` for
    ``--version`` alone, which needs none); else ``None`` (no command, ``--help``, a typo: every
    command's options are loaded to say so)."""
    rest = past_config(list(words))
    if rest and rest[0] in COMMANDS:
        return rest[0]
    return "" if rest == ["--version"] else None

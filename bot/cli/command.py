"""The ``fleetwarden`` command. The only place in Fleetwarden that may exit the process.

Exit status: 0 clean stop; 1 a failure while running; 2 bad configuration or usage;
3 another Fleetwarden already holds the state directory.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, cast

import bot.cli.accounts as accounts_cli
import bot.cli.hosts as hosts_cli
import bot.cli.init.command as init_cli
import bot.cli.shell as shell_cli
import bot.cli.status.command as status_cli
import bot.cli.tasks.command as tasks_cli
from bot import build
from bot.app.lock import AlreadyRunning
from bot.app.logs import setup_logging
from bot.cli.parsing import Parser, add_first_config, parse
from bot.cli.summary import layout, oauth_servers, online, specs, summary
from bot.config import CONFIG_ENV_VAR, Config, ConfigError, Offered, load_config
from bot.config.checks.problems import in_line_order
from connectors.errors import ConnectorError, ConnectorSetupError
from connectors.matrix.cli import cross_sign as cross_sign_cli
from connectors.matrix.cli import device as device_cli
from connectors.matrix.cli import setup as matrix_setup
from connectors.matrix.verification import cli as verify_cli
from fleet.connections import openfiles
from fleet.errors import FleetwardenError
from fleet.hosts.workdirs import HostAgent
from fleet.hosts.workdirs import config_problems as host_workdir_problems
from fleet.runtimes import default_registry
from fleet.sandbox.schema import resolution_problems
from fleet.timing.clock import SystemClock

if TYPE_CHECKING:
    from bot.app.lifecycle import App

log = logging.getLogger(__name__)
EXIT_OK, EXIT_FAILURE, EXIT_CONFIG, EXIT_LOCKED = 0, 1, 2, 3


def _parser() -> Parser:
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
    accounts_cli.configure_parser(
        sub.add_parser("accounts", help="log in an account, or check the accounts' credentials"),
        config_help,
    )
    hosts_cli.configure_parser(
        sub.add_parser("hosts", help="trust a host's key, or check every host"), config_help
    )
    status_cli.configure_parser(
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
    tasks_cli.configure_parser(
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
    init_cli.configure_parser(
        sub.add_parser(
            "init",
            help="write a commented config and roster from a preset (solo, pair, forge, pipeline)",
            description="Write fleetwarden.yaml and roster.yaml into DIR from a preset, ready "
            "for check-config and run; nothing existing is overwritten.",
        )
    )
    shell_cli.configure(sub)
    matrix = sub.add_parser("matrix", help="Matrix homeserver helpers")
    matrix_sub = cast(  # a Parser's, whose helpers take any argument parser's
        "argparse._SubParsersAction[argparse.ArgumentParser]",
        matrix.add_subparsers(dest="matrix_command", metavar="COMMAND", required=True),
    )
    matrix_setup.configure_parser(
        matrix_sub.add_parser("setup", help="register the bot, create its room, print the config")
    )
    device_cli.configure(matrix_sub, config_help)
    verify_cli.configure(matrix_sub, config_help)
    cross_sign_cli.configure(matrix_sub, config_help)
    return parser


class _Version(argparse.Action):
    """``--version``: the build, read only when asked (a checkout's commit runs git)."""

    def __call__(self, parser: argparse.ArgumentParser, *_: object) -> None:
        print(f"{parser.prog} {build.current().words}")
        parser.exit()


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point of the console script."""
    words = sys.argv[1:] if argv is None else list(argv)
    if shell_cli.takes(words):  # a chat verb, for the running orchestrator
        sys.exit(shell_cli.main(words, dict(os.environ)))
    args = parse(_parser(), argv)
    environ = dict(os.environ)
    if args.command == "init":
        sys.exit(init_cli.main(args))
    if args.command == "matrix" and args.matrix_command == "setup":
        sys.exit(matrix_setup.main(args, environ))
    if args.command == "run":  # judged before it is read, then read by its real path alone
        args.config = _own_config(args.config, environ)
    try:
        config = load_config(
            args.config,
            environ,
            offered=Offered(default_registry().names(), ("subprocess", "tmux")),
            # `accounts login` makes what the check would miss; `accounts check` says more.
            # `status` only reads the running orchestrator's dashboard: no secret of its own;
            # `tasks` reads the ledger, whose password ledger_location asks for alone.
            credentials=args.command not in ("accounts", "status", "tasks"),
        )
    except ConfigError as exc:
        print(f"fleetwarden: configuration error:\n{exc}", file=sys.stderr)
        sys.exit(EXIT_CONFIG)
    if args.command == "check-config":
        errors, warnings = resolution_problems(
            (spec.name, spec.egress_allow) for spec in specs(config) if spec.egress == "locked"
        )
        errors += layout(config).problems
        errors += host_workdir_problems(
            config.hosts,
            (HostAgent(s.name, s.host, s.workdir, s.sandbox != "none") for s in specs(config)),
        )
        # Deferred: the forges' clients are only needed here.
        from bot.cli.config_check import located, offline_problems, online_problems

        shown = str(args.config or environ.get(CONFIG_ENV_VAR) or config.source)
        errors += located(config, shown, offline_problems(config))
        if args.online and (
            config.repos or config.forges or oauth_servers(config) or config.slack or config.mcp
        ):
            with tempfile.TemporaryDirectory(prefix="fleetwarden-check-") as scratch:
                found = asyncio.run(online_problems(config, environ, Path(scratch)))
            errors += [line for line in located(config, shown, found) if line not in errors]
        if errors:
            print("fleetwarden: configuration error:", file=sys.stderr)
            print("\n".join(f"  {line}" for line in in_line_order(errors)), file=sys.stderr)
            sys.exit(EXIT_CONFIG)
        print(summary(config, warnings) + online(config, asked=args.online))
        sys.exit(EXIT_OK)
    if args.command == "accounts":
        sys.exit(accounts_cli.main(args, config, environ))
    if args.command == "hosts":
        sys.exit(hosts_cli.main(args, config, environ))
    if args.command == "status":
        sys.exit(status_cli.main(args, config, environ))
    if args.command == "tasks":
        sys.exit(tasks_cli.main(args, config, environ))
    if args.command == "matrix":
        sys.exit(_matrix_device(args, config, environ))
    sys.exit(_run(config, environ))


def _matrix_device(args: argparse.Namespace, config: Config, environ: Mapping[str, str]) -> int:
    """``matrix device`` / ``matrix trust`` (on the state dir) / ``matrix cross-sign`` /
    ``matrix verify`` (beside the running bot)."""
    if config.matrix is None:
        print("fleetwarden: the config has no connectors.matrix section", file=sys.stderr)
        return EXIT_CONFIG
    try:
        if args.matrix_command == "verify":
            print(verify_cli.main(args, config.state_dir))
        elif args.matrix_command == "trust":
            print(device_cli.record_trust(config.state_dir, args.user, args.device, args.key))
        elif args.matrix_command == "cross-sign":
            print(
                cross_sign_cli.run(
                    config.matrix,
                    config.state_dir,
                    environ,
                    reset=args.reset,
                    password_env=args.password_env,
                )
            )
        else:
            passphrase = config.matrix.store_passphrase_env
            key = environ.get(passphrase, "") if passphrase else "DEFAULT_KEY"
            print(device_cli.describe_device(config.matrix, config.state_dir, key))
            print(cross_sign_cli.status(config.matrix, config.state_dir, environ))
    except (ValueError, ConnectorError) as exc:
        print(f"fleetwarden: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    return EXIT_OK


async def _reload(app: App) -> None:
    """Apply the config file again (SIGHUP); what changed, or why nothing did, is logged."""
    from bot.commands.errors import CommandError
    from bot.render import fleet as render

    if app.config.source is None:
        log.warning("SIGHUP: there is no config file to reload (Fleetwarden runs on its defaults)")
        return
    try:
        diff = await app.reload_config()
    except CommandError as exc:
        log.error("SIGHUP: %s", exc)
    except Exception:
        log.exception("SIGHUP: the config could not be reloaded")
    else:
        log.info("SIGHUP: config reloaded: %s", render.roster_diff(diff).replace("\n", " "))


def _own_config(named: Path | None, environ: Mapping[str, str]) -> Path | None:
    """The config ``run`` was named, as its real path, or the exit when another uid could
    swap it."""
    from bot.app.own_files import check_config_path

    if named is None and not environ.get(CONFIG_ENV_VAR):
        return None
    try:
        return check_config_path(named or Path(environ[CONFIG_ENV_VAR]))
    except (FleetwardenError, OSError) as exc:
        print(f"fleetwarden: {exc}", file=sys.stderr)
        sys.exit(EXIT_CONFIG)


def _run(config: Config, environ: Mapping[str, str]) -> int:
    from bot.app import assembly as wiring
    from bot.app.lifecycle import App
    from bot.app.own_files import refusal

    if (refused := refusal(config, environ)) is not None:  # before the log file is made
        print(f"fleetwarden: {refused}", file=sys.stderr)
        return EXIT_CONFIG
    config = config.at_real_state_dir()  # judged ours, links on the way and all
    redactor = wiring.redactor(config, environ)  # one for the log file and the chat services
    setup_logging(config.log_level, config.state_dir / "fleetwarden.log", redactor)
    # Process-wide, so here: the loopback servers' connection caps follow the new limit.
    openfiles.raise_limit()

    async def serve() -> bool:
        app = App(config, clock=SystemClock(), environ=environ, redactor=redactor)
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, app.request_stop)
        reloads: set[asyncio.Task[None]] = set()

        def reload() -> None:  # SIGHUP, as `systemctl reload` sends: `roster reload`
            task = asyncio.create_task(_reload(app))
            reloads.add(task)
            task.add_done_callback(reloads.discard)

        loop.add_signal_handler(signal.SIGHUP, reload)
        await app.run()
        if config.console is not None and app.left_running is not None:
            print(app.left_running, flush=True)  # whoever quits at the console reads it
        return app.stepped_down

    try:
        # The loop is made whole before a Ctrl-C can land: one that interrupts its making
        # leaves a half-built loop whose finalizer prints a traceback. (Entering a Runner
        # makes its loop: so before it, not inside.)
        runner = asyncio.Runner()
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
        try:
            runner.get_loop()
        finally:
            signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
        with runner:
            stepped_down = runner.run(serve())
        if stepped_down:
            print(
                "fleetwarden: another orchestrator took over the ledger's lease; this one "
                "stepped down (started again, it waits as standby)",
                file=sys.stderr,
            )
            return EXIT_FAILURE
    except AlreadyRunning as exc:
        print(f"fleetwarden: {exc}", file=sys.stderr)
        return EXIT_LOCKED
    except ConnectorSetupError as exc:  # a setting to change, here or at the service
        print(f"fleetwarden: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    except FleetwardenError as exc:
        print(f"fleetwarden: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    except KeyboardInterrupt:
        return EXIT_OK
    return EXIT_OK

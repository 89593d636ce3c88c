"""The ``fleetwarden`` command. The only place in Fleetwarden that may exit the process.

Exit status: 0 clean stop; 1 a failure while running; 2 bad configuration or usage;
3 another Fleetwarden already holds the state directory.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import logging
import os
import signal
import sys
import tempfile
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bot.cli.generated import save as save_generated
from bot.cli.parser import command_line, typed
from bot.cli.parsing import parse
from bot.cli.patterns import loaded as keep_no_new_patterns
from bot.cli.verbs.words import takes

if TYPE_CHECKING:
    from bot.app.lifecycle import App
    from bot.config import Config

log = logging.getLogger(__name__)
EXIT_OK, EXIT_FAILURE, EXIT_CONFIG, EXIT_LOCKED = 0, 1, 2, 3


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point of the console script. Each command loads what it needs, when it runs."""
    words = sys.argv[1:] if argv is None else list(argv)
    if takes(words):  # a chat verb, for the running orchestrator
        from bot.cli.verbs.shell import main as shell

        sys.exit(_ran(shell, words, dict(os.environ)))
    args = parse(command_line(typed(words)), argv)
    environ = dict(os.environ)
    if args.command == "init":
        from bot.cli.init.command import main as init

        sys.exit(_ran(init, args))
    if args.command == "matrix" and args.matrix_command == "setup":
        from connectors.matrix.cli.setup import main as setup

        sys.exit(_ran(setup, args, environ))
    if args.command == "run":  # judged before it is read, then read by its real path alone
        args.config = _own_config(args.config, environ)
    config = _config(args, environ)
    if args.command == "check-config":
        sys.exit(_ran(_check, args, config, environ))
    if args.command == "accounts":
        from bot.cli.accounts import main as accounts

        sys.exit(_ran(accounts, args, config, environ))
    if args.command == "hosts":
        from bot.cli.hosts import main as hosts

        sys.exit(_ran(hosts, args, config, environ))
    if args.command == "status":
        from bot.cli.status.command import main as status

        sys.exit(_ran(status, args, config, environ))
    if args.command == "tasks":
        from bot.cli.tasks.command import main as tasks

        sys.exit(_ran(tasks, args, config, environ))
    if args.command == "matrix":
        sys.exit(_ran(_matrix_device, args, config, environ))
    sys.exit(_run(config, environ))


def loaded() -> None:
    """The command's modules are loaded: the cyclic garbage collector, which the console
    script turns off while they load (:func:`bot.cli.main`: they make a great many objects
    and free almost none, and each of its passes would walk them all), is turned on again,
    with what they made kept out of its passes for good (``gc.freeze``). A no-op where the
    collector was on (the command run in another program's process). What the data
    classes generated and the patterns compiled are kept for the next start
    (:func:`bot.cli.generated.save`, :func:`bot.cli.patterns.loaded`)."""
    if not gc.isenabled():
        gc.freeze()
        gc.enable()
    save_generated()
    keep_no_new_patterns()


def _ran(command: Callable[..., int], *args: Any) -> int:
    """``command(*args)``'s exit status, run once its modules are loaded."""
    loaded()
    return command(*args)


def _config(args: argparse.Namespace, environ: Mapping[str, str]) -> Config:
    """The config the command names, or the exit with why it is wrong."""
    from bot.config import ConfigError, Offered, load_config
    from fleet.runtimes import default_registry

    try:
        return load_config(
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


def _check(args: argparse.Namespace, config: Config, environ: Mapping[str, str]) -> int:
    """``check-config [--online]``: every problem in the config, or its summary."""
    from bot.cli.check.offline import located, offline_problems
    from bot.cli.check.summary import layout, oauth_servers, online, specs, summary
    from bot.config import CONFIG_ENV_VAR
    from bot.config.checks.problems import in_line_order
    from fleet.hosts.workdirs import HostAgent
    from fleet.hosts.workdirs import config_problems as host_workdir_problems
    from fleet.sandbox.schema import resolution_problems

    errors, warnings = resolution_problems(
        (spec.name, spec.egress_allow) for spec in specs(config) if spec.egress == "locked"
    )
    errors += layout(config).problems
    errors += host_workdir_problems(
        config.hosts,
        (HostAgent(s.name, s.host, s.workdir, s.sandbox != "none") for s in specs(config)),
    )
    shown = str(args.config or environ.get(CONFIG_ENV_VAR) or config.source)
    errors += located(config, shown, offline_problems(config))
    if args.online and (
        config.repos or config.forges or oauth_servers(config) or config.slack or config.mcp
    ):
        from bot.cli.check.online import online_problems

        with tempfile.TemporaryDirectory(prefix="fleetwarden-check-") as scratch:
            found = asyncio.run(online_problems(config, environ, Path(scratch)))
        errors += [line for line in located(config, shown, found) if line not in errors]
    if errors:
        print("fleetwarden: configuration error:", file=sys.stderr)
        print("\n".join(f"  {line}" for line in in_line_order(errors)), file=sys.stderr)
        return EXIT_CONFIG
    print(summary(config, warnings) + online(config, asked=args.online))
    return EXIT_OK


def _matrix_device(args: argparse.Namespace, config: Config, environ: Mapping[str, str]) -> int:
    """``matrix device`` / ``matrix trust`` (on the state dir) / ``matrix cross-sign`` /
    ``matrix verify`` (beside the running bot)."""
    from connectors.errors import ConnectorError
    from connectors.matrix.cli import cross_sign as cross_sign_cli
    from connectors.matrix.cli import device as device_cli
    from connectors.matrix.verification import cli as verify_cli

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
    from bot.config import CONFIG_ENV_VAR
    from fleet.errors import FleetwardenError

    if named is None and not environ.get(CONFIG_ENV_VAR):
        return None
    try:
        return check_config_path(named or Path(environ[CONFIG_ENV_VAR]))
    except (FleetwardenError, OSError) as exc:
        print(f"fleetwarden: {exc}", file=sys.stderr)
        sys.exit(EXIT_CONFIG)


def _run(config: Config, environ: Mapping[str, str]) -> int:
    from bot.app.own_files import refusal

    # Before the log file is made, and before the app's assembly and phases load: a refused
    # start costs the reading of its config and the files it names.
    if (refused := refusal(config, environ)) is not None:
        print(f"fleetwarden: {refused}", file=sys.stderr)
        return EXIT_CONFIG

    from bot.app import assembly as wiring
    from bot.app.lifecycle import App
    from bot.app.lock import AlreadyRunning
    from bot.app.logs import setup_logging
    from connectors.errors import ConnectorSetupError
    from fleet.connections import openfiles
    from fleet.errors import FleetwardenError
    from fleet.timing.clock import SystemClock

    loaded()
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

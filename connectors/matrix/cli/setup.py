"""``fleetwarden matrix setup``: the bot's account, its control room and the operator's invite.

The command line: its flags, their checks, the secrets they name, and what it prints.
:func:`~connectors.matrix.cli.setup_flow.run_setup` does the work (registering through
:mod:`~connectors.matrix.cli.synapse_admin`) and returns a :class:`SetupResult`; the
``render_*`` functions turn it into text; :func:`main` is the thin shell the CLI calls.
Request, credentials, result and errors live in :mod:`~connectors.matrix.cli.setup_types`.

The bot is never made a server admin, not even to lift its own rate limit: it runs AI
agents, and a token that can delete users and rooms is the last thing one of them should
get hold of.

Secrets come from environment variables named on the command line and are never written
anywhere; the only one ever printed is a password this command generated itself, once.
nio and aiohttp are not imported here: the CLI builds its parser from this module on
every start, ``fleetwarden run`` included.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import re
import secrets
import sys
from collections.abc import Mapping
from typing import IO, Any

import yaml

from connectors.matrix.cli.setup_flow import run_setup
from connectors.matrix.cli.setup_types import (
    DEFAULT_PASSWORD_ENV,
    Credentials,
    InviteOutcome,
    RateLimit,
    Registration,
    RoomOutcome,
    SetupRefused,
    SetupRequest,
    SetupResult,
    SetupUsageError,
)

__all__ = [
    "DEFAULT_PASSWORD_ENV",
    "EXIT_OK",
    "EXIT_REFUSED",
    "EXIT_USAGE",
    "Credentials",
    "InviteOutcome",
    "RateLimit",
    "Registration",
    "RoomOutcome",
    "SetupRefused",
    "SetupRequest",
    "SetupResult",
    "SetupUsageError",
    "configure_parser",
    "main",
    "read_credentials",
    "render_password",
    "render_report",
    "render_snippet",
    "request_from_args",
    "run_setup",
]

EXIT_OK, EXIT_REFUSED, EXIT_USAGE = 0, 1, 2
_LOCALPART = re.compile(r"[a-z0-9._=/+-]+")
_USER_ID = re.compile(r"@([a-z0-9._=/+-]+):(\S+)")
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


# --- The command line -------------------------------------------------------------------


def configure_parser(parser: argparse.ArgumentParser) -> None:
    """Add the ``matrix setup`` flags and description to ``parser``."""
    parser.description = (
        "Prepare a homeserver for Fleetwarden: register the bot (and an operator), create a "
        "private, end-to-end encrypted control room (as Element makes one) with a canonical "
        "alias, invite the operator, lift the bot's rate limit, and print the config to "
        "paste. Safe to run again: it reuses "
        "what exists. Registering users and lifting the rate limit use Synapse's admin API "
        "(--registration-secret-env or --admin-token-env). Conduit has no such API: register "
        "the accounts there first (conduit/README.md) and give neither flag; the command then "
        "logs in, creates the room and invites."
    )
    parser.epilog = (
        "What was done goes to stderr; stdout gets only the YAML for fleetwarden.yaml. Exit "
        "status: 0 done, 1 the homeserver refused or was unreachable, 2 bad usage or an "
        "unset environment variable."
    )
    add = parser.add_argument
    add(
        "--homeserver",
        required=True,
        metavar="URL",
        help="client API base URL, e.g. http://127.0.0.1:8008",
    )
    admin = parser.add_mutually_exclusive_group()
    admin.add_argument(
        "--registration-secret-env",
        metavar="VAR",
        help="variable holding Synapse's registration_shared_secret: register "
        "the users (as normal users, never server admins)",
    )
    admin.add_argument(
        "--admin-token-env",
        metavar="VAR",
        help="variable holding a Synapse server admin's access token: register "
        "the users and lift the bot's rate limit",
    )
    add(
        "--bot-user", required=True, metavar="NAME", help="the bot's user name, or its full user id"
    )
    add(
        "--bot-password-env",
        metavar="VAR",
        help="variable holding the bot's password. Default: generate one when registering, "
        f"print it once, and call the variable {DEFAULT_PASSWORD_ENV}",
    )
    operator = parser.add_mutually_exclusive_group()
    operator.add_argument(
        "--operator", metavar="@USER:SERVER", help="an existing user to invite to the room"
    )
    operator.add_argument(
        "--operator-user",
        metavar="NAME",
        help="a user to register (with --operator-password-env) and invite",
    )
    add(
        "--operator-password-env",
        metavar="VAR",
        help="variable holding the password for --operator-user",
    )
    add(
        "--room-alias",
        default="fleetwarden",
        metavar="NAME",
        help="the room's alias is #NAME:server (default: fleetwarden)",
    )
    add(
        "--room-name",
        default="Fleetwarden",
        metavar="TEXT",
        help="the room's name when it is created (default: Fleetwarden)",
    )


def request_from_args(args: argparse.Namespace) -> SetupRequest:
    """Check the flags together; raises :class:`SetupUsageError`."""
    homeserver = str(args.homeserver).rstrip("/")
    if not re.fullmatch(r"https?://[^\s/]+(/\S*)?", homeserver):
        raise SetupUsageError(f"--homeserver: expected an http(s):// URL, got {homeserver!r}")
    for name in (
        "registration_secret_env",
        "admin_token_env",
        "bot_password_env",
        "operator_password_env",
    ):
        value = getattr(args, name)
        if value is not None and not _ENV_NAME.fullmatch(value):
            raise SetupUsageError(
                f"--{name.replace('_', '-')}: expected the name of an environment variable, "
                "not a secret"
            )
    bot_localpart, bot_user_id = _user_arg("--bot-user", args.bot_user)
    registers = args.registration_secret_env is not None or args.admin_token_env is not None
    if not registers and args.bot_password_env is None:
        raise SetupUsageError(
            "--bot-password-env is required without --registration-secret-env or "
            "--admin-token-env (the bot's account must exist already)"
        )
    if args.operator is not None and not _USER_ID.fullmatch(args.operator):
        raise SetupUsageError(
            f"--operator: expected a user id like @alice:example.org, got {args.operator!r}"
        )
    operator_localpart = None
    if args.operator_user is not None:
        operator_localpart, _ = _user_arg("--operator-user", args.operator_user)
        if args.operator_password_env is None:
            raise SetupUsageError("--operator-user needs --operator-password-env")
        if not registers:
            raise SetupUsageError(
                "--operator-user needs --registration-secret-env or --admin-token-env to "
                "register the user; to invite an existing user, use --operator @user:server"
            )
    elif args.operator_password_env is not None:
        raise SetupUsageError("--operator-password-env goes with --operator-user")
    if not re.fullmatch(r"[^\s:#]+", args.room_alias):
        raise SetupUsageError(f"--room-alias: expected a name like ops, got {args.room_alias!r}")
    return SetupRequest(
        homeserver=homeserver,
        bot_localpart=bot_localpart,
        bot_user_id=bot_user_id,
        bot_password_env=args.bot_password_env,
        registration_secret_env=args.registration_secret_env,
        admin_token_env=args.admin_token_env,
        operator=args.operator,
        operator_localpart=operator_localpart,
        operator_password_env=args.operator_password_env,
        room_alias=args.room_alias,
        room_name=args.room_name,
    )


def _user_arg(flag: str, value: str) -> tuple[str, str | None]:
    """(localpart, full user id or None) from a user name or a full user id."""
    match = _USER_ID.fullmatch(value)
    if match is not None:
        return match.group(1), value
    if _LOCALPART.fullmatch(value):
        return value, None
    raise SetupUsageError(
        f"{flag}: expected a lowercase user name (a-z 0-9 ._=/+-) or a user id "
        f"like @fleetwarden:example.org, got {value!r}"
    )


def read_credentials(request: SetupRequest, environ: Mapping[str, str]) -> Credentials:
    """The secrets the request names; the bot's password is generated when none is named."""

    def need(name: str | None, what: str) -> str | None:
        if name is None:
            return None
        if not environ.get(name):
            raise SetupUsageError(f"environment variable {name} is not set (it should hold {what})")
        return environ[name]

    bot_password = need(request.bot_password_env, "the bot's password")
    return Credentials(
        bot_password=bot_password or secrets.token_urlsafe(24),
        password_generated=bot_password is None,
        registration_secret=need(
            request.registration_secret_env, "Synapse's registration_shared_secret"
        ),
        admin_token=need(request.admin_token_env, "a Synapse server admin's access token"),
        operator_password=need(request.operator_password_env, "the operator's password"),
    )


def main(
    args: argparse.Namespace,
    environ: Mapping[str, str],
    out: IO[str] | None = None,
    err: IO[str] | None = None,
) -> int:
    """Run ``matrix setup`` and return the exit status. The report goes to ``err``; ``out``
    gets only the YAML snippet, so ``> matrix.yaml`` captures just the config."""
    out = out if out is not None else sys.stdout
    err = err if err is not None else sys.stderr
    # nio logs every unexpected reply itself; our own messages say what went wrong.
    logging.getLogger("nio").setLevel(logging.CRITICAL)
    generated: str | None = None
    try:
        request = request_from_args(args)
        credentials = read_credentials(request, environ)
        generated = credentials.bot_password if credentials.password_generated else None
        result = asyncio.run(run_setup(request, credentials))
    except SetupUsageError as exc:
        print(f"fleetwarden matrix setup: {exc}", file=err)
        return EXIT_USAGE
    except SetupRefused as exc:
        print(f"fleetwarden matrix setup: {exc}", file=err)
        if exc.bot_registered and generated is not None:
            print(render_password(generated, DEFAULT_PASSWORD_ENV), file=err)
        return EXIT_REFUSED
    except KeyboardInterrupt:
        print("fleetwarden matrix setup: interrupted", file=err)
        return EXIT_REFUSED
    print(render_report(result), file=err)
    if result.generated_password is not None:
        print(render_password(result.generated_password, result.password_env), file=err)
    print(render_snippet(result), file=out)
    return EXIT_OK


# --- Rendering --------------------------------------------------------------------------

_SAID = {
    "registered": "registered now (a normal user, not a server admin)",
    "existing": "already registered",
    "not registered": "logged in (not registered by this command)",
    "created": "created (private, end-to-end encrypted)",
}


def render_report(result: SetupResult) -> str:
    """What exists now and what this run did about it, one line per part."""
    lines = [
        f"Matrix setup on {result.homeserver}",
        f"  bot         {result.bot_user_id}: {_SAID[result.bot]}",
        f"  room        {result.room_alias} = {result.room_id}: "
        + ("already exists" if result.room == "existing" else _SAID[result.room]),
    ]
    if result.operator_user_id is not None:
        said = "" if result.operator == "not registered" else f"{_SAID[result.operator or '']}, "
        lines.append(f"  operator    {result.operator_user_id}: {said}{result.invite}")
    lines.append(f"  rate limit  {result.rate_limit}")
    lines.extend(f"  note: {note}" for note in result.notes)
    return "\n".join(lines)


def render_password(password: str, env_name: str) -> str:
    """The only time a generated password is shown, with what to do with it."""
    return (
        "\nThe bot's password was generated; it is shown only now and stored nowhere. Keep it\n"
        "in a password manager and give it to Fleetwarden in an environment variable:\n"
        f"\n    export {env_name}='{password}'\n"
    )


def render_snippet(result: SetupResult) -> str:
    """The ``connectors.matrix`` and ``operators`` config, naming env vars, never secrets."""
    matrix = {
        "homeserver": result.homeserver,
        "user_id": result.bot_user_id,
        "password_env": result.password_env,
        "rooms": [result.room_alias],
    }
    document: dict[str, Any] = {"connectors": {"matrix": matrix}}
    if result.operator_user_id is not None:
        document["operators"] = [
            {"id": result.operator_user_id, "role": "admin", "connector": "matrix"}
        ]
    body = yaml.safe_dump(document, sort_keys=False, default_flow_style=False)
    return f"# For fleetwarden.yaml (from `fleetwarden matrix setup`)\n{body}"

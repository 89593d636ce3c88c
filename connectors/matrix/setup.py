"""``fleetwarden matrix setup``: the bot's account, its control room and the operator's invite.

Every step looks before it acts, so running it again reuses what exists:

1. register the bot (and optionally an operator) as normal users through Synapse's admin
   API: shared-secret ``/_synapse/admin/v1/register``, or ``PUT /_synapse/admin/v2/users``
   with an admin token. Without either (Conduit, or accounts made by hand) nothing is
   registered and the bot's account must exist;
2. log in as the bot (matrix-nio), resolve ``#<alias>:<server>`` or create a private,
   unencrypted room with that canonical alias, and invite the operator;
3. with an admin token, lift the bot's rate limit (``override_ratelimit``).

The bot is never made a server admin, not even to lift its own rate limit: it runs AI
agents, and a token that can delete users and rooms is the last thing one of them should
get hold of.

:func:`run_setup` does the work and returns a :class:`SetupResult`; the ``render_*``
functions turn it into text; :func:`main` is the thin shell the CLI calls. Secrets come
from environment variables named on the command line and are never written anywhere; the
only one ever printed is a password this command generated itself, once.

nio and aiohttp are imported where used: the CLI builds its parser from this module on
every start, ``fleetwarden run`` included.

    FleetwardenError
    ├── SetupUsageError        bad flags or a missing environment variable (exit 2)
    └── ConnectorError
        └── SetupRefused       the homeserver refused a step or was unreachable (exit 1)
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import hmac
import json
import logging
import re
import secrets
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import IO, TYPE_CHECKING, Any, Literal
from urllib.parse import quote

import yaml

from connectors.errors import ConnectorError
from fleet.errors import FleetwardenError

if TYPE_CHECKING:
    import aiohttp

EXIT_OK, EXIT_REFUSED, EXIT_USAGE = 0, 1, 2
DEFAULT_PASSWORD_ENV = "FLEETWARDEN_MATRIX_PASSWORD"
_LOCALPART = re.compile(r"[a-z0-9._=/+-]+")
_USER_ID = re.compile(r"@([a-z0-9._=/+-]+):(\S+)")
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_TIMEOUT_SECONDS = 30.0
_NO_ENCRYPTION_STATE = [  # guests out; deliberately no m.room.encryption event
    {"type": "m.room.guest_access", "state_key": "", "content": {"guest_access": "forbidden"}},
]

Registration = Literal["registered", "existing", "not registered"]
RoomOutcome = Literal["created", "existing"]
InviteOutcome = Literal["invited", "already invited", "already joined"]
RateLimit = Literal["lifted", "already lifted", "not changed"]


class SetupUsageError(FleetwardenError):
    """Bad flags, or an environment variable they name is unset."""


class SetupRefused(ConnectorError):
    """The homeserver refused a step (``errcode`` says how) or could not be reached.

    ``bot_registered`` is true when this run had already created the bot's account, so a
    generated password must still be shown: the account exists with it now.
    """

    def __init__(self, message: str, errcode: str = "") -> None:
        super().__init__(message)
        self.errcode = errcode
        self.bot_registered = False


@dataclass(frozen=True)
class SetupRequest:
    """What the operator asked for, checked. Secrets are named here, not held."""

    homeserver: str
    bot_localpart: str
    bot_user_id: str | None  # when --bot-user was a full user id
    bot_password_env: str | None
    registration_secret_env: str | None = None
    admin_token_env: str | None = None
    operator: str | None = None  # an existing user, only invited
    operator_localpart: str | None = None  # a user to register, then invite
    operator_password_env: str | None = None
    room_alias: str = "fleetwarden"
    room_name: str = "Fleetwarden"


@dataclass(frozen=True)
class Credentials:
    """The secret values, read from the environment (or generated)."""

    bot_password: str = field(repr=False)
    password_generated: bool
    registration_secret: str | None = field(default=None, repr=False)
    admin_token: str | None = field(default=None, repr=False)
    operator_password: str | None = field(default=None, repr=False)


@dataclass(frozen=True)
class SetupResult:
    """What exists on the homeserver now, and what this run did about each part."""

    homeserver: str
    bot_user_id: str
    bot: Registration
    password_env: str
    room_alias: str
    room_id: str
    room: RoomOutcome
    rate_limit: RateLimit
    operator_user_id: str | None = None
    operator: Registration | None = None
    invite: InviteOutcome | None = None
    generated_password: str | None = field(default=None, repr=False)
    notes: tuple[str, ...] = ()


# --- The command line -------------------------------------------------------------------


def configure_parser(parser: argparse.ArgumentParser) -> None:
    """Add the ``matrix setup`` flags and description to ``parser``."""
    parser.description = (
        "Prepare a homeserver for Fleetwarden: register the bot (and an operator), create a "
        "private, unencrypted control room with a canonical alias, invite the operator, lift "
        "the bot's rate limit, and print the config to paste. Safe to run again: it reuses "
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
    "created": "created (private, unencrypted)",
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


# --- The work ---------------------------------------------------------------------------


async def run_setup(request: SetupRequest, credentials: Credentials) -> SetupResult:
    """Do every step that is not done yet. Raises :class:`SetupRefused`, or
    :class:`SetupUsageError` when the bot exists and its password was not given."""
    import aiohttp

    registered_bot = False
    try:
        timeout = aiohttp.ClientTimeout(total=_TIMEOUT_SECONDS)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            api = _Api(session, request.homeserver)
            await api.call("GET", "/_matrix/client/versions")
            bot = await _register(
                api,
                request,
                credentials,
                request.bot_localpart,
                request.bot_user_id,
                credentials.bot_password,
            )
            registered_bot = bot == "registered"
            if bot == "existing" and credentials.password_generated:
                raise SetupUsageError(
                    f"the bot's account {request.bot_user_id or request.bot_localpart} exists "
                    "already: pass --bot-password-env naming the variable that holds its "
                    f"password (e.g. {DEFAULT_PASSWORD_ENV})"
                )
            return await _as_bot(api, request, credentials, bot)
    except SetupRefused as exc:
        exc.bot_registered = registered_bot
        raise
    except (aiohttp.ClientError, OSError, TimeoutError) as exc:
        refused = SetupRefused(f"cannot reach {request.homeserver}: {exc or type(exc).__name__}")
        refused.bot_registered = registered_bot
        raise refused from None


async def _register(
    api: _Api,
    request: SetupRequest,
    credentials: Credentials,
    localpart: str,
    user_id: str | None,
    password: str,
) -> Registration:
    """Register a normal user with whatever admin credential was given, unless it exists."""
    secret, token = credentials.registration_secret, credentials.admin_token
    try:
        if secret is not None:
            return await api.register_shared_secret(secret, localpart, password)
        if token is not None:
            return await api.register_with_token(token, localpart, user_id, password)
    except SetupRefused as exc:
        var = request.registration_secret_env or request.admin_token_env
        if exc.errcode in ("M_UNKNOWN_TOKEN", "M_FORBIDDEN") or "HMAC" in str(exc):
            raise SetupRefused(f"{exc} (check ${var})", exc.errcode) from None
        raise
    return "not registered"


async def _as_bot(
    api: _Api, request: SetupRequest, credentials: Credentials, bot: Registration
) -> SetupResult:
    """Log in as the bot, then the room, the operator and the rate limit; log out."""
    from nio import AsyncClient, AsyncClientConfig, LoginResponse

    # Fail on a dropped connection rather than nio's endless retrying; wait out a few 429s.
    config = AsyncClientConfig(
        max_limit_exceeded=3, max_timeouts=0, request_timeout=_TIMEOUT_SECONDS
    )
    client = AsyncClient(request.homeserver, request.bot_localpart, config=config)
    try:
        login = await client.login(credentials.bot_password, device_name="fleetwarden setup")
        if not isinstance(login, LoginResponse):
            hint = f" (does ${request.bot_password_env} hold its password?)"
            raise SetupRefused(
                f"cannot log in as {request.bot_user_id or request.bot_localpart}: "
                f"{_nio_error(login)}{hint if request.bot_password_env else ''}",
                str(login.status_code),
            )
        try:
            return await _prepare(api, client, request, credentials, bot, str(login.user_id))
        finally:
            await client.logout()  # this session was only for the setup
    finally:
        await client.close()


async def _prepare(
    api: _Api,
    client: Any,
    request: SetupRequest,
    credentials: Credentials,
    bot: Registration,
    bot_user_id: str,
) -> SetupResult:
    if request.bot_user_id is not None and bot_user_id != request.bot_user_id:
        raise SetupRefused(
            f"--bot-user is {request.bot_user_id}, but the homeserver calls "
            f"that account {bot_user_id}"
        )
    server_name = bot_user_id.split(":", 1)[1]
    operator_user_id, operator = request.operator, None
    if request.operator_localpart is not None and credentials.operator_password is not None:
        operator_user_id = f"@{request.operator_localpart}:{server_name}"
        operator = await _register(
            api,
            request,
            credentials,
            request.operator_localpart,
            operator_user_id,
            credentials.operator_password,
        )
    alias = f"#{request.room_alias}:{server_name}"
    room_id, room = await _ensure_room(client, alias, request.room_name)
    invite = None
    if operator_user_id is not None:
        invite = await _ensure_invited(client, room_id, operator_user_id)
    notes: list[str] = []
    rate_limit = await _lift_rate_limit(api, credentials.admin_token, bot_user_id, notes)
    return SetupResult(
        homeserver=request.homeserver,
        bot_user_id=bot_user_id,
        bot=bot,
        password_env=request.bot_password_env or DEFAULT_PASSWORD_ENV,
        room_alias=alias,
        room_id=room_id,
        room=room,
        rate_limit=rate_limit,
        operator_user_id=operator_user_id,
        operator=operator or ("not registered" if operator_user_id else None),
        invite=invite,
        generated_password=credentials.bot_password if credentials.password_generated else None,
        notes=tuple(notes),
    )


async def _ensure_room(client: Any, alias: str, name: str) -> tuple[str, RoomOutcome]:
    """The room ``alias`` names, joined and unencrypted; created when the alias is free."""
    from nio import RoomCreateResponse, RoomPreset, RoomResolveAliasResponse, RoomVisibility

    for _attempt in range(2):  # a second look if someone takes the alias meanwhile
        resolved = await client.room_resolve_alias(alias)
        if isinstance(resolved, RoomResolveAliasResponse):
            room_id = str(resolved.room_id)
            joined = await client.join(room_id)
            if getattr(joined, "room_id", None) is None:
                raise SetupRefused(
                    f"{alias} is room {room_id}, which the bot cannot join "
                    f"({_nio_error(joined)}): invite the bot, or pick another --room-alias"
                )
            await _refuse_encrypted(client, room_id, alias)
            return room_id, "existing"
        if resolved.status_code != "M_NOT_FOUND":
            raise SetupRefused(f"cannot look up {alias}: {_nio_error(resolved)}")
        created = await client.room_create(
            visibility=RoomVisibility.private,
            alias=alias[1:].split(":", 1)[0],
            name=name,
            topic="Fleetwarden: command the fleet of AI coding agents here",
            preset=RoomPreset.private_chat,
            initial_state=_NO_ENCRYPTION_STATE,
        )
        if isinstance(created, RoomCreateResponse):
            await _refuse_encrypted(client, str(created.room_id), alias)
            return str(created.room_id), "created"
        if created.status_code != "M_ROOM_IN_USE":
            raise SetupRefused(f"cannot create the room {alias}: {_nio_error(created)}")
    raise SetupRefused(f"{alias} is taken but does not resolve: pick another --room-alias")


async def _refuse_encrypted(client: Any, room_id: str, alias: str) -> None:
    from nio import RoomGetStateEventResponse

    state = await client.room_get_state_event(room_id, "m.room.encryption")
    if isinstance(state, RoomGetStateEventResponse) and state.content.get("algorithm"):
        raise SetupRefused(
            f"room {alias} ({room_id}) is encrypted, and Fleetwarden serves only unencrypted "
            "rooms: pick another --room-alias (on Synapse, also check "
            "encryption_enabled_by_default_for_room_type)"
        )


async def _ensure_invited(client: Any, room_id: str, user_id: str) -> InviteOutcome:
    from nio import JoinedMembersResponse, RoomGetStateEventResponse, RoomInviteResponse

    members = await client.joined_members(room_id)
    if not isinstance(members, JoinedMembersResponse):
        raise SetupRefused(f"cannot list the members of {room_id}: {_nio_error(members)}")
    if any(member.user_id == user_id for member in members.members):
        return "already joined"
    state = await client.room_get_state_event(room_id, "m.room.member", user_id)
    if isinstance(state, RoomGetStateEventResponse) and state.content.get("membership") == "invite":
        return "already invited"
    invited = await client.room_invite(room_id, user_id)
    if not isinstance(invited, RoomInviteResponse):
        raise SetupRefused(f"cannot invite {user_id} to {room_id}: {_nio_error(invited)}")
    return "invited"


async def _lift_rate_limit(
    api: _Api, admin_token: str | None, user_id: str, notes: list[str]
) -> RateLimit:
    path = f"/_synapse/admin/v1/users/{quote(user_id)}/override_ratelimit"
    lifted = {"messages_per_second": 0, "burst_count": 0}
    if admin_token is None:
        notes.append(
            f"{user_id} keeps the server's message rate limit. On Synapse (by default 10 "
            "messages, then one per 5 s) lifting it needs a server admin's token: rerun with "
            f"--admin-token-env, or POST {json.dumps(lifted)} to "
            f"/_synapse/admin/v1/users/{user_id}/override_ratelimit as an admin."
        )
        return "not changed"
    try:
        current = await api.call("GET", path, token=admin_token)
        if all(current.get(key) == 0 for key in lifted):
            return "already lifted"
        await api.call("POST", path, token=admin_token, body=lifted)
    except SetupRefused as exc:
        notes.append(f"the server refused to lift {user_id}'s rate limit: {exc}")
        return "not changed"
    return "lifted"


class _Api:
    """JSON over HTTP for what nio lacks (Synapse's admin API); any non-2xx answer
    raises :class:`SetupRefused` with its Matrix error code."""

    def __init__(self, session: aiohttp.ClientSession, homeserver: str) -> None:
        self._session = session
        self._base = homeserver

    async def call(
        self,
        method: str,
        path: str,
        *,
        token: str | None = None,
        body: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
        url = self._base + path
        async with self._session.request(method, url, json=body, headers=headers) as response:
            text = await response.text()
        try:
            reply = json.loads(text) if text else {}
        except ValueError:
            reply = None
        if not isinstance(reply, dict):
            reply = {"error": text[:200].strip()}
        if response.status < 300:
            return reply
        errcode = str(reply.get("errcode", ""))
        if response.status == 404 and errcode in ("", "M_UNRECOGNIZED") and "/_synapse/" in path:
            raise SetupRefused(
                f"{self._base} has no Synapse admin API ({method} {path}: HTTP 404). On "
                "Conduit, register the accounts first and run without --registration-secret-env"
                " and --admin-token-env (see conduit/README.md)",
                "M_UNRECOGNIZED",
            )
        detail = f"{errcode} {reply.get('error', '')}".strip()
        raise SetupRefused(f"{method} {path}: HTTP {response.status} {detail}".strip(), errcode)

    async def register_shared_secret(
        self, secret: str, localpart: str, password: str
    ) -> Registration:
        path = "/_synapse/admin/v1/register"
        nonce = _text(await self.call("GET", path), "nonce")
        mac = hmac.new(secret.encode(), digestmod=hashlib.sha1)
        mac.update(b"\0".join([nonce.encode(), localpart.encode(), password.encode(), b"notadmin"]))
        body = {
            "nonce": nonce,
            "username": localpart,
            "password": password,
            "admin": False,
            "mac": mac.hexdigest(),
        }
        try:
            reply = await self.call("POST", path, body=body)
        except SetupRefused as exc:
            if exc.errcode == "M_USER_IN_USE":
                return "existing"
            raise
        # Registering logs the user in; that session is of no use to anyone: end it.
        await self.call("POST", "/_matrix/client/v3/logout", token=_text(reply, "access_token"))
        return "registered"

    async def register_with_token(
        self, token: str, localpart: str, user_id: str | None, password: str
    ) -> Registration:
        if user_id is None:  # the server name is the admin's own
            whoami = await self.call("GET", "/_matrix/client/v3/account/whoami", token=token)
            user_id = f"@{localpart}:{_text(whoami, 'user_id').split(':', 1)[1]}"
        path = f"/_synapse/admin/v2/users/{quote(user_id)}"
        try:
            await self.call("GET", path, token=token)
            return "existing"  # left alone: a PUT would reset its password
        except SetupRefused as exc:
            if exc.errcode != "M_NOT_FOUND":
                raise
        await self.call("PUT", path, token=token, body={"password": password, "admin": False})
        return "registered"


def _text(reply: Mapping[str, Any], key: str) -> str:
    value = reply.get(key)
    if not isinstance(value, str):
        raise SetupRefused(
            f"unexpected reply from the homeserver: no {key!r} among {sorted(reply)}"
        )
    return value


def _nio_error(response: Any) -> str:
    parts = (getattr(response, "status_code", None), getattr(response, "message", None))
    return " ".join(str(part) for part in parts if part) or type(response).__name__

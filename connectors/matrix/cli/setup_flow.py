"""The work of ``fleetwarden matrix setup``. Every step looks before it acts, so running
it again reuses what exists:

1. register the bot (and optionally an operator) as normal users through Synapse's admin
   API (:mod:`~connectors.matrix.cli.synapse_admin`): shared-secret registration, or an admin
   token. Without either (Conduit, or accounts made by hand) nothing is registered and the
   bot's account must exist;
2. log in as the bot (matrix-nio), resolve ``#<alias>:<server>`` or create a private,
   end-to-end encrypted room with that canonical alias (as Element makes them), and invite
   the operator;
3. with an admin token, lift the bot's rate limit (``override_ratelimit``).

nio and aiohttp are imported where used: the CLI imports this module on every start.
"""

from __future__ import annotations

import json
from typing import Any

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
from connectors.matrix.cli.synapse_admin import RATE_LIMIT_LIFTED, SynapseAdmin

_TIMEOUT_SECONDS = 30.0
_ROOM_STATE = [  # guests out; encrypted, as Element makes a private room
    {"type": "m.room.guest_access", "state_key": "", "content": {"guest_access": "forbidden"}},
    {
        "type": "m.room.encryption",
        "state_key": "",
        "content": {"algorithm": "m.megolm.v1.aes-sha2"},
    },
]


async def run_setup(request: SetupRequest, credentials: Credentials) -> SetupResult:
    """Do every step that is not done yet. Raises :class:`SetupRefused`, or
    :class:`SetupUsageError` when the bot exists and its password was not given."""
    import aiohttp

    registered_bot = False
    try:
        timeout = aiohttp.ClientTimeout(total=_TIMEOUT_SECONDS)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            api = SynapseAdmin(session, request.homeserver)
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
    api: SynapseAdmin,
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
    api: SynapseAdmin, request: SetupRequest, credentials: Credentials, bot: Registration
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
    api: SynapseAdmin,
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
    """The room ``alias`` names, joined; created (encrypted) when the alias is free. An
    existing room is used encrypted or not: the bot serves both."""
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
            return room_id, "existing"
        if resolved.status_code != "M_NOT_FOUND":
            raise SetupRefused(f"cannot look up {alias}: {_nio_error(resolved)}")
        created = await client.room_create(
            visibility=RoomVisibility.private,
            alias=alias[1:].split(":", 1)[0],
            name=name,
            topic="Fleetwarden: command the fleet of AI coding agents here",
            preset=RoomPreset.private_chat,
            initial_state=_ROOM_STATE,
        )
        if isinstance(created, RoomCreateResponse):
            return str(created.room_id), "created"
        if created.status_code != "M_ROOM_IN_USE":
            raise SetupRefused(f"cannot create the room {alias}: {_nio_error(created)}")
    raise SetupRefused(f"{alias} is taken but does not resolve: pick another --room-alias")


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
    api: SynapseAdmin, admin_token: str | None, user_id: str, notes: list[str]
) -> RateLimit:
    if admin_token is None:
        notes.append(
            f"{user_id} keeps the server's message rate limit. On Synapse (by default 10 "
            "messages, then one per 5 s) lifting it needs a server admin's token: rerun with "
            f"--admin-token-env, or POST {json.dumps(RATE_LIMIT_LIFTED)} to "
            f"/_synapse/admin/v1/users/{user_id}/override_ratelimit as an admin."
        )
        return "not changed"
    try:
        return await api.lift_rate_limit(admin_token, user_id)
    except SetupRefused as exc:
        notes.append(f"the server refused to lift {user_id}'s rate limit: {exc}")
        return "not changed"


def _nio_error(response: Any) -> str:
    parts = (getattr(response, "status_code", None), getattr(response, "message", None))
    return " ".join(str(part) for part in parts if part) or type(response).__name__

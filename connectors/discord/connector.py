"""The Discord connector: operators command the fleet from one control channel, where each
agent gets its own thread.

discord.py owns the gateway (one connection per bot token: this process is its only
user), heartbeats, reconnects and resumes, and the REST rate limits. This module owns
the lifecycle, which messages are ours (:meth:`DiscordConnector._on_message`), and
posting: Discord markdown cut into fence-balanced parts of at most 2000 characters, with
mentions disabled and images as attachments (:mod:`.outbound`).
"""

from __future__ import annotations

import asyncio
import enum
import functools
import logging
import re
import warnings
from collections.abc import AsyncIterator, Callable, Mapping
from datetime import timedelta

import aiohttp
import yarl

from connectors.base import (
    ConnectorHealth,
    EventId,
    InboundMessage,
    OutboundMessage,
    RoomId,
    SendResult,
    ThreadId,
    UserId,
)
from connectors.discord.config import API_BASE_ENV, GATEWAY_URL_ENV, DiscordConfig
from connectors.discord.errors import explain_close, intents_refused, invite_url
from connectors.discord.outbound import Outbound, ThreadBook
from connectors.errors import ConnectorAuthError, ConnectorError, ConnectorSetupError
from connectors.inbox import Inbox, cancel_and_wait

with warnings.catch_warnings():  # discord.py imports the stdlib audioop, deprecated in 3.11+
    warnings.simplefilter("ignore", DeprecationWarning)
    import discord
    from discord import app_commands
    from discord.gateway import DiscordWebSocket

# Fleetwarden never joins voice channels: no warning about voice libraries at every start.
discord.VoiceClient.warn_nacl = discord.VoiceClient.warn_dave = False

log = logging.getLogger(__name__)

CONNECTOR = "discord"
READY_TIMEOUT_SECONDS = 60.0
"""How long start() waits for the gateway's READY (and the server's data) after login."""
MAX_RATE_LIMIT_WAIT_SECONDS = 120.0
CATCH_UP_LIMIT = 100
"""At most this many messages per channel or thread are read back."""
"""A 429 asking for a longer wait than this fails the send instead of stalling it."""


_TYPED = frozenset({discord.MessageType.default, discord.MessageType.reply})
"""Message types a person typed; the others are system messages in their name."""


def _fatal(exc: BaseException | None, application_id: int | None) -> ConnectorError:
    """Why the gateway ended for good, as the error the app reports (and exits by)."""
    if isinstance(exc, discord.PrivilegedIntentsRequired):
        return ConnectorSetupError(intents_refused(application_id))
    if isinstance(exc, discord.ConnectionClosed) and exc.code == 4004:
        return ConnectorAuthError(explain_close(exc, application_id))
    return ConnectorError(explain_close(exc, application_id))


async def _recent(
    channel: discord.TextChannel, since: int
) -> dict[int, tuple[discord.Message, discord.Member | None]]:
    """Messages after the snowflake ``since`` in ``channel`` and its live threads, each with
    its author as a member (REST messages carry no roles: the member is fetched, once)."""
    places: list[discord.TextChannel | discord.Thread] = [channel, *channel.threads]
    members: dict[int, discord.Member | None] = {}
    found: dict[int, tuple[discord.Message, discord.Member | None]] = {}
    for place in places:
        if place.last_message_id is not None and place.last_message_id <= since:
            continue
        history = place.history(
            after=discord.Object(since), limit=CATCH_UP_LIMIT, oldest_first=True
        )
        async for message in history:
            author = message.author
            if author.bot or isinstance(author, discord.Member):
                found[message.id] = (message, None)
                continue
            if author.id not in members:
                try:
                    members[author.id] = await channel.guild.fetch_member(author.id)
                except discord.NotFound:  # left the server since
                    members[author.id] = None
            found[message.id] = (message, members[author.id])
    return found


@functools.cache
def _mention(user_id: int) -> re.Pattern[str]:
    """A mention of the bot at the start of a message: ``<@id>`` or the old ``<@!id>``."""
    return re.compile(rf"\s*<@!?{user_id}>\s*")


class _State(enum.Enum):
    NEW = "not started"
    STARTING = "starting"
    RUNNING = "running"
    STOPPED = "stopped"


class Gateway(discord.Client):
    """discord.py's client with the intents and mention policy Fleetwarden needs, handing
    each message to ``deliver`` and calling ``renewed`` when a session after the first
    is ready (a new session, not a resume: the gateway replays nothing of the gap)."""

    def __init__(self, *, guild_ready_timeout: float = 2.0) -> None:
        intents = discord.Intents.none()
        intents.guilds = True  # the server, its channels and threads
        intents.guild_messages = True
        intents.message_content = True  # privileged: enabled in the developer portal
        super().__init__(
            intents=intents,
            allowed_mentions=discord.AllowedMentions.none(),
            guild_ready_timeout=guild_ready_timeout,
            max_ratelimit_timeout=MAX_RATE_LIMIT_WAIT_SECONDS,
            chunk_guilds_at_startup=False,
        )
        self.deliver: Callable[[discord.Message], None] = lambda message: None
        self.renewed: Callable[[], None] = lambda: None
        self.ready = asyncio.Event()

    async def on_ready(self) -> None:
        log.info("discord: connected as %s (%s)", self.user, getattr(self.user, "id", "?"))
        if self.ready.is_set():
            self.renewed()
        self.ready.set()

    async def on_resumed(self) -> None:
        log.info("discord: gateway session resumed")

    async def on_message(self, message: discord.Message) -> None:
        self.deliver(message)


def point_at(config: DiscordConfig, environ: Mapping[str, str]) -> tuple[str, str]:
    """Aim discord.py at the configured API base and gateway (the environment overriding
    the config), and return them. Both are class attributes in discord.py: one Discord
    connector per process, which one bot token allows anyway."""
    from connectors.discord.config import http_url, ws_url

    try:
        api_base = http_url(environ.get(API_BASE_ENV) or config.api_base)
        gateway = ws_url(environ.get(GATEWAY_URL_ENV) or config.gateway_url)
    except ValueError as exc:
        raise ConnectorSetupError(f"discord: {API_BASE_ENV} / {GATEWAY_URL_ENV}: {exc}") from None
    discord.http.Route.BASE = api_base
    DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(gateway)
    return api_base, gateway


class DiscordConnector:
    """A Discord bot serving one control channel of one server, one thread per agent."""

    def __init__(
        self,
        config: DiscordConfig,
        *,
        threads: ThreadBook,
        environ: Mapping[str, str],
        is_operator: Callable[[str, tuple[str, ...]], bool] = lambda user, groups: True,
        default_command_prefix: str = "!",
    ) -> None:
        """``is_operator(user id, groups)``: whether to acknowledge a slash command at all
        (strangers get nothing, as everywhere)."""
        self._config = config
        self._is_operator = is_operator
        self._threads = threads
        self._environ = environ
        self._prefix = config.command_prefix or default_command_prefix
        self._inbox = Inbox()
        self._client: Gateway | None = None
        self._outbound: Outbound | None = None
        self._task: asyncio.Task[None] | None = None
        self._state = _State.NEW
        self._held: list[discord.Message] | None = None
        self._catching_up: asyncio.Task[None] | None = None

    @property
    def name(self) -> str:
        return CONNECTOR

    @property
    def home_room(self) -> RoomId | None:
        return RoomId(str(self._config.channel_id))

    # --- lifecycle -------------------------------------------------------------------

    async def start(self) -> None:
        """Log in, connect to the gateway, wait for READY, check the server and channel."""
        if self._state is not _State.NEW:
            raise RuntimeError("the Discord connector starts once")
        self._state = _State.STARTING
        token = self._environ.get(self._config.token_env, "").strip()
        if not token:
            self._state = _State.STOPPED
            raise ConnectorSetupError(
                f"discord: the environment variable {self._config.token_env} "
                "(connectors.discord.token_env) is not set: set it to the bot's token "
                "(developer portal → your application → Bot → Reset Token)"
            )
        api_base, gateway = point_at(self._config, self._environ)
        client = Gateway(guild_ready_timeout=self._config.guild_ready_timeout_seconds)
        self._adopt(client)
        self._held = []
        try:
            await self._log_in(client, token, api_base)
            self._task = asyncio.create_task(self._connect(client), name="discord-gateway")
            await self._until_ready(client, gateway)
            await self._check_channel(client)
            await self._catch_up(client)
            await self._register_slash_command(client)
        except BaseException:
            await self._shut(client)
            raise
        self._serving()

    async def serve(self, client: Gateway) -> None:
        """Serve through ``client``, already logged in and connected by someone else (an
        in-process stand-in for Discord in tests), instead of :meth:`start`."""
        if self._state is not _State.NEW:
            raise RuntimeError("the Discord connector starts once")
        self._adopt(client)
        await self._check_channel(client)
        self._serving()

    def _adopt(self, client: Gateway) -> None:
        self._state = _State.STARTING
        self._client = client
        self._outbound = Outbound(client, self._config, self._threads)
        client.deliver = self._on_message
        client.renewed = self._on_new_session

    def _on_new_session(self) -> None:
        """After a new session (the old one could not be resumed), read back the gap."""
        if self._state is not _State.RUNNING or self._client is None or self._held is not None:
            return
        log.info("discord: a new gateway session; reading back what was said meanwhile")
        self._held = []
        self._catching_up = asyncio.create_task(
            self._catch_up(self._client), name="discord-catch-up"
        )

    def _serving(self) -> None:
        self._state = _State.RUNNING
        log.info(
            "discord: serving channel %s of server %s (prefix %r)",
            self._config.channel_id,
            self._config.guild_id,
            self._prefix,
        )

    async def _log_in(self, client: Gateway, token: str, api_base: str) -> None:
        try:
            await client.login(token)
        except discord.LoginFailure:
            raise ConnectorAuthError(
                f"discord: the bot token in {self._config.token_env} was rejected: copy a "
                "fresh one (developer portal → your application → Bot → Reset Token)"
            ) from None
        except (aiohttp.ClientError, OSError, discord.HTTPException) as exc:
            raise ConnectorError(f"discord: cannot reach {api_base}: {exc}") from None

    async def _connect(self, client: Gateway) -> None:
        """Run the gateway until the connector stops; a fatal close ends the inbound stream
        with the reason (the app then stops, exiting as the reason says)."""
        try:
            await client.connect(reconnect=True)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            if self._state is _State.RUNNING:
                self._inbox.fail(_fatal(exc, client.application_id))
            await client.close()  # discord.py leaves it open after some fatal closes
            raise
        finally:
            self._inbox.close()

    async def _until_ready(self, client: Gateway, gateway: str) -> None:
        assert self._task is not None
        ready = asyncio.create_task(client.ready.wait())
        try:
            done, _ = await asyncio.wait(
                {self._task, ready},
                timeout=READY_TIMEOUT_SECONDS,
                return_when=asyncio.FIRST_COMPLETED,
            )
        finally:
            ready.cancel()
        if self._task in done:
            raise _fatal(self._task.exception(), client.application_id)
        if not done:
            raise ConnectorError(
                f"discord: no READY from the gateway at {gateway} within "
                f"{READY_TIMEOUT_SECONDS:.0f} s"
            )

    async def _check_channel(self, client: Gateway) -> None:
        guild = client.get_guild(self._config.guild_id)
        invite = invite_url(client.application_id, self._config.guild_id)
        if guild is None:
            raise ConnectorSetupError(
                f"discord: the bot is not a member of server {self._config.guild_id} "
                f"(connectors.discord.guild_id): invite it with {invite}"
            )
        channel = guild.get_channel(self._config.channel_id)
        if not isinstance(channel, discord.TextChannel):
            what = "no channel" if channel is None else f"a {channel.type} channel"
            raise ConnectorSetupError(
                f"discord: server {guild.name!r} has {what} with id {self._config.channel_id} "
                "visible to the bot (connectors.discord.channel_id must be a text channel "
                f"the bot can see; give its role View Channel there, or re-invite: {invite})"
            )

    async def stop(self) -> None:
        """Close the gateway and the HTTP session. Safe to repeat."""
        if self._state is _State.STOPPED:
            return
        self._state = _State.STOPPED
        if self._client is not None:
            await self._shut(self._client)
        self._inbox.close()

    async def _shut(self, client: Gateway) -> None:
        self._state = _State.STOPPED
        if self._catching_up is not None:
            self._catching_up.cancel()
        await client.close()
        task, self._task = self._task, None
        await cancel_and_wait(task)  # its failure was explained by _until_ready or _connect

    # --- inbound ---------------------------------------------------------------------

    def _on_message(self, message: discord.Message) -> None:
        """Queue a person's message in the control channel or one of its threads (held
        back while :meth:`_catch_up` runs, to keep the order)."""
        if self._held is not None:
            self._held.append(message)
        elif (inbound := self._translate(message)) is not None:
            self._inbox.put(inbound)

    def _translate(
        self, message: discord.Message, member: discord.Member | None = None
    ) -> InboundMessage | None:
        """``message`` as an :class:`InboundMessage`, or ``None`` if it is not for us.
        ``member``: the author as a server member, when the message does not say."""
        if self._state is _State.STOPPED or message.author.bot:
            return None  # ourselves, other bots and webhooks: never commands
        if message.type not in _TYPED:
            return None  # system messages in a person's name ("started a thread NAME")
        if message.guild is None or message.guild.id != self._config.guild_id:
            return None
        channel = message.channel
        thread: ThreadId | None = None
        if isinstance(channel, discord.Thread):
            if channel.parent_id != self._config.channel_id:
                return None
            thread = ThreadId(str(channel.id))
        elif channel.id != self._config.channel_id:
            return None
        text, addressed = message.content, False
        me = self._client.user if self._client is not None else None
        if me is not None and (mention := _mention(me.id).match(text)):
            text, addressed = text[mention.end() :], True
        author = member or message.author
        roles = author.roles if isinstance(author, discord.Member) else []
        if self._outbound is not None:  # set before the gateway connects
            self._outbound.remember(message.id, channel.id)
        return InboundMessage(
            connector=CONNECTOR,
            sender=UserId(str(author.id)),
            text=text,
            room=RoomId(str(self._config.channel_id)),
            timestamp=message.created_at,
            event_id=EventId(str(message.id)),
            thread_id=thread,
            addressed=addressed,
            groups=tuple(f"role:{role.id}" for role in roles if not role.is_default()),
        )

    async def _register_slash_command(self, client: Gateway) -> None:
        """Register ``/<slash_command> command:<text>`` in the server (replacing what this
        bot registered there before). Not fatal: typed commands work without it."""
        name = self._config.slash_command
        if name is None:
            return
        tree: app_commands.CommandTree[Gateway] = app_commands.CommandTree(client)
        tree.add_command(
            app_commands.Command(
                name=name,
                description="Run a Fleetwarden command, as you would type it after the prefix",
                callback=self._on_slash,
            ),
            guild=discord.Object(self._config.guild_id),
        )
        try:
            await tree.sync(guild=discord.Object(self._config.guild_id))
        except (discord.HTTPException, aiohttp.ClientError, OSError) as exc:
            log.warning(
                "discord: could not register /%s (%s); typed commands still work. To use "
                "it, re-invite the bot with the applications.commands scope: %s",
                name,
                exc,
                invite_url(client.application_id, self._config.guild_id, slash=True),
            )

    @app_commands.describe(command="e.g. ps, or spawn demo --runtime stub")
    async def _on_slash(self, interaction: discord.Interaction, command: str) -> None:
        """A slash command: acknowledged in the channel (Discord shows who used it), then
        run exactly as the same text typed after the prefix."""
        channel = interaction.channel
        thread: ThreadId | None = None
        if isinstance(channel, discord.Thread) and channel.parent_id == self._config.channel_id:
            thread = ThreadId(str(channel.id))
        elif channel is None or channel.id != self._config.channel_id:
            await interaction.response.send_message(
                f"Fleetwarden answers in <#{self._config.channel_id}> and its agents' threads.",
                ephemeral=True,
            )
            return
        user = interaction.user
        roles = user.roles if isinstance(user, discord.Member) else []
        groups = tuple(f"role:{role.id}" for role in roles if not role.is_default())
        if self._state is not _State.RUNNING or not self._is_operator(str(user.id), groups):
            return  # strangers are never answered
        await interaction.response.send_message(f"`{command[:1990]}`")
        self._inbox.put(
            InboundMessage(
                connector=CONNECTOR,
                sender=UserId(str(user.id)),
                text=command,
                room=RoomId(str(self._config.channel_id)),
                timestamp=interaction.created_at,
                event_id=EventId(f"interaction-{interaction.id}"),
                thread_id=thread,
                addressed=True,
                groups=groups,
            )
        )

    async def _catch_up(self, client: Gateway) -> None:
        """Queue, oldest first, what people wrote in the channel and its live threads in
        the last ``catch_up_minutes`` — a new gateway session does not replay what was
        said while Fleetwarden was away. Messages already handled are dropped by the
        router (their ids are claimed in the ledger); live ones that arrive meanwhile are
        held and merged in order."""
        found: dict[int, tuple[discord.Message, discord.Member | None]] = {}
        try:
            channel = client.get_channel(self._config.channel_id)
            if isinstance(channel, discord.TextChannel) and self._config.catch_up_minutes:
                since = discord.utils.time_snowflake(
                    discord.utils.utcnow() - timedelta(minutes=self._config.catch_up_minutes)
                )
                found = await _recent(channel, since)
        except (discord.HTTPException, aiohttp.ClientError, OSError) as exc:
            log.warning("discord: could not read what was said while away: %s", exc)
        finally:
            held, self._held = self._held or [], None
        for message in held:
            found.setdefault(message.id, (message, None))
        caught = 0
        for message_id in sorted(found):
            message, member = found[message_id]
            inbound = self._translate(message, member)
            if inbound is not None:
                self._inbox.put(inbound)
                caught += 1
        if caught:
            log.info("discord: %d message(s) from the last minutes to look at", caught)

    def inbound(self) -> AsyncIterator[InboundMessage]:
        return self._inbox.messages()

    # --- outbound --------------------------------------------------------------------

    async def send(self, message: OutboundMessage) -> SendResult:
        return await self._running().send(message)

    async def open_thread(self, room: RoomId, topic: str, first_message: str) -> ThreadId:
        return await self._running().open_thread(room, topic, first_message)

    async def health(self) -> ConnectorHealth:
        client = self._client
        if self._state is not _State.RUNNING or client is None or client.is_closed():
            return ConnectorHealth(ok=False, detail=f"discord: {self._state.value}")
        if self._task is None or self._task.done():
            return ConnectorHealth(ok=False, detail="discord: the gateway connection ended")
        if not client.is_ready() or client.ws is None or not client.ws.open:
            return ConnectorHealth(ok=False, detail="discord: reconnecting to the gateway")
        latency = client.latency
        beat = f", heartbeat {latency * 1000:.0f} ms" if latency == latency else ""
        return ConnectorHealth(
            ok=True, detail=f"{client.user} in channel {self._config.channel_id}{beat}"
        )

    def _running(self) -> Outbound:
        if self._state is not _State.RUNNING or self._outbound is None:
            raise ConnectorError(f"the Discord connector is {self._state.value}")
        return self._outbound

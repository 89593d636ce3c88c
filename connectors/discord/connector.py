"""The Discord connector: operators command the fleet from one control channel, where each
agent gets its own thread.

discord.py owns the gateway (one connection per bot token: this process is its only
user), heartbeats, reconnects and resumes, and the REST rate limits (:mod:`.gateway`
configures it; :mod:`.joining` logs in and checks the server and channel). This module
owns the lifecycle and the inbound wiring: which messages, edits and reactions are ours
(:meth:`DiscordConnector._on_message`, by :mod:`.translate`), the slash command
(:mod:`.slash`), and reading back the gap after a new session (:mod:`.catch_up`), held in
order with live messages. Posting: Discord markdown cut into
fence-balanced parts of at most 2000 characters, with mentions disabled and images as
attachments, and edits of the bot's own messages (:mod:`.outbound`).
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
import warnings
from collections.abc import AsyncIterator, Callable, Mapping

import aiohttp

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
from connectors.defaults import ConnectorDefaults
from connectors.discord.catch_up import in_order, read_back
from connectors.discord.config import DiscordConfig
from connectors.discord.gateway import Gateway, fatal, point_at
from connectors.discord.joining import bot_token, check_channel, log_in, until_ready
from connectors.discord.outbound import Outbound, ThreadBook, parts
from connectors.discord.slash import SlashCommand
from connectors.discord.translate import (
    CONNECTOR,
    from_edit,
    from_message,
    from_reaction,
    reacted,
)
from connectors.errors import ConnectorError, ConnectorSetupError
from connectors.health import LinkHealth
from connectors.inbox import Inbox, cancel_and_wait
from connectors.presence import TypingKeeper
from connectors.receiving import ReceiveFailures
from fleet.timing.clock import Clock, SystemClock

with warnings.catch_warnings():  # discord.py imports the stdlib audioop, deprecated in 3.11+
    warnings.simplefilter("ignore", DeprecationWarning)
    import discord

log = logging.getLogger(__name__)

TYPING_REFRESH_SECONDS = 8.0
"""How often the typing indicator is renewed while the bot works (Discord shows it ~10 s)."""


class _State(enum.Enum):
    NEW = "not started"
    STARTING = "starting"
    RUNNING = "running"
    STOPPED = "stopped"


class DiscordConnector(ConnectorDefaults):
    """A Discord bot serving one control channel of one server, one thread per agent."""

    def __init__(
        self,
        config: DiscordConfig,
        *,
        threads: ThreadBook,
        environ: Mapping[str, str],
        is_operator: Callable[[str, tuple[str, ...]], bool] = lambda user, groups: True,
        default_command_prefix: str = "!",
        failures: ReceiveFailures | None = None,
        clock: Clock | None = None,
    ) -> None:
        """``is_operator(user id, groups)``: whether to acknowledge a slash command at all
        (strangers get nothing, as everywhere). ``failures``: where an event that cannot be
        taken is reported (the app's record). ``clock``: the app's, for the link's times."""
        self._failures = failures if failures is not None else ReceiveFailures()
        self._config = config
        self._threads = threads
        self._environ = environ
        self._prefix = config.command_prefix or default_command_prefix
        self._inbox = Inbox()
        self._link = LinkHealth(CONNECTOR, clock if clock is not None else SystemClock())
        self._client: Gateway | None = None
        self._outbound: Outbound | None = None
        self._task: asyncio.Task[None] | None = None
        self._state = _State.NEW
        self._held: list[discord.Message] | None = None
        self._held_edits: list[discord.Message] = []
        self._catching_up: asyncio.Task[None] | None = None
        self._typing = TypingKeeper(
            self._say_typing, refresh=TYPING_REFRESH_SECONDS, name=CONNECTOR
        )
        self._slash = SlashCommand(
            config,
            is_operator=is_operator,
            serving=lambda: self._state is _State.RUNNING,
            put=self._inbox.put,
        )

    @property
    def name(self) -> str:
        return CONNECTOR

    @property
    def has_threads(self) -> bool:
        return True

    @property
    def home_room(self) -> RoomId | None:
        return RoomId(str(self._config.channel_id))

    @property
    def link(self) -> LinkHealth:
        """Up at the gateway's READY or RESUMED, down when its connection closes."""
        return self._link

    # --- lifecycle -------------------------------------------------------------------

    async def start(self) -> None:
        """Log in, connect to the gateway, wait for READY, check the server and channel."""
        if self._state is not _State.NEW:
            raise RuntimeError("the Discord connector starts once")
        self._state = _State.STARTING
        try:
            token = bot_token(self._config, self._environ)
        except ConnectorSetupError:
            self._state = _State.STOPPED
            raise
        api_base, gateway = point_at(self._config, self._environ)
        client = Gateway(guild_ready_timeout=self._config.guild_ready_timeout_seconds)
        self._adopt(client)
        self._held = []
        try:
            await log_in(client, token, self._config, api_base)
            self._task = asyncio.create_task(self._connect(client), name="discord-gateway")
            await until_ready(client, self._task, gateway)
            check_channel(client, self._config)
            await self._catch_up(client)
            await self._slash.register(client)
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
        check_channel(client, self._config)
        self._serving()

    def _adopt(self, client: Gateway) -> None:
        self._state = _State.STARTING
        self._client = client
        self._outbound = Outbound(client, self._config, self._threads)
        client.deliver = self._on_message
        client.edited = self._on_edit
        client.reacted = self._on_reaction
        client.renewed = self._on_new_session
        client.link = self._link
        client.failed = lambda event_id, error: self._failures.failed(CONNECTOR, event_id, error)

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
        self._link.connected()
        log.info(
            "discord: serving channel %s of server %s (prefix %r)",
            self._config.channel_id,
            self._config.guild_id,
            self._prefix,
        )

    async def _connect(self, client: Gateway) -> None:
        """Run the gateway until the connector stops; a fatal close ends the inbound stream
        with the reason (the app then stops, exiting as the reason says)."""
        try:
            await client.connect(reconnect=True)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            if self._state is _State.RUNNING:
                self._inbox.fail(fatal(exc, client.application_id))
            await client.close()  # discord.py leaves it open after some fatal closes
            raise
        finally:
            self._inbox.close()

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
        self._link.closed()
        if self._catching_up is not None:
            self._catching_up.cancel()
        await self._typing.stop()
        await client.close()
        task, self._task = self._task, None
        await cancel_and_wait(task)  # its failure was explained by until_ready or _connect

    # --- inbound ---------------------------------------------------------------------

    def _on_message(self, message: discord.Message) -> None:
        """Queue a person's message in the control channel or one of its threads (held
        back while :meth:`_catch_up` runs, to keep the order)."""
        if self._held is not None:
            self._held.append(message)
        elif (inbound := self._translate(message)) is not None:
            self._inbox.put(inbound)

    def _on_edit(self, message: discord.Message) -> None:
        """Queue an edit of a person's message (after the catch-up, if one runs: the
        message it edits comes first)."""
        if self._held is not None:
            self._held_edits.append(message)
        elif self._state is not _State.STOPPED:
            me = self._client.user if self._client is not None else None
            inbound = from_edit(message, self._config, me=None if me is None else me.id)
            if inbound is not None:
                self._inbox.put(inbound)

    async def _on_reaction(self, reaction: discord.RawReactionActionEvent) -> None:
        """Queue a reaction a person added in the control channel or one of its threads."""
        client = self._client
        if self._state is _State.STOPPED or client is None:
            return
        if reaction.guild_id != self._config.guild_id:
            return
        channel = client.get_channel(reaction.channel_id)
        if channel is None:  # a thread discord.py does not hold (archived): ask Discord
            try:
                channel = await client.fetch_channel(reaction.channel_id)
            except (discord.HTTPException, aiohttp.ClientError, OSError) as exc:
                log.warning("discord: a reaction in %s is lost: %s", reaction.channel_id, exc)
                return
        me = client.user
        inbound = from_reaction(
            reaction,
            channel,
            self._config,
            me=None if me is None else me.id,
            now=discord.utils.utcnow(),
        )
        if inbound is not None:
            self._inbox.put(inbound)

    def _translate(
        self, message: discord.Message, member: discord.Member | None = None
    ) -> InboundMessage | None:
        """``message`` as an :class:`InboundMessage`, or ``None`` if it is not for us.
        ``member``: the author as a server member, when the message does not say."""
        if self._state is _State.STOPPED:
            return None
        me = self._client.user if self._client is not None else None
        inbound = from_message(
            message, self._config, me=None if me is None else me.id, member=member
        )
        if inbound is not None and self._outbound is not None:  # set before the gateway connects
            self._outbound.remember(message.id, message.channel.id)
        return inbound

    async def _catch_up(self, client: Gateway) -> None:
        """Queue, oldest first, what people wrote in the channel and its live threads in
        the last ``catch_up_minutes`` — a new gateway session does not replay what was
        said while Fleetwarden was away. Messages already handled are dropped by the
        router (their ids are claimed in the ledger); live ones that arrive meanwhile are
        held and merged in order. Then the reactions people added to the bot's messages of
        that span (an answer given while Fleetwarden was away); one seen live too is
        dropped by the router like a message."""
        try:
            found, reactions = await read_back(client, self._config)
        finally:
            held, self._held = self._held or [], None
        caught = 0
        for message, member in in_order(found, held):
            inbound = self._translate(message, member)
            if inbound is not None:
                self._inbox.put(inbound)
                caught += 1
        me = None if client.user is None else client.user.id
        now = discord.utils.utcnow()
        for message, emoji, member in reactions:
            answer = reacted(
                message.id, message.channel, emoji, member, self._config, me=me, now=now
            )
            if answer is not None and self._state is not _State.STOPPED:
                self._inbox.put(answer)
                caught += 1
        if caught:
            log.info("discord: %d message(s) or reaction(s) from the last minutes", caught)
        edits, self._held_edits = self._held_edits, []
        for message in edits:
            self._on_edit(message)

    def inbound(self) -> AsyncIterator[InboundMessage]:
        return self._inbox.messages()

    # --- outbound --------------------------------------------------------------------

    async def edit(
        self, room: RoomId, event_id: EventId, markdown: str, thread: ThreadId | None = None
    ) -> None:
        await self._running().edit(room, event_id, markdown, thread)

    async def send(self, message: OutboundMessage) -> SendResult:
        return await self._running().send(message)

    async def open_thread(self, room: RoomId, topic: str, first_message: str) -> ThreadId:
        return await self._running().open_thread(room, topic, first_message)

    def can_send_private(self) -> bool:
        """A Discord user can be written to alone, in a direct message."""
        return True

    async def send_private(self, user: UserId, markdown: str) -> bool:
        """``markdown`` in a direct message to ``user`` (a server member's id); ``False``
        when Discord refuses it (they take no direct messages from the bot's servers)."""
        client = self._client
        if self._state is not _State.RUNNING or client is None or not user.isdigit():
            return False
        try:
            person = client.get_user(int(user)) or await client.fetch_user(int(user))
            for text in parts(markdown):
                await person.send(text, allowed_mentions=discord.AllowedMentions.none())
        except discord.HTTPException as exc:  # 50007: cannot send messages to this user
            log.warning("discord: no direct message to %s: %s", user, exc.text or exc.status)
            return False
        return True

    def typing(
        self, room: RoomId, thread: ThreadId | None = None
    ) -> contextlib.AbstractAsyncContextManager[None]:
        # A thread is a channel of its own: the indicator shows where the answer will.
        return self._typing.typing(thread or room)

    async def _say_typing(self, channel: str, on: bool) -> None:
        if self._state is _State.RUNNING and self._outbound is not None:
            await self._outbound.say_typing(channel, on)

    def thread_link(self, room: RoomId, thread: ThreadId) -> str | None:
        """A thread is a channel of the server: its link needs only the server's id."""
        return f"https://discord.com/channels/{self._config.guild_id}/{thread}"

    def message_link(
        self, room: RoomId, event_id: EventId, thread: ThreadId | None = None
    ) -> str | None:
        """A message's link names the channel it is in: its thread, when it is in one."""
        return f"https://discord.com/channels/{self._config.guild_id}/{thread or room}/{event_id}"

    async def health(self) -> ConnectorHealth:
        client = self._client
        if self._state is not _State.RUNNING or client is None or client.is_closed():
            return ConnectorHealth(ok=False, detail=f"discord: {self._state.value}")
        if self._task is None or self._task.done():
            return ConnectorHealth(ok=False, detail="discord: the gateway connection ended")
        return client.probe(self._config.channel_id)

    def _running(self) -> Outbound:
        if self._state is not _State.RUNNING or self._outbound is None:
            raise ConnectorError(f"the Discord connector is {self._state.value}")
        return self._outbound

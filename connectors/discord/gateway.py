"""discord.py's client as Fleetwarden runs it, and where it connects.

Owns the client's configuration (the intents, mentions that never ping, the longest
rate-limit wait worth stalling for), its hand-offs to the connector (each message, each
edit, each reaction added, each new session), aiming discord.py at the configured API base
and gateway, and turning the reason a connection ended for good into the error the app
exits by. The connection itself — heartbeats, reconnects, resumes — is discord.py's.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import warnings
from collections.abc import Awaitable, Callable, Mapping

import yarl

from connectors.base import ConnectorHealth
from connectors.discord.config import API_BASE_ENV, GATEWAY_URL_ENV, DiscordConfig
from connectors.discord.errors import explain_close, intents_refused
from connectors.errors import ConnectorAuthError, ConnectorError, ConnectorSetupError
from connectors.health import LinkHealth

with warnings.catch_warnings():  # discord.py imports the stdlib audioop, deprecated in 3.11+
    warnings.simplefilter("ignore", DeprecationWarning)
    import discord
    from discord.gateway import DiscordWebSocket

# Fleetwarden never joins voice channels: no warning about voice libraries at every start.
discord.VoiceClient.warn_nacl = discord.VoiceClient.warn_dave = False

log = logging.getLogger(__name__)

MAX_RATE_LIMIT_WAIT_SECONDS = 120.0
"""A 429 asking for a longer wait than this fails the send instead of stalling it."""


class Gateway(discord.Client):
    """discord.py's client with the intents and mention policy Fleetwarden needs, handing
    each message to ``deliver``, each edited one (as it reads now) to ``edited``, each
    reaction added to ``reacted``, and calling ``renewed`` when a session after the first
    is ready (a new session, not a resume: the gateway replays nothing of the gap). A
    hand-off that raises is told to ``failed`` with the event's id (discord.py would only
    log it)."""

    def __init__(self, *, guild_ready_timeout: float = 2.0) -> None:
        intents = discord.Intents.none()
        intents.guilds = True  # the server, its channels and threads
        intents.guild_messages = True
        intents.message_content = True  # privileged: enabled in the developer portal
        intents.guild_reactions = True  # answers to approval requests; not privileged
        super().__init__(
            intents=intents,
            allowed_mentions=discord.AllowedMentions.none(),
            guild_ready_timeout=guild_ready_timeout,
            max_ratelimit_timeout=MAX_RATE_LIMIT_WAIT_SECONDS,
            chunk_guilds_at_startup=False,
        )
        self.deliver: Callable[[discord.Message], None] = lambda message: None
        self.edited: Callable[[discord.Message], None] = lambda message: None
        self.reacted: Callable[[discord.RawReactionActionEvent], Awaitable[None]] = _ignore
        self.renewed: Callable[[], None] = lambda: None
        self.failed: Callable[[str | None, BaseException], None] = _log_failure
        self.ready = asyncio.Event()
        self.link: LinkHealth | None = None  # the connector's: up at READY and RESUMED

    async def on_ready(self) -> None:
        log.info("discord: connected as %s (%s)", self.user, getattr(self.user, "id", "?"))
        if self.link is not None:
            self.link.connected()
        if self.ready.is_set():
            self.renewed()
        self.ready.set()

    async def on_resumed(self) -> None:
        log.info("discord: gateway session resumed")
        if self.link is not None:
            self.link.connected()

    async def on_disconnect(self) -> None:
        if self.link is not None:
            self.link.lost("the gateway connection closed")

    def probe(self, channel_id: int) -> ConnectorHealth:
        """Whether the gateway is connected now, and its heartbeat's round trip."""
        if not self.is_ready() or self.ws is None or not self.ws.open:
            return ConnectorHealth(ok=False, detail="discord: reconnecting to the gateway")
        latency = self.latency
        beat = f", heartbeat {latency * 1000:.0f} ms" if latency == latency else ""
        return ConnectorHealth(ok=True, detail=f"{self.user} in channel {channel_id}{beat}")

    async def on_message(self, message: discord.Message) -> None:
        if self.link is not None:
            self.link.event()
        self.deliver(message)

    async def on_raw_message_edit(self, payload: discord.RawMessageUpdateEvent) -> None:
        # The raw event fires whether or not the message is in discord.py's cache.
        self.edited(payload.message)

    async def on_raw_reaction_add(self, payload: discord.RawReactionActionEvent) -> None:
        # The raw event fires whether or not the message is in discord.py's cache.
        await self.reacted(payload)

    async def on_error(self, event_method: str, /, *args: object, **kwargs: object) -> None:
        error = sys.exc_info()[1]
        if error is None:  # not called from an except block: nothing to report
            return
        self.failed(_event_id(args), error)


async def _ignore(payload: discord.RawReactionActionEvent) -> None:
    return None


def _log_failure(event_id: str | None, error: BaseException) -> None:
    log.error("discord: event %s was not handled", event_id, exc_info=error)


def _event_id(args: tuple[object, ...]) -> str | None:
    """The id of the message an event handler was given (a message, or a raw edit or
    reaction), if it names one."""
    for arg in args:
        found = getattr(arg, "message_id", None) or getattr(arg, "id", None)
        if isinstance(found, int):
            return str(found)
    return None


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


def fatal(exc: BaseException | None, application_id: int | None) -> ConnectorError:
    """Why the gateway ended for good, as the error the app reports (and exits by)."""
    if isinstance(exc, discord.PrivilegedIntentsRequired):
        return ConnectorSetupError(intents_refused(application_id))
    if isinstance(exc, discord.ConnectionClosed) and exc.code == 4004:
        return ConnectorAuthError(explain_close(exc, application_id))
    return ConnectorError(explain_close(exc, application_id))

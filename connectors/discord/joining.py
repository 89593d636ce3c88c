"""Joining Discord at start: the bot token from the environment, the login, the wait for
the gateway's READY, and the check that the bot sees the configured server and text
channel — each failure phrased as what the operator should do.

The connector (:mod:`connectors.discord.connector`) calls these in order and owns what
runs afterwards.
"""

from __future__ import annotations

import asyncio
import warnings
from collections.abc import Mapping

import aiohttp

from connectors.discord.config import DiscordConfig
from connectors.discord.errors import invite_url
from connectors.discord.gateway import Gateway, fatal
from connectors.errors import ConnectorAuthError, ConnectorError, ConnectorSetupError

with warnings.catch_warnings():  # discord.py imports the stdlib audioop, deprecated in 3.11+
    warnings.simplefilter("ignore", DeprecationWarning)
    import discord

READY_TIMEOUT_SECONDS = 60.0
"""How long start() waits for the gateway's READY (and the server's data) after login."""


def bot_token(config: DiscordConfig, environ: Mapping[str, str]) -> str:
    """The bot's token from ``config.token_env``; a setup error saying how to get one."""
    token = environ.get(config.token_env, "").strip()
    if not token:
        raise ConnectorSetupError(
            f"discord: the environment variable {config.token_env} "
            "(connectors.discord.token_env) is not set: set it to the bot's token "
            "(developer portal → your application → Bot → Reset Token)"
        )
    return token


async def log_in(client: Gateway, token: str, config: DiscordConfig, api_base: str) -> None:
    """Log ``client`` in over REST: a rejected token or an unreachable API, explained."""
    try:
        await client.login(token)
    except discord.LoginFailure:
        raise ConnectorAuthError(
            f"discord: the bot token in {config.token_env} was rejected: copy a "
            "fresh one (developer portal → your application → Bot → Reset Token)"
        ) from None
    except (aiohttp.ClientError, OSError, discord.HTTPException) as exc:
        raise ConnectorError(f"discord: cannot reach {api_base}: {exc}") from None


async def until_ready(client: Gateway, connection: asyncio.Task[None], gateway: str) -> None:
    """Wait for the gateway's READY; the connection ending first, or no READY within
    :data:`READY_TIMEOUT_SECONDS`, is the error start() raises."""
    ready = asyncio.create_task(client.ready.wait())
    try:
        done, _ = await asyncio.wait(
            {connection, ready},
            timeout=READY_TIMEOUT_SECONDS,
            return_when=asyncio.FIRST_COMPLETED,
        )
    finally:
        ready.cancel()
    if connection in done:
        raise fatal(connection.exception(), client.application_id)
    if not done:
        raise ConnectorError(
            f"discord: no READY from the gateway at {gateway} within {READY_TIMEOUT_SECONDS:.0f} s"
        )


def check_channel(client: Gateway, config: DiscordConfig) -> None:
    """The bot is a member of the configured server and sees its text channel; otherwise
    a setup error with the invite link."""
    guild = client.get_guild(config.guild_id)
    invite = invite_url(client.application_id, config.guild_id)
    if guild is None:
        raise ConnectorSetupError(
            f"discord: the bot is not a member of server {config.guild_id} "
            f"(connectors.discord.guild_id): invite it with {invite}"
        )
    channel = guild.get_channel(config.channel_id)
    if not isinstance(channel, discord.TextChannel):
        what = "no channel" if channel is None else f"a {channel.type} channel"
        raise ConnectorSetupError(
            f"discord: server {guild.name!r} has {what} with id {config.channel_id} "
            "visible to the bot (connectors.discord.channel_id must be a text channel "
            f"the bot can see; give its role View Channel there, or re-invite: {invite})"
        )

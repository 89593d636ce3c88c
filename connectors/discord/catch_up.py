"""Reading back, over REST, what people wrote while Fleetwarden was away.

A new gateway session (at start, or when the old one could not be resumed) replays
nothing of the gap, so the control channel and its live threads are read back for the
last ``catch_up_minutes``. Messages the gateway delivered meanwhile are merged in, and the
lot is handed back oldest first. Which of them are commands, and which were handled
already, is for :mod:`.translate` and the router to say.
"""

from __future__ import annotations

import logging
import warnings
from datetime import timedelta
from typing import TypeAlias

import aiohttp

from connectors.discord.config import DiscordConfig

with warnings.catch_warnings():  # discord.py imports the stdlib audioop, deprecated in 3.11+
    warnings.simplefilter("ignore", DeprecationWarning)
    import discord

log = logging.getLogger(__name__)

CATCH_UP_LIMIT = 100
"""At most this many messages per channel or thread are read back."""

Found: TypeAlias = dict[int, tuple[discord.Message, discord.Member | None]]
"""Messages by id, each with its author as a server member when the message lacks one."""


async def recent(channel: discord.TextChannel, since: int) -> Found:
    """Messages after the snowflake ``since`` in ``channel`` and its live threads, each with
    its author as a member (REST messages carry no roles: the member is fetched, once)."""
    places: list[discord.TextChannel | discord.Thread] = [channel, *channel.threads]
    members: dict[int, discord.Member | None] = {}
    found: Found = {}
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


async def read_back(client: discord.Client, config: DiscordConfig) -> Found:
    """What was said in the control channel and its live threads in the last
    ``catch_up_minutes``; nothing when that is off, or when Discord cannot be read (a
    warning: live messages still work)."""
    try:
        channel = client.get_channel(config.channel_id)
        if isinstance(channel, discord.TextChannel) and config.catch_up_minutes:
            since = discord.utils.time_snowflake(
                discord.utils.utcnow() - timedelta(minutes=config.catch_up_minutes)
            )
            return await recent(channel, since)
    except (discord.HTTPException, aiohttp.ClientError, OSError) as exc:
        log.warning("discord: could not read what was said while away: %s", exc)
    return {}


def in_order(
    found: Found, held: list[discord.Message]
) -> list[tuple[discord.Message, discord.Member | None]]:
    """``found`` and the live messages ``held`` meanwhile, each once, oldest first (a
    snowflake grows with its time). A message in both keeps the member read back."""
    for message in held:
        found.setdefault(message.id, (message, None))
    return [found[message_id] for message_id in sorted(found)]

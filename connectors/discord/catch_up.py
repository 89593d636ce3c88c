"""Reading back, over REST, what people wrote while Fleetwarden was away, and how they
reacted to the bot's messages.

A new gateway session (at start, or when the old one could not be resumed) replays
nothing of the gap, so the control channel and its live threads are read back for the
last ``catch_up_minutes``. Messages the gateway delivered meanwhile are merged in, and the
lot is handed back oldest first. The reactions people added meanwhile to the bot's own
messages of that span (answers to approval requests) are read back too. Which of them are
commands or answers, and which were handled already, is for :mod:`.translate` and the
router to say.
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
REACTORS_LIMIT = 100
"""At most this many people are read back per emoji on one of the bot's messages."""

Found: TypeAlias = dict[int, tuple[discord.Message, discord.Member | None]]
"""Messages by id, each with its author as a server member when the message lacks one."""


Reacted: TypeAlias = list[tuple[discord.Message, str, discord.Member]]
"""Reactions read back: the message, the emoji as text, who added it (a server member)."""


class _Members:
    """Server members by user id, each fetched once (REST messages carry no roles)."""

    def __init__(self, guild: discord.Guild) -> None:
        self._guild = guild
        self._known: dict[int, discord.Member | None] = {}

    async def get(self, user_id: int) -> discord.Member | None:
        if user_id not in self._known:
            try:
                self._known[user_id] = await self._guild.fetch_member(user_id)
            except discord.NotFound:  # left the server since
                self._known[user_id] = None
        return self._known[user_id]


async def recent(channel: discord.TextChannel, since: int) -> Found:
    """Messages after the snowflake ``since`` in ``channel`` and its live threads, each with
    its author as a member (REST messages carry no roles: the member is fetched, once)."""
    places: list[discord.TextChannel | discord.Thread] = [channel, *channel.threads]
    members = _Members(channel.guild)
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
            found[message.id] = (message, await members.get(author.id))
    return found


async def reactions(found: Found, me: int, guild: discord.Guild) -> Reacted:
    """Who reacted how to the bot's own messages among ``found`` (people only), each with
    their member record."""
    members = _Members(guild)
    reacted: Reacted = []
    for message, _ in found.values():
        if message.author.id != me:
            continue
        for reaction in message.reactions:
            async for user in reaction.users(limit=REACTORS_LIMIT):
                if user.bot:
                    continue
                member = user if isinstance(user, discord.Member) else await members.get(user.id)
                if member is not None:
                    reacted.append((message, str(reaction.emoji), member))
    return reacted


async def read_back(client: discord.Client, config: DiscordConfig) -> tuple[Found, Reacted]:
    """What was said in the control channel and its live threads in the last
    ``catch_up_minutes``, and the reactions on the bot's messages among it; nothing when
    that is off, or when Discord cannot be read (a warning: live messages still work)."""
    found: Found = {}
    try:
        channel = client.get_channel(config.channel_id)
        if isinstance(channel, discord.TextChannel) and config.catch_up_minutes:
            since = discord.utils.time_snowflake(
                discord.utils.utcnow() - timedelta(minutes=config.catch_up_minutes)
            )
            found = await recent(channel, since)
            me = client.user
            reacted = [] if me is None else await reactions(found, me.id, channel.guild)
            return found, reacted
    except (discord.HTTPException, aiohttp.ClientError, OSError) as exc:
        log.warning("discord: could not read what was said while away: %s", exc)
    return found, []


def in_order(
    found: Found, held: list[discord.Message]
) -> list[tuple[discord.Message, discord.Member | None]]:
    """``found`` and the live messages ``held`` meanwhile, each once, oldest first (a
    snowflake grows with its time). A message in both keeps the member read back."""
    for message in held:
        found.setdefault(message.id, (message, None))
    return [found[message_id] for message_id in sorted(found)]

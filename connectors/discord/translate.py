"""Which Discord messages and slash commands are for us, each as an :class:`InboundMessage`.

Pure functions over discord.py's models, so a message from the gateway and one read back
over REST (:mod:`.catch_up`) translate alike. Only what a person typed in the configured
server's control channel or one of its threads counts; a leading mention of the bot is
cut off and marks the message as addressed; the author's roles (not @everyone) become
the groups ``role:ID`` the ACL can name. An edit is the message as it reads now, with
``replaces`` naming it and an event id of its own (Discord gives edits none). A reaction
added is a message whose text is the emoji and which ``reacts_to`` the message, its event
id made from the message, the user and the emoji (Discord gives reactions none).
"""

from __future__ import annotations

import dataclasses
import functools
import re
import warnings
from datetime import datetime

from connectors.base import EventId, InboundMessage, RoomId, ThreadId, UserId
from connectors.discord.config import DiscordConfig

with warnings.catch_warnings():  # discord.py imports the stdlib audioop, deprecated in 3.11+
    warnings.simplefilter("ignore", DeprecationWarning)
    import discord

CONNECTOR = "discord"

TYPED = frozenset({discord.MessageType.default, discord.MessageType.reply})
"""Message types a person typed; the others are system messages in their name."""


@functools.cache
def mention(user_id: int) -> re.Pattern[str]:
    """A mention of the bot at the start of a message: ``<@id>`` or the old ``<@!id>``."""
    return re.compile(rf"\s*<@!?{user_id}>\s*")


def groups(author: discord.User | discord.Member) -> tuple[str, ...]:
    """The author's roles in the server as ACL groups; none when discord.py has no member."""
    roles = author.roles if isinstance(author, discord.Member) else []
    return tuple(f"role:{role.id}" for role in roles if not role.is_default())


def from_message(
    message: discord.Message,
    config: DiscordConfig,
    *,
    me: int | None,
    member: discord.Member | None = None,
) -> InboundMessage | None:
    """``message`` as an :class:`InboundMessage`, or ``None`` if it is not for us.
    ``me``: the bot's user id, once known. ``member``: the author as a server member,
    when the message does not say."""
    if message.author.bot:
        return None  # ourselves, other bots and webhooks: never commands
    if message.type not in TYPED:
        return None  # system messages in a person's name ("started a thread NAME")
    if message.guild is None or message.guild.id != config.guild_id:
        return None
    inside, thread = place(message.channel, config)
    if not inside:
        return None
    text, addressed = message.content, False
    if me is not None and (found := mention(me).match(text)):
        text, addressed = text[found.end() :], True
    author = member or message.author
    return InboundMessage(
        connector=CONNECTOR,
        sender=UserId(str(author.id)),
        text=text,
        room=RoomId(str(config.channel_id)),
        timestamp=message.created_at,
        event_id=EventId(str(message.id)),
        thread_id=thread,
        addressed=addressed,
        groups=groups(author),
    )


def from_edit(
    message: discord.Message,
    config: DiscordConfig,
    *,
    me: int | None,
    member: discord.Member | None = None,
) -> InboundMessage | None:
    """An edited ``message`` as an :class:`InboundMessage` that ``replaces`` it, or ``None``
    if it is not for us, or the update is no edit by its author (Discord also updates a
    message when it adds a link's preview: ``edited_at`` is then unset)."""
    edited = message.edited_at
    inbound = from_message(message, config, me=me, member=member)
    if inbound is None or edited is None:
        return None
    return dataclasses.replace(
        inbound,
        event_id=EventId(f"{message.id}:edit:{edited.isoformat()}"),
        timestamp=edited,
        replaces=EventId(str(message.id)),
    )


def from_reaction(
    reaction: discord.RawReactionActionEvent,
    channel: discord.abc.Snowflake | None,
    config: DiscordConfig,
    *,
    me: int | None,
    now: datetime,
) -> InboundMessage | None:
    """A reaction a person added to a message in the control channel or one of its threads
    (``channel``, where it was added) as an :class:`InboundMessage`, or ``None`` if it is
    not for us. Its text is the emoji (``✅``; a custom one as ``<:name:id>``), ``reacts_to``
    the message; ``now`` stands for its time, which Discord does not send."""
    member = reaction.member
    if reaction.event_type != "REACTION_ADD" or member is None or member.bot:
        return None  # in a server Discord always names the member; bots never answer
    if reaction.user_id == me or reaction.guild_id != config.guild_id:
        return None
    inside, thread = place(channel, config)
    if not inside or channel is None or channel.id != reaction.channel_id:
        return None
    key = str(reaction.emoji)
    return InboundMessage(
        connector=CONNECTOR,
        sender=UserId(str(reaction.user_id)),
        text=key,
        room=RoomId(str(config.channel_id)),
        timestamp=now,
        event_id=EventId(f"{reaction.message_id}:reaction:{reaction.user_id}:{key}"),
        thread_id=thread,
        groups=groups(member),
        reacts_to=EventId(str(reaction.message_id)),
    )


def place(
    channel: discord.abc.Snowflake | None, config: DiscordConfig
) -> tuple[bool, ThreadId | None]:
    """Whether ``channel`` is the control channel or one of its threads, and the thread's
    id when it is a thread."""
    if isinstance(channel, discord.Thread):
        inside = channel.parent_id == config.channel_id
        return inside, ThreadId(str(channel.id)) if inside else None
    return channel is not None and channel.id == config.channel_id, None


def from_interaction(
    interaction: discord.Interaction, command: str, config: DiscordConfig
) -> InboundMessage | None:
    """A slash command's ``command`` text as an :class:`InboundMessage` addressed to us,
    or ``None`` if it was used outside the control channel and its threads."""
    inside, thread = place(interaction.channel, config)
    if not inside:
        return None
    user = interaction.user
    return InboundMessage(
        connector=CONNECTOR,
        sender=UserId(str(user.id)),
        text=command,
        room=RoomId(str(config.channel_id)),
        timestamp=interaction.created_at,
        event_id=EventId(f"interaction-{interaction.id}"),
        thread_id=thread,
        addressed=True,
        groups=groups(user),
    )

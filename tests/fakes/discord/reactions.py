"""Reactions in the fake Discord: a human (or the bot) reacts to a message, and REST lists
who added an emoji.
"""

from __future__ import annotations

from collections.abc import Mapping

from aiohttp import web

from tests.fakes.discord.messages import Messages
from tests.fakes.discord.wire import GUILD_MESSAGE_REACTIONS_INTENT, _error, _json


class Reactions(Messages):
    """MESSAGE_REACTION_ADD, sent only to a session that asked for reactions, and the
    reactors route."""

    async def add_user_reaction(
        self, channel_id: int, message_id: int, user: str, emoji: str, *, bot: bool = False
    ) -> None:
        """The human named ``user`` (with ``bot``, the bot itself) reacts to ``message_id``
        with the unicode ``emoji``; MESSAGE_REACTION_ADD follows, in Discord's shape, if the
        session asked for reactions. Raises KeyError for a message not in that channel."""
        message = self._find_message(channel_id, str(message_id))
        if message is None:
            raise KeyError(f"no message {message_id} in channel {channel_id}")
        who = self.bot_user if bot else self._user(user)
        if (message_id, int(who["id"]), emoji) in self.reactions:
            return  # already there: Discord sends nothing
        self.reactions.append((message_id, int(who["id"]), emoji))
        session = self._session
        if session is None or not session.intents & GUILD_MESSAGE_REACTIONS_INTENT:
            return
        await self._dispatch(
            "MESSAGE_REACTION_ADD",
            {
                "user_id": who["id"],
                "channel_id": str(channel_id),
                "message_id": str(message_id),
                "guild_id": str(self.guild_id),
                "member": self._member(who),
                "emoji": {"id": None, "name": emoji},
                "message_author_id": str(message.author_id),
                "burst": False,
                "burst_colors": [],
                "type": 0,
            },
        )

    def _reactors(
        self, channel_id: int, message_id: str, emoji: str, query: Mapping[str, str]
    ) -> web.Response:
        """GET /channels/{id}/messages/{id}/reactions/{emoji}: who added ``emoji``, in
        order of user id, ``limit`` (1-100, default 25) after ``after``."""
        if self._find_message(channel_id, message_id) is None:
            return _error(404, "Unknown Message", 10008)
        try:
            limit = int(query.get("limit", "25"))
            after = int(query.get("after", "0"))
        except ValueError:
            return _error(400, "Invalid Form Body", 50035)
        if not 1 <= limit <= 100:
            return _error(400, "Invalid Form Body", 50035)
        users = sorted(
            {u for m, u, e in self.reactions if str(m) == message_id and e == emoji and u > after}
        )[:limit]
        by_id = {int(u["id"]): u for u in [*self._users.values(), self.bot_user]}
        return _json([by_id[u] for u in users])

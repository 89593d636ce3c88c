"""Threads and channel edits in the fake Discord: started from a message over REST, edited,
archived or deleted by the bot, or server-side as auto-archive or a moderator would.
"""

from __future__ import annotations

from aiohttp import web

from tests.fakes.discord.messages import Messages
from tests.fakes.discord.records import Json
from tests.fakes.discord.wire import PUBLIC_THREAD, _error, _iso, _json


class Threads(Messages):
    """Channel and thread lifecycle: THREAD_CREATE, THREAD_UPDATE, THREAD_DELETE and the
    channel events."""

    async def archive_thread(self, thread_id: int, *, locked: bool = False) -> None:
        """Archive a thread server-side, as Discord's auto-archive does; THREAD_UPDATE follows.

        With ``locked`` the bot (no MANAGE_THREADS) can no longer post there.
        """
        thread = self._require_thread(thread_id)
        metadata = thread["thread_metadata"]
        metadata.update(archived=True, locked=locked, archive_timestamp=_iso(self._clock()))
        await self._dispatch("THREAD_UPDATE", thread)

    async def delete_thread(self, thread_id: int) -> None:
        """Delete a thread server-side, as a moderator would; THREAD_DELETE follows."""
        self._require_thread(thread_id)
        await self._remove_channel(thread_id)

    async def _start_thread(self, channel_id: int, message_id: str, body: Json) -> web.Response:
        known = {str(m.id) for m in self._messages.get(channel_id, [])}
        if message_id not in known:
            return _error(404, "Unknown Message", 10008)
        if int(message_id) in self._channels:
            return _error(400, "A thread has already been created for this message", 160004)
        # A thread started from a message takes the message's id, as on Discord.
        thread = self._thread(channel_id, int(message_id), body)
        self._channels[int(message_id)] = thread
        await self._dispatch("THREAD_CREATE", {**thread, "newly_created": True})
        return _json(thread, 201)

    async def _edit_channel(self, channel_id: int, body: Json) -> web.Response:
        channel = self._channels[channel_id]
        if "name" in body:
            channel["name"] = str(body["name"])
        if channel["type"] == PUBLIC_THREAD:
            metadata = channel["thread_metadata"]
            for key in ("archived", "locked", "auto_archive_duration"):
                if key in body:
                    metadata[key] = body[key]
            if "archived" in body:
                metadata["archive_timestamp"] = _iso(self._clock())
            await self._dispatch("THREAD_UPDATE", channel)
        else:
            await self._dispatch("CHANNEL_UPDATE", channel)
        return _json(channel)

    async def _remove_channel(self, channel_id: int) -> Json:
        channel = self._channels.pop(channel_id)
        if channel["type"] == PUBLIC_THREAD:
            keys = ("id", "guild_id", "parent_id", "type")
            await self._dispatch("THREAD_DELETE", {k: channel[k] for k in keys})
        else:
            await self._dispatch("CHANNEL_DELETE", channel)
        return channel

"""A fake Discord on 127.0.0.1: REST (API v10) and the gateway websocket, in real shapes.

The real discord.py client logs in against it once ``discord.http.Route.BASE`` is set to
:attr:`FakeDiscord.api_base` and ``DiscordWebSocket.DEFAULT_GATEWAY`` to
:attr:`FakeDiscord.gateway_url`. There is one guild with one text channel (the control
channel) and one bot user; any number of human users appear by name, and roles can be
added to the guild and granted to them. The gateway sends HELLO, answers heartbeats,
IDENTIFY (READY then GUILD_CREATE) and RESUME (missed dispatches replayed by sequence, then
RESUMED), and can be told to send RECONNECT or INVALID_SESSION, or to refuse the
message-content intent (close 4014). REST records every request's method and path and what
the bot posts (the request body, attachments' bytes too), reads a multipart upload as
Discord does (a ``payload_json`` part and ``files[n]`` parts, each listed in its
``attachments``, ten at most, each within the size limit: anything else is refused),
enforces Discord's message limits, resolves replies and mentions as Discord does, starts
threads from messages, archives and deletes channels, edits the bot's own messages (PATCH;
an unknown message is a 404, another author's a 403, as on Discord), and can answer the
next request on a route with a 429. A human can react to a message (MESSAGE_REACTION_ADD,
sent only to a session that asked for the GUILD_MESSAGE_REACTIONS intent, as Discord does);
REST shows the reactions' counts on a message and who added each emoji. Threads can also
be archived or deleted server-side, as Discord's auto-archive or a moderator would.

Slash commands: the bot's bulk overwrite of its guild commands is stored and answered with
ApplicationCommand objects; a human can then use one (INTERACTION_CREATE), and the bot's
callback (reply, ephemeral reply or defer), followups and edits of its responses arrive
through the token-authorized interaction and webhook routes, as on Discord.
"""

from __future__ import annotations

import uuid

import aiohttp
from aiohttp import web

from tests.fakes.discord.commands import Commands
from tests.fakes.discord.interactions import Interactions
from tests.fakes.discord.reactions import Reactions
from tests.fakes.discord.records import Attachment, Json, PostedMessage
from tests.fakes.discord.threads import Threads
from tests.fakes.discord.wire import API_VERSION, _error, _json, _Refused

__all__ = ["Attachment", "FakeDiscord", "PostedMessage"]


class FakeDiscord(Interactions, Commands, Reactions, Threads):
    """An aiohttp server on 127.0.0.1 (random port) playing Discord for one bot: its routes,
    rate limits and the CDN; the layers it is made of hold the rest."""

    @property
    def api_base(self) -> str:
        """The value for ``discord.http.Route.BASE``."""
        return f"{self.base_url}/api/v{API_VERSION}"

    def routes(self, app: web.Application) -> None:
        api = f"/api/v{API_VERSION}"
        app.router.add_get("/", self._gateway)
        app.router.add_get("/resume/", self._gateway)
        app.router.add_get("/attachments/{channel}/{id}/{filename}", self._cdn)
        app.router.add_route("*", api + "/{tail:.*}", self._rest)

    async def before_stop(self) -> None:
        for task in self._outbox:
            task.cancel()
        self._outbox.clear()
        for ws in list(self._sockets):
            await ws.close(code=aiohttp.WSCloseCode.GOING_AWAY)

    def rate_limit_next(
        self, method: str, path: str, retry_after: float = 0.05, *, is_global: bool = False
    ) -> None:
        """Answer the next ``method path`` (under the API base, e.g. ``/users/@me``) with 429."""
        self._pending_429.setdefault((method.upper(), path), []).append((retry_after, is_global))

    def _rate_limit(self, method: str, path: str) -> web.Response | None:
        pending = self._pending_429.get((method, path))
        if not pending:
            return None
        retry_after, is_global = pending.pop(0)
        self.rate_limited.append((method, path))
        body = {"message": "You are being rate limited.", "retry_after": retry_after}
        body["global"] = is_global
        headers = {
            # discord.py treats a 429 without Via as a Cloudflare ban and does not retry.
            "Via": "1.1 google",
            "Retry-After": str(max(1, round(retry_after + 0.5))),
            "X-RateLimit-Limit": "5",
            "X-RateLimit-Remaining": "0",
            "X-RateLimit-Reset": f"{self._clock() + retry_after:.3f}",
            "X-RateLimit-Reset-After": f"{retry_after:.3f}",
            "X-RateLimit-Bucket": uuid.uuid5(uuid.NAMESPACE_URL, path).hex,
            "X-RateLimit-Scope": "global" if is_global else "user",
        }
        if is_global:
            headers["X-RateLimit-Global"] = "true"
        return _json(body, 429, headers)

    async def _rest(self, request: web.Request) -> web.StreamResponse:
        try:
            return await self._rest_route(request)
        except _Refused as refused:
            return refused.response

    async def _rest_route(self, request: web.Request) -> web.StreamResponse:
        path = "/" + request.match_info["tail"]
        parts = path.strip("/").split("/")
        # discord.py sends these without an Authorization header: the path's token is the key.
        by_token = len(parts) >= 3 and parts[0] in ("interactions", "webhooks")
        if not by_token and request.headers.get("Authorization") != f"Bot {self.token}":
            return _error(401, "401: Unauthorized", 0)
        self.requests.append((request.method, path))
        limited = self._rate_limit(request.method, path)
        if limited is not None:
            return limited
        method = request.method
        if by_token:
            return await self._token_route(request, parts)
        if parts[0] == "applications":
            return await self._commands(request, parts)
        if method == "GET" and path == "/users/@me":
            return _json(self.bot_user)
        if method == "GET" and path == "/oauth2/applications/@me":
            return _json(self._application())
        if method == "GET" and path in ("/gateway", "/gateway/bot"):
            return _json(self._gateway_info(bot=path.endswith("/bot")))
        if parts[0] == "guilds" and len(parts) == 4 and parts[2] == "members" and method == "GET":
            return self._get_member(parts[1], parts[3])
        if parts[0] != "channels" or len(parts) < 2 or not parts[1].isdigit():
            return _error(404, "404: Not Found", 0)
        channel_id = int(parts[1])
        if channel_id not in self._channels:
            return _error(404, "Unknown Channel", 10003)
        rest = parts[2:]
        if rest == [] and method == "GET":
            return _json(self._channels[channel_id])
        if rest == [] and method == "PATCH":
            return await self._edit_channel(channel_id, await request.json())
        if rest == [] and method == "DELETE":
            return _json(await self._remove_channel(channel_id))
        if rest == ["messages"] and method == "POST":
            return await self._post_message(request, channel_id)
        if rest == ["messages"] and method == "GET":
            return self._history(channel_id, request.query)
        if len(rest) == 4 and rest[0] == "messages" and rest[2] == "reactions" and method == "GET":
            return self._reactors(channel_id, rest[1], rest[3], request.query)
        if len(rest) == 2 and rest[0] == "messages" and method == "PATCH":
            return await self._edit_message(request, channel_id, rest[1])
        if len(rest) == 3 and rest[0] == "messages" and rest[2] == "threads" and method == "POST":
            return await self._start_thread(channel_id, rest[1], await request.json())
        if rest == ["typing"] and method == "POST":  # Trigger Typing Indicator
            self.typing.append(channel_id)
            return web.Response(status=204)
        return _error(405, "405: Method Not Allowed", 0)

    def _get_member(self, guild_id: str, user_id: str) -> web.Response:
        if guild_id != str(self.guild_id):
            return _error(404, "Unknown Guild", 10004)
        user = next((u for u in self._users.values() if u["id"] == user_id), None)
        if user is None or user.get("bot"):
            return _error(404, "Unknown Member", 10007)
        return _json(self._member(user))

    def _gateway_info(self, *, bot: bool) -> Json:
        info: Json = {"url": self.gateway_url.rstrip("/")}
        if bot:
            limit = {"total": 1000, "remaining": 999, "reset_after": 0, "max_concurrency": 1}
            info.update(shards=1, session_start_limit=limit)
        return info

    async def _cdn(self, request: web.Request) -> web.StreamResponse:
        info = request.match_info
        key = (int(info["channel"]), int(info["id"]), info["filename"])
        attachment = self._files.get(key)
        if attachment is None:
            return web.Response(status=404, text="Not Found")
        return web.Response(body=attachment.data, content_type=attachment.content_type)

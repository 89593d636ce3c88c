"""The fake Discord's gateway websocket: HELLO, heartbeats, IDENTIFY (READY, GUILD_CREATE),
RESUME with missed dispatches replayed, and the outages and session losses a test can cause.
"""

from __future__ import annotations

import asyncio
import json
import uuid

import aiohttp
from aiohttp import web

from tests.fakes.discord.guild import GuildState
from tests.fakes.discord.records import Json, _Session
from tests.fakes.discord.wire import (
    API_VERSION,
    AUTHENTICATION_FAILED,
    DISALLOWED_INTENTS,
    DISPATCH,
    HEARTBEAT,
    HEARTBEAT_ACK,
    HELLO,
    IDENTIFY,
    INVALID_SESSION,
    MESSAGE_CONTENT_INTENT,
    RECONNECT,
    RESUME,
)


class Gateway(GuildState):
    """The gateway's one session: dispatches are sequenced, logged and sent while a socket
    is attached."""

    @property
    def gateway_url(self) -> str:
        """The value for ``DiscordWebSocket.DEFAULT_GATEWAY`` (wrap it in ``yarl.URL``)."""
        return self.base_url.replace("http://", "ws://", 1) + "/"

    @property
    def resume_gateway_url(self) -> str:
        """Sent in READY; discord.py resumes there, so a resume is visible in gateway_paths."""
        return self.gateway_url + "resume/"

    @property
    def connected(self) -> bool:
        """Whether a gateway session is identified and attached to a socket."""
        return self._session is not None and self._session.ws is not None

    def add_role(self, name: str) -> int:
        """Create a role in the guild and return its id; GUILD_ROLE_CREATE follows if live."""
        role = self._role(self._snowflake(), name, position=len(self._roles))
        self._roles[int(role["id"])] = role
        self._dispatch_soon("GUILD_ROLE_CREATE", {"guild_id": str(self.guild_id), "role": role})
        return int(role["id"])

    def grant_role(self, user: str, role_id: int) -> None:
        """Give the human named ``user`` a role: their messages' ``member.roles`` carry it.

        No GUILD_MEMBER_UPDATE is sent: Discord sends it only with the privileged
        GUILD_MEMBERS intent, and without it discord.py caches no other member.
        """
        if role_id not in self._roles or role_id == self.guild_id:
            raise ValueError(f"no grantable role {role_id}")
        roles = self._granted.setdefault(self._user(user)["id"], [])
        if str(role_id) not in roles:
            roles.append(str(role_id))

    async def redeliver_last_user_message(self, channel_id: int) -> int:
        """Dispatch the MESSAGE_CREATE of the latest human message in a channel again, under
        a new sequence number, as Discord may after a resume (delivery is at least once).
        Returns the message id."""
        session = self._require_session()
        bot_id = str(self.bot_user["id"])
        for frame in reversed(session.log):
            data = frame["d"]
            if (
                frame["t"] == "MESSAGE_CREATE"
                and data["channel_id"] == str(channel_id)
                and data["author"]["id"] != bot_id
            ):
                await self._dispatch("MESSAGE_CREATE", data)
                return int(data["id"])
        raise KeyError(f"no human message in channel {channel_id}")

    async def go_away(self) -> None:
        """An outage: the gateway's connections closed, and new ones refused until
        :meth:`come_back`."""
        self.away = True
        for ws in list(self._sockets):
            await ws.close(code=aiohttp.WSCloseCode.GOING_AWAY)

    def come_back(self) -> None:
        """The end of the outage: the gateway takes connections (and resumes) again."""
        self.away = False

    async def force_reconnect(self) -> None:
        """Send op 7 RECONNECT; dispatches until the client resumes wait in the session log."""
        session = self._require_session()
        ws, session.ws = session.ws, None
        if ws is not None:
            await self._send(ws, {"op": RECONNECT, "d": None, "s": None, "t": None})

    async def invalidate_session(self, *, resumable: bool = False) -> None:
        """Send op 9 INVALID_SESSION; unless resumable the session is forgotten."""
        session = self._require_session()
        ws, session.ws = session.ws, None
        if not resumable:
            self._session = None
        if ws is not None:
            await self._send(ws, {"op": INVALID_SESSION, "d": resumable, "s": None, "t": None})

    def _require_session(self) -> _Session:
        if self._session is None:
            raise RuntimeError("no gateway session: the bot has not identified")
        return self._session

    async def _send(self, ws: web.WebSocketResponse, payload: Json) -> bool:
        if ws.closed:
            return False
        try:
            await ws.send_str(json.dumps(payload))
        except ConnectionError:
            return False
        return True

    def _sequence(self, session: _Session, event: str, data: Json) -> Json:
        session.seq += 1
        frame = {"op": DISPATCH, "t": event, "s": session.seq, "d": data}
        session.log.append(frame)
        return frame

    async def _dispatch(self, event: str, data: Json) -> None:
        session = self._session
        if session is None:
            return
        frame = self._sequence(session, event, data)
        while self._outbox:  # frames sequenced earlier by _dispatch_soon go out first
            await self._outbox.pop(0)
        if session.ws is not None:
            await self._send(session.ws, frame)

    def _dispatch_soon(self, event: str, data: Json) -> None:
        """Dispatch from synchronous test API: sequenced now, sent before any later dispatch."""
        session = self._session
        if session is None:
            return
        frame = self._sequence(session, event, data)
        if session.ws is not None:
            task = asyncio.get_running_loop().create_task(self._send(session.ws, frame))
            self._outbox.append(task)

    async def _gateway(self, request: web.Request) -> web.StreamResponse:
        if self.away:
            return web.Response(status=503, text="upstream connect error")
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        self.gateway_paths.append(request.path)
        self._sockets.add(ws)
        try:
            hello = {"heartbeat_interval": self.heartbeat_interval_ms}
            await self._send(ws, {"op": HELLO, "d": hello, "s": None, "t": None})
            async for message in ws:
                if message.type is not aiohttp.WSMsgType.TEXT:
                    break
                await self._on_frame(ws, json.loads(message.data))
        finally:
            self._sockets.discard(ws)
            if self._session is not None and self._session.ws is ws:
                self._session.ws = None
        return ws

    async def _on_frame(self, ws: web.WebSocketResponse, frame: Json) -> None:
        op, data = frame.get("op"), frame.get("d")
        if op == HEARTBEAT:
            self.heartbeats += 1
            await self._send(ws, {"op": HEARTBEAT_ACK, "d": None, "s": None, "t": None})
        elif op == IDENTIFY and isinstance(data, dict):
            await self._identify(ws, data)
        elif op == RESUME and isinstance(data, dict):
            await self._resume(ws, data)

    async def _identify(self, ws: web.WebSocketResponse, data: Json) -> None:
        self.identifies += 1
        if data.get("token") != self.token:
            await ws.close(code=AUTHENTICATION_FAILED, message=b"Authentication failed.")
            return
        intents = int(data.get("intents", 0))
        if self.deny_message_content_intent and intents & MESSAGE_CONTENT_INTENT:
            await ws.close(code=DISALLOWED_INTENTS, message=b"Disallowed intent(s).")
            return
        self._session = _Session(uuid.uuid4().hex, ws, intents)
        ready = {
            "v": API_VERSION,
            "user": self.bot_user,
            "user_settings": {},
            "private_channels": [],
            "relationships": [],
            "presences": [],
            "guilds": [{"id": str(self.guild_id), "unavailable": True}],
            "guild_join_requests": [],
            "geo_ordered_rtc_regions": [],
            "session_id": self._session.id,
            "session_type": "normal",
            "resume_gateway_url": self.resume_gateway_url,
            "shard": [0, 1],
            "application": {"id": str(self.application_id), "flags": 1 << 19},
            "_trace": ["fake-discord"],
        }
        await self._dispatch("READY", ready)
        await self._dispatch("GUILD_CREATE", self._guild())

    async def _resume(self, ws: web.WebSocketResponse, data: Json) -> None:
        self.resumes += 1
        session = self._session
        if session is None or data.get("session_id") != session.id:
            await self._send(ws, {"op": INVALID_SESSION, "d": False, "s": None, "t": None})
            return
        session.ws = ws
        seen = int(data.get("seq") or 0)
        for frame in [f for f in session.log if f["s"] > seen]:
            await self._send(ws, frame)
        await self._dispatch("RESUMED", {"_trace": ["fake-discord"]})

"""The fake Slack's Socket Mode: ``apps.connections.open`` hands out a single-use
``ws://127.0.0.1:PORT/link/?ticket=…``; a socket opened with it gets ``hello``, then the
world's events and interactions as envelopes, each to be acked by its ``envelope_id``.

- An envelope not acked within ``world.ack_timeout`` is sent again (``retry_attempt``+1,
  ``retry_reason`` "timeout") on an open socket, the next one round the ring; after
  ``world.max_retries`` retries it is given up (``world.dropped``).
- An envelope sent on a socket that closes before its ack goes to another socket (as a
  retry); with no socket open, envelopes wait for the next one.
- :meth:`Hub.refresh`: ``disconnect`` ``refresh_requested`` on every socket, which then
  gets nothing new and is closed ``world.refresh_grace`` seconds later; a socket opened
  meanwhile gets what comes next.
- Slack allows 10 sockets per app: one more (``world.max_sockets``) is accepted, sent
  ``disconnect`` ``too_many_websockets`` and closed (what Slack's SDKs see:
  slackapi/node-slack-sdk#1654).
- A ticket used twice or unknown: HTTP 401 on the upgrade.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import secrets
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from aiohttp import WSMsgType, web

from tests.fakes.slack import payloads

if TYPE_CHECKING:
    from tests.fakes.slack.world import SlackWorld

__all__ = ["Hub", "Link"]


@dataclass(eq=False)
class Link:
    """One open socket."""

    ws: web.WebSocketResponse
    host: str
    refreshing: bool = False
    received: list[dict[str, Any]] = field(default_factory=list)
    sent: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class Envelope:
    envelope_id: str
    kind: str
    payload: dict[str, Any]
    attempt: int = 0
    reason: str = ""
    link: Link | None = None
    sent_at: float | None = None
    sent: bool = False  # went out at least once


class Hub:
    """The Socket Mode side of one world (``world.sockets``)."""

    def __init__(self, world: SlackWorld) -> None:
        self.world = world
        self.base = ""
        self.tickets: set[str] = set()
        self.links: list[Link] = []
        self.pending: dict[str, Envelope] = {}
        self._turn = itertools.count()
        self._hosts = itertools.count(1)
        self._watch: asyncio.Task[None] | None = None
        self._stopping = False

    def routes(self, app: web.Application) -> None:
        app.router.add_get("/link/", self.serve)

    def start(self, base_url: str) -> None:
        self.base = base_url.replace("http://", "ws://", 1)
        self._watch = asyncio.get_running_loop().create_task(self._redeliver())

    def new_url(self) -> str:
        ticket = str(uuid.uuid4())
        self.tickets.add(ticket)
        return f"{self.base}/link/?ticket={ticket}&app_id={secrets.token_hex(32)}"

    @property
    def open_links(self) -> list[Link]:
        return [link for link in self.links if not link.ws.closed]

    async def serve(self, request: web.Request) -> web.StreamResponse:
        ticket = request.query.get("ticket", "")
        if ticket not in self.tickets:
            raise web.HTTPUnauthorized(text="invalid or used ticket")
        self.tickets.discard(ticket)
        ws = web.WebSocketResponse(autoping=True, timeout=1.0)
        await ws.prepare(request)
        link = Link(ws, f"applink-fake-{next(self._hosts)}")
        if len(self.open_links) >= self.world.max_sockets:
            await ws.send_json(
                payloads.disconnect(
                    self.world, "too_many_websockets", link.host, len(self.open_links)
                )
            )
            await ws.close()
            return ws
        self.links.append(link)
        try:
            await ws.send_json(payloads.hello(self.world, len(self.open_links), link.host))
            async for frame in ws:
                if frame.type is WSMsgType.TEXT:
                    self._acked(link, frame.json())
        finally:
            self.links.remove(link)
            self._orphan(link)
        return ws

    async def deliver(self, kind: str, payload: dict[str, Any]) -> None:
        envelope = Envelope(str(uuid.uuid4()), kind, payload)
        self.pending[envelope.envelope_id] = envelope
        await self._send(envelope)

    def _acked(self, link: Link, frame: Any) -> None:
        link.received.append(frame)
        envelope_id = frame.get("envelope_id") if isinstance(frame, dict) else None
        if isinstance(envelope_id, str) and self.pending.pop(envelope_id, None) is not None:
            self.world.acks.append(envelope_id)

    def _orphan(self, link: Link) -> None:
        """What ``link`` was sent and did not ack goes out again elsewhere."""
        for envelope in self.pending.values():
            if envelope.link is link:
                envelope.link, envelope.sent_at = None, None

    def _pick(self) -> Link | None:
        fresh = [link for link in self.open_links if not link.refreshing]
        if not fresh:
            return None
        return fresh[next(self._turn) % len(fresh)]

    async def _send(self, envelope: Envelope) -> None:
        link = self._pick()
        if link is None:
            return  # waits for a socket
        envelope.link, envelope.sent_at = link, self.world.clock.monotonic()
        frame = payloads.envelope(
            envelope.kind, envelope.payload, envelope.envelope_id, envelope.attempt, envelope.reason
        )
        try:
            await link.ws.send_json(frame)
        except (ConnectionError, RuntimeError):
            envelope.link, envelope.sent_at = None, None
        else:
            envelope.sent = True
            link.sent.append(frame)

    async def _redeliver(self) -> None:
        """Send again what was not acked in time, and what waits for a socket."""
        # A plain sleep, not wait_for on an event: on Python 3.11 wait_for can swallow the
        # cancellation that stops this loop.
        while not self._stopping:
            await asyncio.sleep(0.02)
            now = self.world.clock.monotonic()
            for envelope in list(self.pending.values()):
                waiting = envelope.link is None
                late = not waiting and now - (envelope.sent_at or now) >= self.world.ack_timeout
                if not late and not (waiting and self._pick() is not None):
                    continue
                if envelope.sent:
                    if envelope.attempt >= self.world.max_retries:
                        self.world.dropped.append(self.pending.pop(envelope.envelope_id).payload)
                        continue
                    envelope.attempt += 1
                    envelope.reason = "timeout"
                await self._send(envelope)

    async def refresh(self) -> None:
        for link in self.open_links:
            if link.refreshing:
                continue
            link.refreshing = True
            await link.ws.send_json(
                payloads.disconnect(
                    self.world, "refresh_requested", link.host, len(self.open_links)
                )
            )
            self.world.later(self._close_later(link))

    async def _close_later(self, link: Link) -> None:
        await asyncio.sleep(self.world.refresh_grace)
        await _close(link)

    async def drop(self) -> None:
        for link in self.open_links:
            await _close(link)

    async def stop(self) -> None:
        self._stopping = True
        if self._watch is not None:
            self._watch.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watch
        await self.drop()


async def _close(link: Link) -> None:
    """Close ``link``'s socket, not waiting long for a peer that may be gone already."""
    with contextlib.suppress(TimeoutError, ConnectionError, RuntimeError):
        await asyncio.wait_for(link.ws.close(), timeout=2.0)

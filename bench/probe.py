"""The operator's side of a round: send ``!ps``, see the reply arrive in its own long-poll."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from nio import AsyncClient, RoomSendResponse, SyncResponse

from bench.processes import BenchError

SYNC_FILTER = {"room": {"timeline": {"limit": 100}}}


@dataclass(frozen=True)
class Arrival:
    at: float  # perf_counter when the operator's sync returned it
    wall: float  # time.time() at the same moment
    server_ts: int  # the reply's origin_server_ts (ms)
    sender: str


@dataclass(frozen=True)
class Sample:
    bot: str
    command: str  # the command's event id
    command_ts: int  # its origin_server_ts (ms)
    reply_ts: int  # the reply's origin_server_ts (ms)
    latency_ms: float  # t0 → t1
    send_call_ms: float  # t0 → room_send returned
    send_ms: float  # t0 → command's origin_server_ts
    bot_ms: float  # command's origin_server_ts → reply's origin_server_ts
    delivery_ms: float  # reply's origin_server_ts → t1


class Operator:
    """A matrix-nio client whose one task is always in a long-poll ``/sync``."""

    def __init__(self, client: AsyncClient, since: str | None, timeout_ms: int) -> None:
        self.client = client
        self.user_id = client.user_id
        self._since = since
        self._timeout_ms = timeout_ms
        self._replies: dict[str, Arrival] = {}  # command event id -> first reply
        self._own_ts: dict[str, int] = {}  # own event id -> origin_server_ts
        self._members: set[tuple[str, str]] = set()  # (room, user) joins seen
        self._waiters: list[tuple[Callable[[], bool], asyncio.Future[None]]] = []
        self._failure: BaseException | None = None
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._sync_forever(), name="operator-sync")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    def fail(self, exc: BaseException) -> None:
        """Make every current and future wait raise ``exc``."""
        if self._failure is None:
            self._failure = exc
        for _, future in self._waiters:
            if not future.done():
                future.set_exception(exc)
        self._waiters.clear()

    async def _sync_forever(self) -> None:
        failures = 0
        while True:
            response = await self.client.sync(
                timeout=self._timeout_ms, since=self._since, sync_filter=SYNC_FILTER
            )
            at, wall = time.perf_counter(), time.time()
            if not isinstance(response, SyncResponse):
                failures += 1
                if failures >= 5:
                    self.fail(BenchError(f"operator sync failed 5 times: {response}"))
                    return
                await asyncio.sleep(0.5)
                continue
            failures = 0
            self._since = response.next_batch
            for room_id, room in response.rooms.join.items():
                for event in room.timeline.events:
                    self._note(room_id, event.source, at, wall)
            self._wake()

    def _note(self, room: str, source: dict[str, Any], at: float, wall: float) -> None:
        content = source.get("content") or {}
        sender = source.get("sender", "")
        if source.get("type") == "m.room.member" and content.get("membership") == "join":
            self._members.add((room, source.get("state_key", "")))
        if sender == self.user_id:
            self._own_ts[source.get("event_id", "")] = int(source.get("origin_server_ts", 0))
            return
        reply_to = ((content.get("m.relates_to") or {}).get("m.in_reply_to") or {}).get("event_id")
        if isinstance(reply_to, str) and reply_to not in self._replies:
            self._replies[reply_to] = Arrival(
                at, wall, int(source.get("origin_server_ts", 0)), sender
            )

    def _wake(self) -> None:
        still = []
        for predicate, future in self._waiters:
            if future.done():
                continue
            if predicate():
                future.set_result(None)
            else:
                still.append((predicate, future))
        self._waiters = still

    async def wait_until(self, predicate: Callable[[], bool], within: float, what: str) -> None:
        if self._failure is not None:
            raise self._failure
        if predicate():
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append((predicate, future))
        try:
            await asyncio.wait_for(future, within)
        except TimeoutError:
            raise BenchError(f"no {what} within {within:.0f} s") from None

    def joined(self, room: str, user: str) -> bool:
        return (room, user) in self._members

    async def round(self, bot: str, room: str, bot_user: str, within: float) -> Sample:
        """Send ``!ps`` in ``room`` and wait for ``bot_user``'s reply to it."""
        content = {"msgtype": "m.text", "body": "!ps"}
        t0, w0 = time.perf_counter(), time.time()
        sent = await self.client.room_send(room, "m.room.message", content)
        t_sent = time.perf_counter()
        if not isinstance(sent, RoomSendResponse):
            raise BenchError(f"operator could not send to {room}: {sent}")
        command = sent.event_id
        await self.wait_until(lambda: command in self._replies, within, f"{bot} reply")
        # The operator's own event usually arrives in the same or an earlier sync.
        await self.wait_until(lambda: command in self._own_ts, 5, "echo of the operator's command")
        reply = self._replies.pop(command)
        if reply.sender != bot_user:
            raise BenchError(f"{command} answered by {reply.sender}, not {bot_user}")
        stored = self._own_ts.pop(command)
        return Sample(
            bot=bot,
            command=command,
            command_ts=stored,
            reply_ts=reply.server_ts,
            latency_ms=(reply.at - t0) * 1000,
            send_call_ms=(t_sent - t0) * 1000,
            send_ms=stored - w0 * 1000,
            bot_ms=float(reply.server_ts - stored),
            delivery_ms=reply.wall * 1000 - reply.server_ts,
        )

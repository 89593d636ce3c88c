"""A Matrix client that is always in a long-poll ``/sync`` and notes when each event first
reached it — readable: an encrypted event counts once it is decrypted, as a person's
client shows it. Key upkeep (uploads, queries, claims, to-device messages) runs after each
sync, as every end-to-end encrypted client does."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

from nio import (
    Api,
    AsyncClient,
    KeysQueryResponse,
    MegolmEvent,
    RoomSendResponse,
    SyncResponse,
)

from bench.processes import BenchError

SYNC_FILTER = {"room": {"timeline": {"limit": 100}}}


class Arrivals:
    """When each event id first arrived somewhere; :meth:`seen` waits for one."""

    def __init__(self) -> None:
        self.arrivals: dict[str, float] = {}  # event id -> perf_counter when it arrived
        self._waiting: dict[str, asyncio.Future[float]] = {}
        self._failure: BaseException | None = None

    def arrived(self, event_id: str, at: float) -> None:
        """Note ``event_id`` arrived at ``at`` (first time only), waking its waiter."""
        if event_id in self.arrivals:
            return
        self.arrivals[event_id] = at
        future = self._waiting.pop(event_id, None)
        if future is not None and not future.done():
            future.set_result(at)

    async def seen(self, event_id: str, within: float, what: str) -> float:
        """When ``event_id`` arrived (waiting up to ``within`` seconds)."""
        if self._failure is not None:
            raise self._failure
        if event_id in self.arrivals:
            return self.arrivals[event_id]
        future = self._waiting.setdefault(event_id, asyncio.get_running_loop().create_future())
        try:
            return await asyncio.wait_for(asyncio.shield(future), within)
        except TimeoutError:
            raise BenchError(f"no {what} ({event_id}) within {within:.0f} s") from None

    def fail(self, exc: BaseException) -> None:
        """Make every current and future wait raise ``exc``."""
        self._failure = exc
        for future in self._waiting.values():
            if not future.done():
                future.set_exception(exc)
        self._waiting.clear()


class Watcher(Arrivals):
    """``client``'s one syncing task; an event arrives when a sync returns it readable."""

    def __init__(self, client: AsyncClient, since: str | None, timeout_ms: int) -> None:
        super().__init__()
        self.client = client
        self._since = since
        self._timeout_ms = timeout_ms
        self.joins: set[tuple[str, str]] = set()  # (room, user)
        self.readable: list[tuple[float, dict[str, Any]]] = []  # (arrival, event JSON)
        self._matches: list[tuple[Callable[[dict[str, Any]], bool], asyncio.Future[Any]]] = []
        self._unreadable: list[MegolmEvent] = []
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._sync_forever(), name="watcher-sync")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def match(
        self, predicate: Callable[[dict[str, Any]], bool], within: float, what: str
    ) -> tuple[float, dict[str, Any]]:
        """The first readable event (its arrival and JSON) for which ``predicate`` holds."""
        for at, source in self.readable:
            if predicate(source):
                return at, source
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._matches.append((predicate, future))
        try:
            found: tuple[float, dict[str, Any]] = await asyncio.wait_for(future, within)
        except TimeoutError:
            raise BenchError(f"no {what} within {within:.0f} s") from None
        finally:
            self._matches = [(p, f) for p, f in self._matches if f is not future]
        return found

    async def until_joined(self, room: str, user: str, within: float) -> None:
        deadline = time.monotonic() + within
        while (room, user) not in self.joins:
            if self._failure is not None:
                raise self._failure
            if time.monotonic() > deadline:
                raise BenchError(f"{user} did not join {room} within {within:.0f} s")
            await asyncio.sleep(0.05)

    async def _sync_forever(self) -> None:
        failures = 0
        while True:
            response = await self.client.sync(
                timeout=self._timeout_ms, since=self._since, sync_filter=SYNC_FILTER
            )
            at = time.perf_counter()
            if not isinstance(response, SyncResponse):
                failures += 1
                if failures >= 5:
                    self.fail(BenchError(f"{self.client.user_id}: sync failed: {response}"))
                    return
                await asyncio.sleep(0.5)
                continue
            failures = 0
            self._since = response.next_batch
            for room_id, room in response.rooms.join.items():
                for event in room.timeline.events:
                    self._note(room_id, event, at)
            self._retry_unreadable(at)
            if self.client.olm is not None:
                await upkeep(self.client)

    def _note(self, room: str, event: Any, at: float) -> None:
        source = event.source
        content = source.get("content") or {}
        if source.get("type") == "m.room.member" and content.get("membership") == "join":
            self.joins.add((room, source.get("state_key", "")))
        if isinstance(event, MegolmEvent):  # its key has not come yet
            self._unreadable.append(event)
            return
        self._readable(source, at)

    def _readable(self, source: dict[str, Any], at: float) -> None:
        self.readable.append((at, source))
        self.arrived(str(source.get("event_id", "")), at)
        for predicate, future in self._matches:
            if not future.done() and predicate(source):
                future.set_result((at, source))

    def _retry_unreadable(self, at: float) -> None:
        still = []
        for event in self._unreadable:
            try:
                decrypted = self.client.decrypt_event(event)
            except Exception:  # nio raises EncryptionError while the key is missing
                still.append(event)
                continue
            self._readable(decrypted.source, at)
        self._unreadable = still


async def upkeep(client: AsyncClient) -> None:
    """What an E2EE client does after a sync besides reading it."""
    if client.should_upload_keys:
        await client.keys_upload()
    if client.should_query_keys:
        query = await client.keys_query()
        if not isinstance(query, KeysQueryResponse):
            raise BenchError(f"{client.user_id}: key query failed: {query}")
    if client.should_claim_keys:
        await client.keys_claim(client.get_users_for_key_claiming())
    await client.send_to_device_messages()


async def send(client: AsyncClient, room: str, event_type: str, content: dict[str, Any]) -> str:
    """Send one event, encrypted where the room is — reactions too, as Element sends them
    (matrix-nio's ``room_send`` would send an ``m.reaction`` in clear)."""
    known = client.rooms.get(room)
    if known is None or not known.encrypted or client.olm is None:
        sent = await client.room_send(room, event_type, content, ignore_unverified_devices=True)
    else:
        if not known.members_synced:
            await client.joined_members(room)
            if client.should_query_keys:
                await client.keys_query()
        if client.olm.should_share_group_session(room):
            await client.share_group_session(room, ignore_unverified_devices=True)
        kind, encrypted = client.encrypt(room, event_type, content)
        method, path, data = Api.room_send(
            client.access_token, room, kind, encrypted, str(time.time_ns())
        )
        sent = await client._send(RoomSendResponse, method, path, data, (room,))
    if not isinstance(sent, RoomSendResponse):
        raise BenchError(f"{client.user_id} could not send to {room}: {sent}")
    return str(sent.event_id)


def annotation(target: str, key: str) -> dict[str, Any]:
    return {"m.relates_to": {"rel_type": "m.annotation", "event_id": target, "key": key}}

"""The fake Slack in HTTP mode (``world.post_events_to(url)``): each event is POSTed to the
app as Slack's Events API does, signed with the signing secret —
``X-Slack-Signature: v0=<hex HMAC-SHA256 of "v0:{timestamp}:{body}">`` and
``X-Slack-Request-Timestamp`` — as JSON; an interaction as a form with one field,
``payload``. An event not answered 200 within ``world.ack_timeout`` is retried, up to 3
times after ``world.http_retry_delays``, with ``X-Slack-Retry-Num`` and
``X-Slack-Retry-Reason`` (``http_timeout``, ``http_error``), as Slack retries; an
interaction is not retried. Every attempt is kept in :attr:`Poster.attempts`."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import time
import urllib.parse
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import aiohttp

if TYPE_CHECKING:
    from tests.fakes.slack.world import SlackWorld

__all__ = ["Attempt", "Poster", "sign"]


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """``X-Slack-Signature`` for ``body`` sent at ``timestamp``."""
    base = f"v0:{timestamp}:".encode() + body
    return "v0=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class Attempt:
    kind: str
    retry: int
    status: int | None  # None: no answer in time, or no connection


class Poster:
    """The HTTP side of one world (``world.http``)."""

    def __init__(self, world: SlackWorld) -> None:
        self.world = world
        self.attempts: list[Attempt] = []
        self._session: aiohttp.ClientSession | None = None

    async def deliver(self, kind: str, payload: dict[str, Any]) -> None:
        self.world.later(self._post(kind, payload))

    async def _post(self, kind: str, payload: dict[str, Any]) -> None:
        if kind == "interactive":
            body = urllib.parse.urlencode({"payload": json.dumps(payload)}).encode()
            await self._once(kind, body, "application/x-www-form-urlencoded", 0, "")
            return
        body = json.dumps(payload).encode()
        reason = await self._once(kind, body, "application/json", 0, "")
        for retry, delay in enumerate(self.world.http_retry_delays[:3], start=1):
            if reason is None:
                return
            await asyncio.sleep(delay)
            reason = await self._once(kind, body, "application/json", retry, reason)
        if reason is not None:
            self.world.dropped.append(payload)

    async def _once(
        self, kind: str, body: bytes, content_type: str, retry: int, reason: str
    ) -> str | None:
        """Post once; None when answered 200, else the retry reason."""
        url = self.world.http_url
        if url is None:
            raise RuntimeError("no URL to post events to")
        timestamp = str(int(time.time()))
        headers = {
            "Content-Type": content_type,
            "X-Slack-Request-Timestamp": timestamp,
            "X-Slack-Signature": sign(self.world.signing_secret, timestamp, body),
            "User-Agent": "Slackbot 1.0 (+https://api.slack.com/robots)",
        }
        if retry:
            headers["X-Slack-Retry-Num"] = str(retry)
            headers["X-Slack-Retry-Reason"] = reason
        if self._session is None:
            self._session = aiohttp.ClientSession()
        timeout = aiohttp.ClientTimeout(total=self.world.ack_timeout)
        try:
            async with self._session.post(
                url, data=body, headers=headers, timeout=timeout
            ) as answer:
                await answer.read()
                self.attempts.append(Attempt(kind, retry, answer.status))
                return None if answer.status == 200 else "http_error"
        except (TimeoutError, aiohttp.ClientError):
            self.attempts.append(Attempt(kind, retry, None))
            return "http_timeout"

    async def stop(self) -> None:
        if self._session is not None:
            await self._session.close()

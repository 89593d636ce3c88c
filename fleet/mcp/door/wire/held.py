"""The server's messages that no answer carries (a request of its own, a notice that its
tools changed, a log line), held for the agent's listening stream (its GET) until it reads
them, within a cap of messages and bytes."""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import AsyncGenerator
from typing import Final

from fleet.mcp.wire import MAX_MESSAGE

log = logging.getLogger(__name__)

HELD: Final = 256
"""Messages kept for an agent not reading them, oldest dropped past it."""
HELD_BYTES: Final = 4 * MAX_MESSAGE
"""Bytes of them kept at most: a server that talks on and on costs the door no more."""


class Held:
    """The messages held for one session's listener (``what`` names it in the log)."""

    def __init__(self, what: str) -> None:
        self._what = what
        self._messages: deque[bytes] = deque()
        self._bytes = 0
        self._heard = (
            asyncio.Event()
        )  # something was held, the session ended, or a new listener came
        self._over = False
        self._listener = 0  # which listener reads now, 0: none (a new one takes over)
        self._count = 0

    def hold(self, message: bytes) -> None:
        """Keep ``message`` for the listener, dropping the oldest past the caps."""
        self._messages.append(message)
        self._bytes += len(message)
        while len(self._messages) > HELD or self._bytes > HELD_BYTES:
            self._bytes -= len(self._messages.popleft())
            log.warning("MCP door: %s is not listening; its oldest message dropped", self._what)
        self._heard.set()

    def end(self) -> None:
        """The session ended: the listener stops after what is held."""
        self._over = True
        self._heard.set()

    @property
    def listening(self) -> bool:
        """Whether a listener reads (then what is held goes to it)."""
        return self._listener > 0

    async def listen(self) -> AsyncGenerator[bytes, None]:
        """The messages as they come, until the session ends or another listener takes
        over: one stream at a time carries them, and an agent whose stream broke without a
        word (nothing was written to find it gone) opens the next one."""
        self._count += 1
        mine = self._listener = self._count
        self._heard.set()  # the listener before, if any, ends
        try:
            while self._listener == mine:
                while self._messages and self._listener == mine:
                    message = self._messages.popleft()
                    self._bytes -= len(message)
                    yield message
                if self._over:
                    return
                self._heard.clear()
                await self._heard.wait()
        finally:
            if self._listener == mine:
                self._listener = 0

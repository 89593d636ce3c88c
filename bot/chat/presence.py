"""Showing that the bot is at work: "typing…" while a slow command is handled.

A command answered within :data:`TYPING_DELAY` causes no typing traffic at all; one that
takes longer shows the bot typing where the answer will go until it is sent. Connectors
never raise for typing notices (:meth:`connectors.base.Connector.typing`); anything else
that goes wrong here is logged, never the command's failure.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Final

from connectors.base import Connector, RoomId, ThreadId

log = logging.getLogger(__name__)

TYPING_DELAY: Final = 1.0
"""Seconds a command may take before the bot shows it is typing."""

Sleep = Callable[[float], Awaitable[None]]


@contextlib.asynccontextmanager
async def typing_after(
    connector: Connector,
    room: RoomId,
    thread: ThreadId | None,
    *,
    delay: float = TYPING_DELAY,
    sleep: Sleep = asyncio.sleep,
) -> AsyncIterator[None]:
    """While the block runs, after ``delay`` seconds, show the bot typing in ``room``
    (``thread``) until the block ends. ``sleep`` waits the delay (a test's own)."""
    finished = asyncio.Event()
    shown = False

    async def show() -> None:
        nonlocal shown
        await sleep(delay)
        shown = True
        async with connector.typing(room, thread):
            await finished.wait()

    task = asyncio.create_task(show(), name=f"typing-{connector.name}")
    try:
        yield
    finally:
        finished.set()
        if not shown:
            task.cancel()  # still waiting out the delay: nothing was sent
        try:
            await task
        except asyncio.CancelledError:
            current = asyncio.current_task()
            if current is not None and current.cancelling():
                raise
        except Exception:
            log.warning("typing notice on %s failed", connector.name, exc_info=True)

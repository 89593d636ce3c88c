"""Waiting for a condition in a test: poll it until a deadline, never a fixed sleep."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")

__all__ = ["eventually"]


async def eventually(probe: Callable[[], T | Awaitable[T]], what: str, within: float = 10.0) -> T:
    """``probe``'s first truthy answer (it may be a coroutine function), polled with a
    growing pause; AssertionError naming ``what`` if none comes ``within`` seconds."""
    deadline = time.monotonic() + within
    pause = 0.01
    while True:
        found = probe()
        if isinstance(found, Awaitable):
            found = await found
        if found:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {within} s: {what}")
        await asyncio.sleep(pause)
        pause = min(pause * 2, 0.1)

"""A tool call waiting on its ask, with its agent watched: an agent that hangs up while its
call is asked (its HTTP connection closed, no ``notifications/cancelled`` sent) withdraws
the ask, and the call is never relayed — a late yes can run nothing.

aiohttp neither cancels a handler when its client hangs up nor tells it (3.14, the app's
runner without ``handler_cancellation``): the connection's transport is gone or closing
then, which only looking shows, so the wait looks every :data:`GONE_SECONDS`."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Final

from fleet.mcp.hooks import Verdict

GONE_SECONDS: Final = 0.25
"""How often a call being asked looks whether its agent is still there."""
HUNG_UP: Final = "the agent hung up while the call was asked"

Gone = Callable[[], bool]
"""Whether the agent that posted a request has hung up (its connection closed)."""


def there() -> bool:
    """An agent never seen to hang up (a request with no connection to watch)."""
    return False


async def verdict_while_there(asking: asyncio.Future[Verdict], gone: Gone) -> Verdict | None:
    """``asking``'s verdict; ``None`` when the agent hung up first (the ask then cancelled,
    its withdrawal done) or before the verdict could be acted on. A cancelled ``asking``
    raises :class:`asyncio.CancelledError`; so does this wait cancelled, ``asking`` with it."""
    try:
        while not asking.done():
            await asyncio.wait({asking}, timeout=GONE_SECONDS)
            if not asking.done() and gone():
                asking.cancel()  # the ask is withdrawn: its verdict would reach no one
                await asyncio.wait({asking})
                return None
    except asyncio.CancelledError:
        asking.cancel()
        raise
    if gone():
        return None
    return asking.result()

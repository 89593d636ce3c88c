"""What connectors share on the way in: the queue behind ``inbound()``, the rule for a
connector's own command prefix, and stopping a receive loop."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

from connectors.base import InboundMessage
from connectors.errors import ConnectorError

log = logging.getLogger(__name__)

MAX_PREFIX = 8


def check_prefix(value: str | None) -> str | None:
    """``value`` if it is a usable command prefix (or ``None``); else ``ValueError``."""
    if value is not None and (
        not value or len(value) > MAX_PREFIX or any(c.isspace() for c in value)
    ):
        raise ValueError(f'a command prefix is 1-{MAX_PREFIX} characters with no spaces, e.g. "!"')
    return value


async def cancel_and_wait(task: asyncio.Task[None] | None) -> None:
    """Cancel ``task`` and wait until it has ended, whatever it raised; a cancellation of
    the caller itself still propagates."""
    if task is None:
        return
    task.cancel()
    try:
        await task
    except asyncio.CancelledError:
        current = asyncio.current_task()
        if current is not None and current.cancelling():
            raise  # the caller is being cancelled too
    except Exception:  # it failed as it stopped: said here, as nothing awaits it again
        log.warning("%s ended with an error as it was stopped", task.get_name(), exc_info=True)


async def let_readers_start() -> None:
    """Give the event loop two turns: the reader an :meth:`Inbox.put` woke takes the message
    and starts its handling task, and that task takes its first step. A receive loop calls
    this after handing messages over and before it sets up its next request, so that their
    handling does not wait behind that set-up."""
    await asyncio.sleep(0)
    await asyncio.sleep(0)


class Inbox:
    """Messages a connector received, in order, until it is closed — or failed, when the
    connection is lost for good: the stream then ends by raising why."""

    def __init__(self) -> None:
        self._queue: asyncio.Queue[InboundMessage | None] = asyncio.Queue()
        self._failure: ConnectorError | None = None

    def put(self, message: InboundMessage) -> None:
        self._queue.put_nowait(message)

    def close(self) -> None:
        """End the stream for every reader, after what was already put."""
        self._queue.put_nowait(None)

    def fail(self, error: ConnectorError) -> None:
        """End the stream like :meth:`close`, raising ``error`` in every reader."""
        self._failure = self._failure or error
        self.close()

    async def messages(self) -> AsyncIterator[InboundMessage]:
        """The messages as they come; ends once :meth:`close` was called."""
        while True:
            message = await self._queue.get()
            if message is None:
                self._queue.put_nowait(None)  # a later reader ends too
                if self._failure is not None:
                    raise self._failure
                return
            yield message

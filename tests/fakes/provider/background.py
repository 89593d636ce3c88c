"""The fake provider on its own thread and event loop, for tests that drive a real
``fleetwarden run`` process synchronously."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager

from tests.fakes.provider.by_agent import FakeProviderByAgent
from tests.fakes.provider.server import Accepted, FakeProvider, Turn


@contextmanager
def fake_provider_thread(
    *turns: Turn, default: Turn | None = None, accept: Accepted | None = None
) -> Iterator[FakeProvider]:
    """A started :class:`FakeProvider` served from a daemon thread; stopped on exit. Read
    its ``requests`` and ``emitted`` only after the clients are done."""
    loop = asyncio.new_event_loop()
    fake = FakeProvider(*turns, default=default, accept=accept)
    thread = threading.Thread(target=loop.run_forever, name="fake-provider", daemon=True)
    thread.start()
    try:
        asyncio.run_coroutine_threadsafe(fake.start(), loop).result(timeout=10)
        yield fake
    finally:
        asyncio.run_coroutine_threadsafe(fake.stop(), loop).result(timeout=10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)
        loop.close()


@contextmanager
def fake_provider_by_agent_thread(
    scripts: Mapping[str, Sequence[Turn]],
    *,
    default: Turn | None = None,
    accept: Accepted | None = None,
    answers: Mapping[str, Turn] | None = None,
) -> Iterator[FakeProviderByAgent]:
    """A started :class:`FakeProviderByAgent` served from a daemon thread; stopped on exit."""
    loop = asyncio.new_event_loop()
    fake = FakeProviderByAgent(scripts, default=default, accept=accept, answers=answers)
    thread = threading.Thread(target=loop.run_forever, name="fake-provider", daemon=True)
    thread.start()
    try:
        asyncio.run_coroutine_threadsafe(fake.start(), loop).result(timeout=10)
        yield fake
    finally:
        asyncio.run_coroutine_threadsafe(fake.stop(), loop).result(timeout=10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)
        loop.close()

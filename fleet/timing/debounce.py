"""Work done soon after a change, at most once an interval: :class:`Debounced`.

A poke runs the work at once when none ran within the interval, else once when the
interval is over — however many pokes came meanwhile. Between changes nothing waits: no
task lives while nothing changed. What periodic work has to run whether or not anything
changed is a scheduler job instead (:mod:`scheduler`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

log = logging.getLogger(__name__)


class Debounced:
    """``work`` run after :meth:`poke`, at most once every ``every`` seconds, from
    :meth:`start` to :meth:`stop`; a failure of it is logged as ``failure``."""

    def __init__(
        self, work: Callable[[], Awaitable[None]], every: float, *, name: str, failure: str
    ) -> None:
        self._work = work
        self._every = every
        self._name = name
        self._failure = failure
        self._on = False
        self._poked = False
        self._task: asyncio.Task[None] | None = None
        self._timer: asyncio.TimerHandle | None = None  # the interval after a run

    def start(self) -> None:
        """Run from now on, at once if poked before (call it on the running loop)."""
        self._on = True
        self._go()

    def poke(self) -> None:
        """Something changed: run soon (on the running loop)."""
        self._poked = True
        self._go()

    async def stop(self) -> None:
        """No run from now on; one under way is cancelled."""
        self._on = False
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def _go(self) -> None:
        if not (self._on and self._poked) or self._task is not None or self._timer is not None:
            return
        self._poked = False
        self._task = asyncio.get_running_loop().create_task(self._run(), name=self._name)

    async def _run(self) -> None:
        try:
            await self._work()
        except Exception:
            log.exception("%s", self._failure)
        finally:
            self._task = None
            if self._on:
                self._timer = asyncio.get_running_loop().call_later(self._every, self._cooled)

    def _cooled(self) -> None:
        self._timer = None
        self._go()

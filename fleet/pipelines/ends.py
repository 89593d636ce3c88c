"""Which stage runs' ends the chat has been told of, so a gate's ask follows the news of
the run it asks about: a stage's task is done as soon as its run's end is recorded, while
the run's last output and its summary are posted by listeners of the same end that come
before the pipelines' own; the ask waits (a while at most) until the pipelines hear that
end, which is after them."""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Sequence
from typing import Final

WAIT: Final = 15.0
"""Seconds an ask waits at most for its run's end to be heard (a run that ended while
Fleetwarden was away is never heard again: its ask goes after this)."""
KEPT: Final = 256
"""Run ids whose end was heard, kept so an end heard before it was expected waits for
nothing."""


class RunEnds:
    """The ends of stage runs expected (their task ended with them) and heard."""

    def __init__(self, wait: float = WAIT) -> None:
        self._wait = wait
        self._expected: dict[int, asyncio.Event] = {}
        self._heard: deque[int] = deque(maxlen=KEPT)

    def expect(self, runs: Sequence[int]) -> None:
        """The end of the last of ``runs`` (a task's) is on its way to the listeners: the
        task ended with it."""
        if runs and runs[-1] not in self._heard:
            self._expected.setdefault(runs[-1], asyncio.Event())

    def heard(self, run_id: int) -> None:
        """Every listener before the pipelines has heard ``run_id``'s end."""
        self._heard.append(run_id)
        found = self._expected.pop(run_id, None)
        if found is not None:
            found.set()

    async def told(self, run_id: int) -> None:
        """Return once ``run_id``'s end, when expected, was heard (or :data:`WAIT` passed)."""
        found = self._expected.get(run_id)
        if found is None:
            return
        try:
            await asyncio.wait_for(found.wait(), self._wait)
        except TimeoutError:
            self._expected.pop(run_id, None)

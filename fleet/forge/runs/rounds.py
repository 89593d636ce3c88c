"""The forge's periodic work as rounds for a scheduler to run: the watch over the live
forge runs (:class:`~fleet.forge.runs.watch.ForgeWatch`), each polled forge's read
(:class:`~fleet.forge.runs.polling.ForgePolling`) and the renewal of the GitHub Apps'
tokens for git (:class:`~fleet.forge.api.git_tokens.GitTokens`).

A round that fails is logged and the next one runs. Once :meth:`Rounds.stop` has run, no
round is under way and none starts."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence

from fleet.forge.api.git_tokens import RENEW_SECONDS, GitTokens
from fleet.forge.runs.polling import ForgePolling
from fleet.forge.runs.watch import INTERVAL, ForgeWatch

log = logging.getLogger(__name__)


class Rounds:
    """What of the forge's periodic work there is here, each a round at a time."""

    def __init__(
        self,
        *,
        watch: ForgeWatch | None = None,
        polls: Sequence[ForgePolling] = (),
        tokens: GitTokens | None = None,
    ) -> None:
        self._watch = watch
        self._polls = {polling.forge: polling for polling in polls}
        self._tokens = tokens
        self._under_way: set[asyncio.Task[None]] = set()
        self._stopped = False

    @property
    def watch_seconds(self) -> float | None:
        """How often the watch runs; None: there is none."""
        return None if self._watch is None else INTERVAL

    @property
    def poll_seconds(self) -> Mapping[str, float]:
        """How often each polled forge is read, by forge."""
        return {forge: polling.seconds for forge, polling in self._polls.items()}

    @property
    def renew_seconds(self) -> float | None:
        """How often the Apps' tokens for git are renewed; None: no repository uses one."""
        return RENEW_SECONDS if self._tokens is not None and self._tokens.wanted else None

    async def watch(self) -> None:
        """One round over the live forge runs."""
        if self._watch is not None:
            await self._guarded(self._watch.tick, "the forge runs' round failed")

    async def poll(self, forge: str) -> None:
        """One read of ``forge`` (nothing when it is not polled)."""
        polling = self._polls.get(forge)
        if polling is not None:
            await self._guarded(polling.round, f"polling forge {forge} failed")

    async def renew_tokens(self) -> None:
        """One renewal of the Apps' tokens for git (each failure is said on its own)."""
        if self._tokens is not None:
            await self._guarded(self._tokens.renew, "renewing the forges' git tokens failed")

    async def stop(self) -> None:
        """End the round under way, if any; none starts after."""
        self._stopped = True
        me = asyncio.current_task()
        ending = [task for task in self._under_way if task is not me]
        for task in ending:
            task.cancel()
        await asyncio.gather(*ending, return_exceptions=True)

    async def _guarded(self, step: Callable[[], Awaitable[None]], failed: str) -> None:
        """``step`` in a task of its own, which :meth:`stop` ends; its failure logged."""
        if self._stopped:
            return

        async def run() -> None:
            try:
                await step()
            except Exception:
                log.exception("%s", failed)

        task = asyncio.get_running_loop().create_task(run())
        self._under_way.add(task)
        try:
            await task
        except asyncio.CancelledError:
            current = asyncio.current_task()
            if current is not None and current.cancelling():
                raise  # the caller itself was cancelled (and so was the round)
            # Ended by stop: the round is over, quietly.
        finally:
            self._under_way.discard(task)

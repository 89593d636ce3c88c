"""Reading what agents did: an agent's latest events through its runtime's parser, where a
run's output is (for the live feed), and runs' stories (for summaries and ``runs NAME``)."""

from __future__ import annotations

import asyncio

from fleet.backends.base import backend_key
from fleet.errors import FleetError
from fleet.ledger.stores.running.runs import RunsStore
from fleet.runs.keeper import RunKeeper
from fleet.runs.output.reader import Transcript, last_entries
from fleet.runs.output.reading import RunOutput
from fleet.runs.output.stories import RunStories
from fleet.runtimes import RuntimeRegistry
from fleet.transcript.events import PlainText, StreamParser
from fleet.transcript.logtail import tail_lines

SCREEN_LINES = 40  # of a log, shown as an ended agent's screen


class AgentOutputs:
    """What the fleet's agents wrote, read as :mod:`fleet.transcript` events."""

    def __init__(
        self,
        runs: RunKeeper,
        run_records: RunsStore,
        stories: RunStories,
        runtimes: RuntimeRegistry,
    ) -> None:
        """``runs``: the runs as they go; ``run_records``: as the ledger keeps them;
        ``stories``: runs' stories, for summaries."""
        self._runs = runs
        self._run_records = run_records
        self._runtimes = runtimes
        self.stories = stories

    async def transcript(self, name: str, entries: int) -> Transcript:
        """The agent's last ``entries`` events (``UnknownAgent`` if nobody knows it), each
        run read by its runtime's parser."""
        record = await self._runs.record(name)
        tty = self._runs.backend(backend_key(record.spec)).tty
        runtimes, default = self._runtimes, record.spec.runtime

        def parser(runtime: str | None) -> StreamParser:
            try:
                return runtimes.get(runtime or default).parser(tty)
            except FleetError:  # a runtime this Fleetwarden no longer knows
                return PlainText()

        log_path = self._runs.log_path(record.name)
        return await asyncio.to_thread(last_entries, log_path, entries, parser)

    async def on_terminal(self, name: str) -> bool:
        """Whether ``name`` runs on a terminal (tmux), where its screen is what it shows."""
        record = await self._runs.record(name)
        return self._runs.backend(backend_key(record.spec)).tty

    async def screen(self, name: str) -> str:
        """What the agent's screen shows now (the log's end once it has stopped)."""
        record = await self._runs.record(name)
        run = await self._run_records.last_run(record.name)
        if record.state.is_live and run is not None and run.ended_at is None:
            return await self._runs.backend(run.handle.backend).snapshot(run.handle)
        log_path = self._runs.log_path(record.name)
        return "\n".join(await asyncio.to_thread(tail_lines, log_path, SCREEN_LINES))

    async def of_run(self, run_id: int) -> RunOutput | None:
        """Where run ``run_id``'s output is read from, with a fresh parser of its stream."""
        return await self._runs.output_of(run_id)

    async def open_runs(self) -> list[tuple[str, int]]:
        """The runs the ledger believes open, as (agent, run id): after a restart of
        Fleetwarden, those it reattached."""
        return [(run.agent, run.id) for run in await self._run_records.open_runs()]

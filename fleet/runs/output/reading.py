"""Reading a run's output: where it is and how its stream is parsed (for the live feed),
a new run's first moments (a CLI that ends at once is answered with its summary), and the
report of how a run went, read from its output once it ended
(:mod:`fleet.ledger.stores.running.runs`)."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from fleet.backends.base import Backend
from fleet.ledger.records.rows import RunRecord
from fleet.ledger.stores.running.agents import AgentsStore
from fleet.ledger.stores.running.runs import RunEnd, RunReport, RunsStore
from fleet.model import ExitInfo
from fleet.names import AgentName
from fleet.runs.launch.launch_kit import FleetSettings
from fleet.runs.layout import MARKER
from fleet.runs.output.facts import read_run
from fleet.runtimes import RuntimeRegistry
from fleet.sandbox.git.git_probe import GitProbe
from fleet.transcript.events import StreamParser
from fleet.transcript.logtail import size_of
from fleet.transcript.story import Outcome, why


@dataclass(frozen=True, slots=True)
class Launched:
    """A run just launched: where its output begins in the log, its pid, its ledger id."""

    offset: int
    pid: int
    run_id: int


@dataclass(frozen=True, slots=True)
class RunOutput:
    """Where a run's output is: the agent's log, the byte its run begins at, and a fresh
    parser of its runtime's stream."""

    log: Path
    offset: int
    parser: StreamParser


class RunReading:
    """The runs' output, read for the feed, a launch's first moments and a run's report."""

    def __init__(
        self,
        *,
        agents: AgentsStore,
        runs: RunsStore,
        runtimes: RuntimeRegistry,
        backends: Mapping[str, Backend],
        settings: FleetSettings,
        git: GitProbe,
    ) -> None:
        self._agents = agents
        self._runs = runs
        self._runtimes = runtimes
        self._backends = backends
        self._settings = settings
        self._git = git
        self.settling: set[int] = set()  # runs whose launcher waits on their first moments

    def _tty(self, backend: str) -> bool:
        found = self._backends.get(backend)
        return found is not None and found.tty

    async def output_of(self, run_id: int) -> RunOutput | None:
        """Where run ``run_id``'s output is read from, with a fresh parser of its stream."""
        start = await self._runs.run_start(run_id)
        report = await self._runs.run_report(run_id)
        if start is None or report is None:
            return None
        record = await self._agents.get_agent(report.run.agent)
        if record is None:
            return None
        parser = self._runtimes.get(record.spec.runtime).parser(
            self._tty(report.run.handle.backend)
        )
        return RunOutput(report.run.log_path, start.log_offset, parser)

    async def first_moments(self, log_path: Path, launched: Launched) -> RunReport | None:
        """Wait out a new run's first moments — up to ``reply_wait`` seconds, less once it
        has written something to ``log_path`` and gone quiet — and return its report if it
        ended in them (a CLI that exits at once: its summary says why)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._settings.reply_wait
        last_size, last_change = launched.offset, loop.time()
        self.settling.add(launched.run_id)
        try:
            while loop.time() < deadline:
                report = await self._runs.run_report(launched.run_id)
                if report is not None and report.end is not None:
                    return report
                await asyncio.sleep(0.05)
                size, now = size_of(log_path), loop.time()
                if size != last_size:
                    last_size, last_change = size, now
                elif size > launched.offset and now - last_change >= self._settings.reply_quiet:
                    break
            return None
        finally:
            self.settling.discard(launched.run_id)

    async def report_end(
        self,
        name: AgentName,
        run: RunRecord,
        info: ExitInfo,
        log_path: Path,
        *,
        outcome: Outcome | None,
        ending_reason: str | None,
    ) -> None:
        """Read the run's output and record how it went; ``outcome`` and ``ending_reason``:
        how Fleetwarden ended it, when it did (else the exit status says)."""
        start = await self._runs.run_start(run.id)
        record = await self._agents.get_agent(name)
        if start is None or record is None:
            return
        runtime = self._runtimes.get(record.spec.runtime)
        reading = await asyncio.to_thread(
            read_run, log_path, start.log_offset, runtime.parser(self._tty(run.handle.backend)),
            MARKER,
        )  # fmt: skip
        if outcome is None:
            outcome = Outcome.FINISHED if info.exit_code == 0 else Outcome.FAILED
        said = why(
            outcome,
            reading,
            runtime=record.spec.runtime,
            exit_reason=info.reason,
            ending_reason=ending_reason,
            has_account=bool(start.accounts),
        )
        cli_end = reading.ended
        await self._runs.record_run_end(
            run.id,
            RunEnd(
                outcome=outcome.value,
                why=said,
                git_after=await self._git.head(Path(start.workdir)) if start.workdir else None,
                turns=cli_end.turns if cli_end is not None else None,
                cli_duration_ms=cli_end.duration_ms if cli_end is not None else None,
                cli_cost_usd=cli_end.cost_usd if cli_end is not None else None,
                last_message=reading.last_message,
                tool_calls=reading.tool_calls,
                unreadable_lines=reading.unreadable,
            ),
        )

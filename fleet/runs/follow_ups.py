"""Giving a running agent more work (``send``): typed into the agent that reads its input
(the stub, a TUI in tmux), taken in-band by a live session in its turn, or — for a
headless CLI whose run has ended — a new run that resumes its session with the text
(``claude -p TEXT --resume ID``), planned by its runtime.
"""

from __future__ import annotations

import asyncio

from fleet.errors import AgentNotRunning
from fleet.ledger.records.rows import AgentRecord
from fleet.ledger.stores.running.runs import RunReport, RunsStore
from fleet.runs.keeper import RunKeeper
from fleet.runs.output.reading import Launched
from fleet.runtimes import RuntimeRegistry
from fleet.sessions.live import LiveSessions
from fleet.transcript.logtail import tail_lines


class FollowUps:
    """Sends the fleet's agents more work, under each agent's lock."""

    def __init__(
        self,
        run_records: RunsStore,
        runs: RunKeeper,
        runtimes: RuntimeRegistry,
        sessions: LiveSessions,
    ) -> None:
        self._run_records = run_records
        self._runs = runs
        self._runtimes = runtimes
        self._sessions = sessions

    async def send(self, name: str, text: str, by: str) -> RunReport | None:
        """Give ``name`` more work (see the module); a new run's report if it ended at once."""
        record = await self._runs.record(name)
        async with self._runs.lock(record.name):
            record = await self._runs.record(name)
            if await self._sessions.took(record.name, text):  # in-band, in its turn
                return None
            record = await self._runs.record(name)
            # A new run's token is made with its plan: refused, the token goes with it.
            async with self._runs.tokens.launching(record.name):
                launched = await self._follow_up(record, text, by)
            if launched is None:
                return None
        return await self._runs.first_moments(record.name, launched)

    async def _follow_up(self, record: AgentRecord, text: str, by: str) -> Launched | None:
        """``text`` typed into ``record``'s agent (``None``), or the new run that takes it."""
        log_path = self._runs.log_path(record.name)
        ctx = self._runs.context(record.spec)
        runtime = self._runtimes.get(record.spec.runtime)
        tail = await asyncio.to_thread(tail_lines, log_path, 500)
        session = runtime.session_id("\n".join(tail))
        plan = runtime.follow_up(record.spec, ctx, session, text)
        if plan is None:
            run = await self._run_records.last_run(record.name)
            if not record.state.is_live or run is None or run.ended_at is not None:
                raise AgentNotRunning(
                    f"{record.name} is {record.state.value}, not running — spawn it first"
                )
            await self._runs.backend(run.handle.backend).send_input(run.handle, text)
            return None
        if record.state.is_live:
            raise AgentNotRunning(
                f"{record.name} is still working on its last prompt; wait for it to "
                f"finish (`logs {record.name}`) or stop it"
            )
        return await self._runs.launch(record.spec, reason=f"follow-up from {by}", plan=plan)

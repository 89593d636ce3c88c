"""Forge work's hands on the fleet (:class:`~fleet.forge.launcher.ForgeLauncher`): a run
for an issue starts through the fleet's one admission
(:class:`~fleet.supervisor.admission.admit.Admission`), as an operator's ``spawn`` does —
the agent's other work, the budgets and every concurrency cap holding it in the fleet's
spawn queue (its issue saying ``queued`` with their words) until its turn comes — on a new
line named for the issue; a follow-up goes into the same session (thawed first when it was frozen)
while that session works on the run's line, or, that session gone, into the next run on
the same line, launched the same way; stops, pushes (of the run's own line) and the end of
a line go through the repositories as the verbs do."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Mapping
from typing import Final

from fleet.errors import FleetwardenError
from fleet.forge.launcher import LaunchRefused, OtherLine, Started
from fleet.ledger import SpawnAsk
from fleet.ledger.records.lines import LineRecord, LineState
from fleet.ledger.stores.code.lines import LinesStore
from fleet.ledger.stores.running.agents import AgentsStore
from fleet.ledger.stores.running.runs import RunsStore
from fleet.repos.desk import NoLine, RepoError
from fleet.repos.service import Repos
from fleet.repos.verbs import RepoVerbs
from fleet.supervisor.admission.admit import Admission
from fleet.supervisor.admission.queue import LaunchQueue
from fleet.supervisor.admission.request import Admitted, LaunchRequest, Queued, Refused
from fleet.supervisor.fleet import Fleet
from fleet.supervisor.turns import Turns

log = logging.getLogger(__name__)

NOT_ADMITTED: Final = "not started: the fleet's budgets do not allow another run now"
HELD_BY_BUDGET: Final = "the fleet's budgets do not allow another run now"
"""A run a budget deferred, as its issue says it (the budget's own words are the
operator's: the log and the audit keep them)."""
NOT_PREPARED: Final = (
    "not started: Fleetwarden could not prepare the run; the operator has the details"
)
"""A refused launch's words for the issue; the operator's detail goes to the log."""


class Waits(LaunchRefused):
    """The run is not started now because a concurrency cap is full (the cap's words its
    reason) or a budget deferred it (its public words :data:`HELD_BY_BUDGET`): it stays
    queued on its issue and starts once it is let."""


class FleetLauncher:
    """The fleet and the repositories, as forge work drives them."""

    def __init__(
        self,
        fleet: Fleet,
        repos: Repos,
        verbs: RepoVerbs,
        agents: AgentsStore,
        runs: RunsStore,
        lines: LinesStore,
        admission: Admission,
        queue: LaunchQueue | None = None,
    ) -> None:
        """``queue``: the fleet's spawn queue, where a run waits that its agent's other
        work, a budget or a cap holds (``None``: nowhere to wait — such a launch is
        refused, its run kept queued on its issue saying why, and nothing starts it)."""
        self._fleet = fleet
        self._repos = repos
        self._verbs = verbs
        self._agents = agents
        self._runs = runs
        self._lines = lines
        self._admission = admission
        self._queue = queue
        self.turns = Turns(fleet.subscribe)  # an agent's turn under way, awaited

    async def repo_of(self, agent: str) -> str | None:
        try:
            return (await self._fleet.spec(agent)).repo
        except FleetwardenError:
            return None

    async def runtime_of(self, agent: str) -> str | None:
        """The runtime ``agent`` runs on, as the roster says (``None``: no such agent)."""
        try:
            return (await self._fleet.spec(agent)).runtime
        except FleetwardenError:
            return None

    async def agents(self) -> Mapping[str, str | None]:
        return {spec.name: spec.repo for spec in self._fleet.roster()}

    async def queued(self, key: int) -> bool:
        if self._queue is None:
            return False
        return any(
            e.origin == "forge" and e.ref == str(key) for e in await self._queue.slots.queue()
        )

    def kick(self) -> None:
        """An agent may be free for its next forge run (a run of it ended): the spawn
        queue looks for what may start."""
        if self._queue is not None:
            self._queue.kick()

    async def unqueue(self, key: int) -> None:
        if self._queue is None:
            return
        for entry in await self._queue.slots.queue():
            if entry.origin == "forge" and entry.ref == str(key):
                await self._queue.cancel(entry.id)  # one being started now ends by itself

    async def start(self, request: LaunchRequest, *, key: int | None = None) -> Started:
        if key is None or self._queue is None:
            return await self._launched(request)
        agent, ref = request.agent, str(key)
        ask = SpawnAsk(agent, "", request.by, "", "", "", origin="forge", ref=ref)
        turn = await self._queue.turn_of(agent, "forge", ref)  # the queue's start of it
        admitting = self._admission.admit(request, self._queue.waiter(ask, turn), turn)
        return await self.launched(agent, admitting)

    async def start_on_line(self, request: LaunchRequest, line_id: int | None) -> Started:
        agent = request.agent
        line = await self._repos.line_of(agent)
        if line is None or line.repo != request.repo or line_id not in (None, line.id):
            raise LaunchRefused(
                f"not started: the branch of {agent}'s work on this issue has ended (its "
                "checkout was removed)"
            )
        # Not named anew: the live line is kept (fleet.repos.service.Repos.prepare).
        started = await self._launched(request)
        if started.line_id != line.id:  # never: the line was live; said if it ever is
            log.warning("%s's next run works on line %s, not %s", agent, started.line_id,
                        line.id)  # fmt: skip
        return started

    async def _launched(self, request: LaunchRequest) -> Started:
        """``request`` through the admission, with nowhere to wait: the run and the line it
        works on; else :class:`LaunchRefused` saying why not."""
        return await self.launched(request.agent, self._admission.admit(request))

    async def launched(self, agent: str, admitting: Awaitable[Admitted]) -> Started:
        """What came of ``agent``'s launch through the admission (``admitting``): the run
        and the line it works on; else :class:`LaunchRefused` saying why not —
        :class:`Waits` when a cap holds it."""
        try:  # the prompt is within fleet.forge.runs.prompts.PROMPT_BYTES, its rules at its end
            admitted = await admitting
        except FleetwardenError as exc:  # a config key, an upstream's words: the operator's
            raise LaunchRefused(NOT_PREPARED, f"not started: {exc}") from None
        if isinstance(admitted, Refused):
            said = f"not started: {admitted.why}"  # over its quote, busy: said on the issue too
            public = admitted.quote is not None or admitted.public
            raise LaunchRefused(said if public else NOT_ADMITTED, said)
        if isinstance(admitted, Queued) and (admitted.until is not None or admitted.held):
            raise Waits(HELD_BY_BUDGET, f"queued: {admitted.why}")
        if isinstance(admitted, Queued):
            raise Waits(admitted.why)
        if not admitted.outcome.started:
            raise LaunchRefused(f"not started: {agent} already runs")
        run = await self._runs.last_run(agent)
        line = await self._repos.line_of(agent)
        if run is None:
            raise LaunchRefused(f"not started: {agent} has no run")
        return Started(run.id, line.id if line is not None else None)

    async def follow_up(
        self, agent: str, text: str, *, by: str, line_id: int | None = None
    ) -> int | None:
        if line_id is not None:  # the agent's session works on its newest live line
            newest = await self._repos.line_of(agent)
            if newest is None or newest.id != line_id:
                raise OtherLine(await self._elsewhere(agent, newest, line_id))
        await self._fleet.thaw(agent)
        await self._fleet.send(agent, text, by=by)
        run = await self._runs.last_run(agent)
        return run.id if run is not None else None

    async def is_running(self, agent: str) -> bool:
        if agent in self._repos.launching:
            return True
        record = await self._agents.get_agent(agent)
        return record is not None and record.state.is_live

    async def is_frozen(self, agent: str) -> bool:
        return any(f.agent == agent for f in await self._fleet.frozen())

    async def stop(self, agent: str, *, by: str, line_id: int | None = None) -> None:
        if line_id is not None:
            line = await self._repos.line_of(agent)
            if line is None or line.id != line_id:
                return  # the agent works on something else now: not the forge run's
        if await self.is_running(agent):
            await self._fleet.thaw(agent)
            await self._fleet.stop_agent(agent, by=by)

    async def freeze(self, agent: str, *, by: str) -> None:
        await self._fleet.freeze(agent, reason="done: its pull request waits for review", by=by)

    async def _elsewhere(self, agent: str, newest: LineRecord | None, line_id: int) -> str:
        """Why ``agent``'s session is not line ``line_id``'s to continue, in words fit for
        the forge: the line ended, or the agent works on another one now (not named: it
        is other work's)."""
        own = await self.line(agent, line_id)
        if own is None or own.state is not LineState.LIVE:
            return (
                f"not continued: the branch of {agent}'s work on this issue has ended (its "
                "checkout was removed)"
            )
        return (
            f"not continued: {agent} works on another branch now, so its session is not this "
            "issue's; that branch is to be merged or discarded first"
        )

    async def line(self, agent: str, line_id: int | None = None) -> LineRecord | None:
        if line_id is None:
            return await self._repos.line_of(agent)
        line = await self._lines.line(line_id)
        return line if line is not None and line.agent == agent else None

    async def push(self, agent: str, line_id: int | None = None) -> str:
        async with self._repos.lock(agent):
            if line_id is None:
                line = await self._repos.live(agent)
            else:
                found = await self.line(agent, line_id)
                if found is None or found.state is not LineState.LIVE:
                    raise NoLine(f"the branch of {agent}'s line {line_id} is no longer live")
                line = found
            return await self._repos.push_line(line, draft=True)

    async def push_at_end(self, agent: str) -> None:
        self._repos.push_at_end(agent)

    async def push_refused(self, agent: str, line_id: int | None = None) -> str | None:
        return await self._repos.door.push_refused(agent, line_id)

    async def discard(self, agent: str, *, line_id: int | None = None) -> None:
        line = await self._repos.line_of(agent)
        if line is None or (line_id is not None and line.id != line_id):
            return  # its line ended already, or another is live: not the forge run's
        try:
            await self._verbs.discard(agent)
        except RepoError as exc:  # no live line (discarded by hand): nothing to end
            log.info("the line of %s was not ended: %s", agent, exc)

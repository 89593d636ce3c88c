"""The lines as the git door sees them: which door repo an agent fetches from and pushes to
for a repository — its policy brought up to date first: a forge run's pull request, once
open, is one its commits may name — and what the door's hook refused each line's current
run, counted in the ledger and told in that run's summary once each
(:mod:`fleet.repos.door.refusals`); :class:`fleet.repos.door.server.GitDoor` asks the one and tells
the other.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from pathlib import Path

from fleet.ledger.records.lines import LineRecord, LineState
from fleet.ledger.stores.code.forge import ForgeStore
from fleet.ledger.stores.code.lines import LinesStore
from fleet.ledger.stores.running.refusals import RefusalsStore
from fleet.names import AgentName
from fleet.repos import git as g
from fleet.repos.door.line_repo import own_pull
from fleet.repos.door.refusals import RunRefusals
from fleet.repos.hook.policy import Issue

log = logging.getLogger(__name__)


class DoorLines:
    """The git door's side of every live line: its door repo, its pull request told, and
    what was refused it."""

    def __init__(
        self,
        lines: LinesStore,
        forge: ForgeStore,
        refusals: RefusalsStore,
        line_repo: Callable[[LineRecord], Path],
    ) -> None:
        self._lines = lines
        self._forge = forge
        self._refusals = refusals
        self._line_repo = line_repo
        self.refusals = RunRefusals()  # what the door refused each line's current run
        self._pulls: dict[int, int] = {}  # line → its forge run's pull request, told its door
        self._pull_lock = asyncio.Lock()

    async def door_repo(self, agent: AgentName, repo: str) -> Path | None:
        """The door repo ``agent`` may fetch from and push to for ``repo``."""
        line = await self._lines.live_line(agent)
        if line is None or line.repo != repo:
            return None
        await self.own_pull(line)
        return self._line_repo(line)

    async def own_pull(self, line: LineRecord) -> None:
        """Tell ``line``'s door repo its forge run's pull request once it is open: the
        line's commits may name it, as they may name its issue."""
        if line.id in self._pulls:
            return
        # Read without the lock (agents without a pull request never wait on each other);
        # only the telling, once, is taken in turn.
        runs = await self._forge.forge_runs(agent=line.agent)
        found = next((r for r in runs if r.line_id == line.id and r.pull is not None), None)
        if found is None or found.pull is None:
            return
        async with self._pull_lock:
            if line.id in self._pulls:
                return
            try:
                await own_pull(self._line_repo(line), Issue(str(found.slug), found.pull))
            except g.GitFailed as exc:  # asked again at its next push
                log.warning("%s's door was not told its pull request: %s", line.agent, exc)
                return
            self._pulls[line.id] = found.pull

    async def refused(self, agent: AgentName, repo: str, refusals: list[dict[str, str]]) -> None:
        """Count what the git door's hook refused ``agent``."""
        line = await self._lines.live_line(agent)
        for refusal in refusals:
            ref, why = refusal.get("ref", "?"), refusal.get("why", "refused")
            if line is not None and not self.refusals.add(line.id, refusal.get("kind", ""), why):
                continue  # the run's end pushing again what its own push had refused
            await self._refusals.add_refusals(agent, "git", f"{repo} {ref}", why)
        if line is not None and refusals:
            why = refusals[-1].get("why", "refused")
            self.refusals.refused_at(line.id, why, await self._tip(line))

    async def push_refused(self, agent: str, line_id: int | None = None) -> str | None:
        """Why the git door refused the last push of ``agent``'s current run (on its
        newest live line, or ``line_id``), while nothing has reached its branch since."""
        if line_id is None:
            line = await self._lines.live_line(agent)
        else:
            line = await self._lines.line(line_id)
        if line is None or line.agent != agent or line.state is not LineState.LIVE:
            return None
        return self.refusals.still_refused(line.id, await self._tip(line))

    async def _tip(self, line: LineRecord) -> str | None:
        """The commit ``line``'s branch is at in its door repo (None: none yet)."""
        return await g.rev(self._line_repo(line), f"refs/heads/{line.branch}")

"""What operators do with runs' branches: see the diff, list the branches and the orphans,
merge a branch into its base upstream, push it, discard it — :class:`RepoVerbs`, the
:class:`fleet.repos.desk.RepoDesk` the bot's commands and pages use.

A verb acts only on a line whose run has ended (a running agent is still writing its
checkout: ``stop`` it first). ``merge`` fetches the base anew, lands the branch by the
strategy asked (:func:`fleet.repos.landing.land`) and pushes the base fast-forward only;
a conflict refuses with the files and changes nothing. ``discard`` and cleanup never take
away the last copy of a commit by surprise: the command asks first while the branch holds
commits on no upstream branch (:meth:`RepoVerbs.unpushed`).
"""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Sequence
from pathlib import Path

from fleet.model import AgentState
from fleet.repos.changes import diff_of, unpushed_count
from fleet.repos.checkouts import disk_bytes
from fleet.repos.desk import RepoError
from fleet.repos.facts import Change, Landed, LineRecord, LineState
from fleet.repos.landing import compare_url, land
from fleet.repos.schema import STRATEGIES, RepoEntry
from fleet.repos.service import Repos

_BUSY = frozenset({AgentState.STARTING, AgentState.RUNNING, AgentState.IDLE, AgentState.STALLED})


class RepoVerbs:
    """The operators' verbs on the lines of ``repos``."""

    def __init__(self, repos: Repos) -> None:
        self.repos = repos

    def names(self) -> Sequence[str]:
        return self.repos.names()

    def entry(self, repo: str) -> RepoEntry:
        return self.repos.entry(repo)

    async def fresh_next(self, agent: str) -> None:
        await self.repos.fresh_next(agent)

    async def requested_by(self, agent: str, co_author: str | None) -> None:
        await self.repos.requested_by(agent, co_author)

    async def line_of(self, agent: str) -> LineRecord | None:
        return await self.repos.line_of(agent)

    async def change(self, agent: str) -> Change:
        return await self.repos.change(agent)

    async def diff(self, agent: str, path: str | None = None) -> str:
        line = await self.repos.live(agent)
        mirror = self.repos.mirror(line.repo)
        return await diff_of(
            mirror.scratch,
            mirror.path,
            self.repos.line_repo(line),
            branch=line.branch,
            base_ref=line.base_ref,
            path=path,
        )

    async def lines(self, repo: str | None = None) -> Sequence[Change]:
        if repo is not None:
            self.repos.mirror(repo)  # an unknown name is refused, naming the known ones
        return [
            await self.repos.change_of(line)
            for line in await self.repos.ledger.lines(repo=repo)
            if line.checkout
        ]

    async def orphans(self) -> Sequence[str]:
        """Checkouts no live line has, and live lines whose checkout is gone."""
        lines = await self.repos.ledger.lines()
        lines = [line for line in lines if line.host == "local"]  # a host's: over its link
        known = {Path(line.checkout) for line in lines if line.checkout}
        found: list[str] = []
        for line in lines:
            if line.checkout and not await asyncio.to_thread(Path(line.checkout).is_dir):
                found.append(f"{line.branch} of {line.repo}: its checkout is gone")
        for checkout in await asyncio.to_thread(_checkouts, self.repos.checkouts):
            if checkout not in known:
                size = await disk_bytes(checkout)
                took = f" ({size // 1024:,} KiB)" if size is not None else ""
                found.append(f"{checkout.parent.name}/{checkout.name}: no live run has it{took}")
        return found

    async def unpushed(self, agent: str) -> int:
        line = await self.repos.live(agent)
        mirror = self.repos.mirror(line.repo)
        return await unpushed_count(
            mirror.scratch, mirror.path, self.repos.line_repo(line), line.branch
        )

    async def merge(
        self, agent: str, strategy: str | None, *, by: str, co_author: str | None = None
    ) -> Landed:
        async with self.repos.lock(agent):
            line = await self._ended(agent, "merge")
            entry = self.repos.entry(line.repo)
            chosen = strategy or entry.merge
            if chosen not in STRATEGIES:
                raise RepoError(f"no merge strategy {chosen!r}: use --squash, --rebase or --merge")
            mirror = self.repos.mirror(line.repo)
            await mirror.fetch()
            line_repo = self.repos.line_repo(line)
            trailers = [f"Fleetwarden-Agent: {line.agent}"]
            if line.last_run is not None:
                trailers.insert(0, f"Fleetwarden-Run: {line.last_run}")
            for person in dict.fromkeys(p for p in (line.co_author, co_author) if p):
                trailers.append(f"Co-authored-by: {person}")

            async def upstream(sha: str, ref: str) -> None:
                await mirror.push(sha, ref, objects=[line_repo])

            landed = await land(
                mirror.scratch,
                mirror.path,
                line_repo,
                branch=line.branch,
                base_ref=line.base_ref,
                strategy=chosen,
                message=f"{line.agent}: {line.branch} (merged by {by})",
                trailers=trailers,
                upstream_push=upstream,
            )
            if landed.new_sha is not None:
                await self.repos.ledger.update_line(
                    line.id,
                    state=LineState.MERGED,
                    merged_sha=landed.new_sha,
                    ended_at=None,
                )
                await self.repos.remove_checkout(line)
        return landed

    async def push(self, agent: str) -> str:
        async with self.repos.lock(agent):
            line = await self._ended(agent, "push")
            await self.repos.push_line(line)
        return compare_url(self.repos.entry(line.repo).url, line.base_ref, line.branch)

    async def discard(self, agent: str) -> LineRecord:
        async with self.repos.lock(agent):
            line = await self._ended(agent, "discard")
            await self.repos.ledger.update_line(line.id, state=LineState.DISCARDED, ended_at=None)
            await self.repos.remove_checkout(line)  # here or on its host
            await asyncio.to_thread(shutil.rmtree, self.repos.line_repo(line), True)
        return line

    async def _ended(self, agent: str, verb: str) -> LineRecord:
        """``agent``'s live line, when no run of it is starting, running or being kept
        (called under the agent's lock: a launch's prepare and a run's end take it too)."""
        line = await self.repos.live(agent)
        record = await self.repos.ledger.get_agent(agent)
        state = record.state.value if record is not None else "?"
        if agent in self.repos.launching or (record is not None and record.state in _BUSY):
            raise RepoError(
                f"{agent} is {'starting' if agent in self.repos.launching else state} and "
                f"still writing {line.branch}: `stop {agent}` first, then {verb}"
            )
        return line


def _checkouts(root: Path) -> list[Path]:
    """Every checkout directory under ``root`` (``<repo>/<agent>-<line>``)."""
    if not root.is_dir():
        return []
    return sorted(
        child
        for repo in root.iterdir()
        if repo.is_dir() and not repo.is_symlink()
        for child in repo.iterdir()
        if child.is_dir() and not child.is_symlink()
    )

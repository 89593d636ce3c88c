"""What the bot asks of the repositories: the face of :class:`fleet.repos.service.Repos`
that command handlers, the run summary and the dashboard are typed by."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from fleet.errors import FleetError
from fleet.ledger.records.lines import LineRecord
from fleet.repos.facts import Change, Landed
from fleet.repos.schema import RepoEntry


class RepoError(FleetError):
    """A repository verb that could not be done; the message is for the operator."""


class NoLine(RepoError):
    """The agent has no branch on any repository."""


class RepoDesk(Protocol):
    """The repositories, as the bot's commands and pages use them."""

    def names(self) -> Sequence[str]:
        """The configured repositories' names."""
        ...

    def entry(self, repo: str) -> RepoEntry:
        """The config of ``repo`` (:class:`RepoError` naming the known ones when unknown)."""
        ...

    async def line_of(self, agent: str) -> LineRecord | None:
        """``agent``'s live line, if it has one."""
        ...

    async def no_branch(self, agent: str) -> str:
        """Why ``agent`` has no live branch now — its last one merged or discarded, and
        when — and the ``spawn`` that cuts it one."""
        ...

    async def lines_named(self, branch: str) -> Sequence[LineRecord]:
        """The live lines whose branch is ``branch`` (an agent's earlier one, named)."""
        ...

    async def ready(self, agent: str, verb: str, line_id: int | None = None) -> LineRecord:
        """The line ``verb`` would act on, when no run is writing it now (raises
        :class:`RepoError` saying what to do first: ``stop`` the agent)."""
        ...

    async def change(self, agent: str, line_id: int | None = None) -> Change:
        """``agent``'s branch against its base now (raises :class:`NoLine`). Each verb acts
        on ``agent``'s newest live line, or on its live line ``line_id`` when given."""
        ...

    async def diff(self, agent: str, path: str | None = None, line_id: int | None = None) -> str:
        """The diff of ``agent``'s branch against its base (one file's when ``path``):
        the agent's text, unescaped (raises :class:`NoLine`)."""
        ...

    async def lines(self, repo: str | None = None) -> Sequence[Change]:
        """Every live line (of ``repo``), with ahead/behind, pushed, merged, clashes."""
        ...

    async def known_agents(self) -> Sequence[str]:
        """Every agent the fleet knows by name (with a branch or not)."""
        ...

    async def refresh(self, repo: str | None = None) -> Sequence[str]:
        """Fetch the upstreams the live lines (of ``repo``) are on, each within a bound, so
        ``lines`` tells how far each base moved now; what could not be fetched, and since
        when its counts stand, one line each."""
        ...

    async def orphans(self) -> Sequence[str]:
        """Checkouts without a line and lines without a checkout, one line of text each."""
        ...

    async def merge(
        self,
        agent: str,
        strategy: str | None,
        *,
        by: str,
        co_author: str | None = None,
        line_id: int | None = None,
        unreviewed: bool = False,
    ) -> Landed:
        """Land ``agent``'s branch on its base upstream (``strategy`` None: the repo's
        default); refuses with the conflicting files, changing nothing — and, unless
        ``unreviewed``, a tip its review agent did not approve."""
        ...

    async def push(self, agent: str, line_id: int | None = None, unreviewed: bool = False) -> str:
        """Push ``agent``'s branch upstream (unless ``unreviewed``, only at the commit its
        review agent approved, when one did); the URL to see it at."""
        ...

    async def approval(self, agent: str, line_id: int | None = None) -> str | None:
        """The commit the approval standing on ``agent``'s line is of, or ``None``."""
        ...

    async def unpushed(self, agent: str, line_id: int | None = None) -> int:
        """Commits of ``agent``'s branch on no upstream branch."""
        ...

    async def discard(self, agent: str, line_id: int | None = None) -> LineRecord:
        """Remove ``agent``'s checkout and branch; the line as it was."""
        ...

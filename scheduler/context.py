"""What the jobs act on: one :class:`JobContext`, built by the app when it starts and handed
to every run by the :class:`~scheduler.jobs.FleetScheduler`.

Each field is the narrow interface one job needs; the app supplies the real objects (the
supervisor, the budget service, the notifier, ...) and tests supply small fakes. A job
reaches nothing else: no registry, no lookup by name.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from fleet.budgets.model import Transition
from fleet.notices import Notice, NoticeBoard
from fleet.timing.clock import Clock
from fleet.watchdog.decisions import WatchedFleet
from scheduler.jobs import FleetScheduler


class PacingBook(Protocol):
    """The budgets as the pacing tick drives them."""

    async def tick(self) -> list[Transition]:
        """Re-read spend, apply the law and the policy; the ladder steps that changed."""
        ...

    def next_reset(self) -> datetime | None:
        """When the next budget window ends, if any does."""
        ...


class ReportMaker(Protocol):
    """Composes the pacing report (text and chart) as a notice for the home rooms."""

    async def pacing_report(self) -> Notice: ...

    async def claim(self, now: datetime, grace: timedelta) -> bool:
        """Whether this orchestrator posts the report due at ``now`` (none other did)."""
        ...


class Upkeep(Protocol):
    """The ledger's housekeeping."""

    async def prune_events(self, before: datetime) -> int:
        """Forget processed-event ids older than ``before``; how many were forgotten."""
        ...


class ScheduleRunner(Protocol):
    """Runs a stored operator schedule's command now."""

    async def run_schedule(self, schedule_id: int) -> str | None:
        """Run schedule ``schedule_id``; its outcome (``ok``, ``error``, ``denied``), or
        ``None`` when nothing ran (the schedule is gone, or this run already happened)."""
        ...


class QueueSweeper(Protocol):
    """The spawn queue, swept for launches that may start now."""

    async def sweep(self) -> int:
        """Start the queued launches whose caps allow them and whose time has come; how
        many were started."""
        ...


class Expiring(Protocol):
    """The approval requests, timed out when their deadline passed."""

    async def expire(self) -> Sequence[object]:
        """Deny every open request past its deadline, as a timeout; those it ended."""
        ...


class ForgeRounds(Protocol):
    """The forges' periodic work, a round at a time (:class:`fleet.forge.runs.rounds.Rounds`);
    each round logs its own failure."""

    async def watch(self) -> None:
        """One round over the live forge runs."""
        ...

    async def poll(self, forge: str) -> None:
        """One read of the polled forge ``forge``."""
        ...

    async def renew_tokens(self) -> None:
        """One renewal of the GitHub Apps' installation tokens for git."""
        ...


class FeedReader(Protocol):
    """The agent feed's one reader of the followed logs (:class:`bot.chat.agent_feed.AgentFeed`)."""

    async def look(self) -> None:
        """One look at every followed log: each follow whose log changed, or whose batch
        waits to go out, woken."""
        ...


class SessionsKeeper(Protocol):
    """The dashboard's live hub (:class:`bot.dashboard.serving.live.LiveHub`)."""

    async def refresh_sessions(self) -> None:
        """Read the live sessions again, while anyone watches a page."""
        ...


class HostProber(Protocol):
    """The fleet's hosts (:class:`fleet.hosts.service.Hosts`)."""

    async def probe_up(self) -> None:
        """One probe of every host whose link is up."""
        ...


class RefusalTeller(Protocol):
    """The refused egress (:class:`fleet.sandbox.egress.refusals.RefusalBook`)."""

    async def tell(self) -> None:
        """Write the counts to the ledger and post the notices due; a failure is logged."""
        ...


@dataclass(frozen=True, slots=True)
class Looking:
    """What is looked at again and again, each ``None`` when the app has none: the agents'
    logs for the feed, the dashboard's live sessions, the hosts, the refused egress."""

    feed: FeedReader | None = None
    sessions: SessionsKeeper | None = None
    hosts: HostProber | None = None
    refusals: RefusalTeller | None = None


@dataclass(frozen=True, slots=True)
class Pacing:
    """What the pacing jobs drive: the budgets, ticked, and the report made of them."""

    budgets: PacingBook
    reports: ReportMaker


@dataclass(frozen=True, slots=True)
class Waiting:
    """What waits for its time: the stored operator schedules, the queued launches, and
    the asks open until their deadline."""

    schedules: ScheduleRunner
    queue: QueueSweeper
    approvals: Expiring | None = None  # None: no approvals to time out


@dataclass(frozen=True, slots=True)
class JobContext:
    """Every live collaborator of the app's jobs, grouped by what the jobs do with them."""

    scheduler: FleetScheduler[JobContext]  # to arm follow-up runs (the window reset)
    clock: Clock
    fleet: WatchedFleet
    notices: NoticeBoard
    upkeep: Upkeep
    pacing: Pacing
    waiting: Waiting
    forges: ForgeRounds | None = None  # None: no forge is configured
    looking: Looking = Looking()

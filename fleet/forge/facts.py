"""What the ledger keeps of forge work: each forge run (an issue given to an agent, its
branch, pull request and status comment), each webhook delivery taken, and each forge
operation audited."""

from __future__ import annotations

import enum
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime

from fleet.forge.model import Slug


class ForgeRunState(enum.Enum):
    """Where a forge run is.

    ``queued``: its agent was busy, or a budget held it; ``working``: its agent runs on it;
    ``waiting``: done for now (frozen or ended), its pull request open for review;
    ``unpublished``: the agent said ``done ok``, but its pull request could not be opened
    (the next round of :mod:`fleet.forge.runs.watch`, or ``pr NAME``, opens it);
    ``failed``: the agent said ``done failed``; ``stopped``: the issue was unassigned or
    unlabelled; ``ended``: its pull request closed (merged or not), or it was ended.
    """

    QUEUED = "queued"
    WORKING = "working"
    WAITING = "waiting"
    UNPUBLISHED = "unpublished"
    FAILED = "failed"
    STOPPED = "stopped"
    ENDED = "ended"

    @property
    def is_over(self) -> bool:
        return self in (ForgeRunState.STOPPED, ForgeRunState.ENDED)

    @property
    def is_done_for_now(self) -> bool:
        """The agent's work on it is over until someone answers (a review, ``pr``)."""
        return self in (ForgeRunState.WAITING, ForgeRunState.UNPUBLISHED, ForgeRunState.FAILED)


@dataclass(frozen=True, slots=True)
class ForgeRunRecord:
    """One issue given to an agent, as the ledger keeps it."""

    id: int
    forge: str
    repo: str  # the config's repository name
    slug: Slug  # owner/name on the forge
    issue: int
    title: str
    agent: str
    branch: str
    state: str
    requester: str
    pull: int | None
    pull_url: str | None
    issue_url: str
    comment_id: int | None
    check_id: int | None
    run_id: int | None
    line_id: int | None
    done_signal: str | None
    done_status: str | None
    summary: str | None
    started_at: datetime
    activity_at: datetime | None
    ended_at: datetime | None


@dataclass(frozen=True, slots=True)
class DeliveryRecord:
    """A webhook delivery (or a polled event) taken, and what came of it."""

    forge: str
    delivery: str
    event: str
    received_at: datetime
    outcome: str


@dataclass(frozen=True, slots=True)
class ForgeAuditLine:
    """One forge operation of an agent or of Fleetwarden, allowed or refused."""

    forge_run: int | None
    agent: str
    at: datetime
    op: str
    allowed: bool
    detail: str


@dataclass(frozen=True, slots=True)
class PullNews:
    """What became of a forge run's pull request, for chat: opened when its work was done
    (``pull``, ``pull_url``; ``late``: only once what kept it from opening was fixed), or
    not (``why``, in Fleetwarden's words, and ``fix``); or how it ended (``ended``:
    ``merged`` or ``closed``, and by whom, ``by``)."""

    agent: str
    slug: Slug
    issue: int
    issue_url: str
    pull: int | None = None
    pull_url: str | None = None
    why: str | None = None
    fix: str | None = None
    late: bool = False
    ended: str | None = None
    by: str | None = None


@dataclass(frozen=True, slots=True)
class NoRunNews:
    """An issue given to no agent that can start there, for chat: by ``label`` (the forge
    user's text) or by an assignment (None), naming ``agent``, and ``why`` no run started
    (Fleetwarden's words for the operator)."""

    agent: str
    slug: Slug
    issue: int
    forge: str
    actor: str
    label: str | None
    why: str


ForgeRuns = Callable[[str | None], Awaitable[list[ForgeRunRecord]]]
"""The live forge runs (of one agent; of all: None), for what ``ps`` and ``runs`` show."""

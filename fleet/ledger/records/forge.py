"""What the ledger's forge store (:mod:`fleet.ledger.stores.code.forge`) keeps of forge work:
each forge run (an issue given to an agent, its branch, pull request and status comment; a
new one as it begins, :class:`NewForgeRun`), each webhook delivery taken, and each forge
operation audited; and :class:`Slug`, a repository on its forge, by which they name it."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True, slots=True)
class Slug:
    """A repository on its forge: ``owner/name`` (on GitLab the owner may be a group's
    path with its subgroups: ``group/sub/name``)."""

    owner: str
    name: str

    def __str__(self) -> str:
        return f"{self.owner}/{self.name}"

    @classmethod
    def parse(cls, text: str) -> Slug:
        owner, sep, name = text.rpartition("/")
        if not sep or not name or "" in owner.split("/"):
            raise ValueError(f"{text!r} is not owner/name")
        return cls(owner, name)


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
class NewForgeRun:
    """An issue given to an agent, as its forge run begins: issue ``issue`` of ``slug`` on
    ``forge`` (``repo``: the config's name for that repository), given to ``agent`` by
    ``requester``, to work on ``branch``; ``state``: how it begins; ``given``: the forge
    audit's words for it (op ``start``), kept with the run (``""``: none)."""

    forge: str
    repo: str
    slug: Slug
    issue: int
    title: str
    agent: str
    branch: str
    requester: str
    issue_url: str
    state: ForgeRunState = ForgeRunState.QUEUED
    given: str = ""


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

"""What a launch asks for and what came of it: one frozen :class:`LaunchRequest` — the
agent, what it overrides of its settings, the repository line it asks for, who asked and
from where — and its outcome, :class:`Started`, :class:`Queued` or :class:`Refused`."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Literal

from fleet.ledger import QueuedSpawn
from fleet.ledger.records.quotes import Quote
from fleet.model import PermissionMode, RunBudget
from fleet.repos.hook.policy import Issue
from fleet.repos.line.cutting import Asked
from fleet.repos.line.review import ReviewCheckout
from fleet.supervisor.status import SpawnOutcome
from fleet.watchdog.verdicts import Restart

Origin = Literal[
    "chat",
    "schedule",
    "autostart",
    "task",
    "pipeline",
    "forge",
    "peer",
    "review",
    "restart",
    "watchdog",
]
"""Where a launch comes from: a chat ``spawn``; an operator's schedule firing one; the roster's
own launch (``autostart``, a roster agent's queued start too); a task the register hands on
(``task``: a hand-off, or a held task whose wait is over); a pipeline's stage whose stages
before it are through (``pipeline``); a forge run; an agent woken by a peer's message; a
review stage's reviewer; an operator's ``restart`` (its run stopped and launched again: only
the concurrency caps are asked, and hold it without queueing it); the ``watchdog``'s restart
of a run that failed or stalled (:data:`RESTARTS`; no cap is asked: it goes on with the task
whose run held its slot, and a task another agent handed on only while that agent may still
reach it). A launch the spawn queue starts after it waited keeps the origin it was asked
with: waiting is not where a launch comes from, so there is no ``queue`` origin."""
ORIGINS: tuple[Origin, ...] = (
    *("chat", "schedule", "autostart", "task", "pipeline", "forge", "peer", "review"),
    *("restart", "watchdog"),
)
RESTARTS: frozenset[Origin] = frozenset({"restart", "watchdog"})
"""The origins whose launch stops the agent's run if it lives and launches it again, going on
with its task: neither the budgets nor the quote are asked of them, as ever."""
ASKED_BY_A_PERSON: frozenset[Origin] = frozenset(
    {"chat", "schedule", "task", "pipeline", "peer", "review"}
)
"""The origins whose launch is a person's (or an agent's) asking, as a chat ``spawn`` is:
the budgets' limit words name the chat flag or the roster, not the config."""


@dataclass(frozen=True, slots=True)
class LaunchRequest:
    """One launch of ``agent``. Every override left ``None`` keeps the agent's own setting;
    ``repo``/``repo_base``: the repository it works on; ``fresh``, ``branch``, ``issue``
    and ``co_author``: what it asks of its line there (a new one, its name, the forge issue
    its commits may name, who its commits credit); ``by``: who asked, in the run's reason;
    ``urgent``: past a budget's queue; ``collect``: wait for its first output;
    ``quote_under``: start only if the run's quote holds at most this many dollars (``None``:
    the agent's own ``quote_under:``, if any); ``task``: the register's task the run is done
    for (``None``: none); ``review_of``: the line's commit a review agent reads, in a
    read-only checkout of its own (its run then cuts and keeps no line); ``resume``: the
    prompt continues the agent's last session where its runtime can (a headless CLI's
    ``--resume``), else it starts a run of its own; ``restart``: the watchdog's restart this
    launch carries out (origin ``watchdog``: which restart in a row it is, and why); ``new``:
    a new agent of this name is meant, however close it is to one the fleet knows (else
    such a name is refused as a likely typo)."""

    agent: str
    origin: Origin = "chat"
    by: str = "operator"
    runtime: str | None = None
    model: str | None = None
    account: str | None = None
    prompt: str | None = None
    workdir: Path | None = None
    permissions: PermissionMode | None = None
    run_budget: RunBudget | None = None
    host: str | None = None
    repo: str | None = None
    repo_base: str | None = None
    fresh: bool = False
    branch: str | None = None
    issue: Issue | None = None
    co_author: str | None = None
    urgent: bool = False
    collect: bool = True
    quote_under: float | None = None
    task: int | None = None
    review_of: ReviewCheckout | None = None
    resume: bool = False
    restart: Restart | None = None
    new: bool = False

    def asked(self) -> Asked | None:
        """What the launch asks of its line, if anything."""
        if not (self.fresh or self.branch or self.issue or self.co_author or self.review_of):
            return None
        return Asked(
            co_author=self.co_author,
            issue=self.issue,
            branch=self.branch,
            fresh=self.fresh,
            review_of=self.review_of,
        )


@dataclass(frozen=True, slots=True)
class Started:
    """The launch was made (or the agent already ran: ``outcome.started`` is false).
    ``fallback``: the words saying it started on its fallback, when the budget's ladder
    moved it there. ``quote``: what the run was quoted, kept on it (``None``: no quoting, or
    the agent already ran)."""

    outcome: SpawnOutcome
    fallback: str = ""
    quote: Quote | None = None


@dataclass(frozen=True, slots=True)
class Queued:
    """The launch waits: ``why`` (the full cap's words, or the budget's); ``entry``: its
    place in the spawn queue, when it was written there (``None``: the caller keeps it, as
    a forge run does); ``until``: not before then (a budget deferred it); ``already``: the
    agent was queued before this request; ``held``: what live runs hold against a budget
    leaves it no room, so it waits for a run to end."""

    why: str
    entry: QueuedSpawn | None = None
    until: datetime | None = None
    already: bool = False
    held: bool = False


@dataclass(frozen=True, slots=True)
class Refused:
    """The launch is not made and does not wait: ``why``. ``quote``: the launch's quote,
    when it is what refused it (over its limit); its words then name the agent, its
    runtime and model and dollars only, fit for a forge issue. ``public``: its words name
    only the agent and the work it is on (whose the agent is), fit for a forge issue too."""

    why: str
    quote: Quote | None = None
    public: bool = False


Admitted = Started | Queued | Refused

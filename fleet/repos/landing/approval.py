"""An approval is of one commit: a line of a repository with a ``review:`` stage (its own,
or its forge's) whose review agent approved one commit lands — ``merge``, ``push`` — only at
that commit. A later commit on it (a restarted run's, a follow-up's) is not what was
approved: :class:`ApprovalHold` refuses it with the reason and the fix (an admin's
``--unreviewed``, audited), until a later round approves the tip.

What stands is the newest round that approved on the line, whatever came after it: an
approval holds the line to its commit, and a later round that asked for changes (or gave no
verdict, or reads a later commit still) approved nothing, so it holds the line all the same.
A line never approved is held by nothing here: its review's words said how it lands.

A pipeline's gate is of a commit the same way (:mod:`fleet.repos.landing.gated`): a line
a stage's ``approve`` or ``check:`` gate judged lands only at a commit a gate passed —
held here, by the same hold, not a second one.

Every upstream push is checked here too (:meth:`fleet.repos.service.Repos.push_line`): a
head that is not the approved commit reaches a forge's branch only once its open pull
request is a draft, and an unreviewed chat line's ``autopush`` is not pushed."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence

from fleet.ledger.records.lines import LineRecord
from fleet.ledger.records.peers import ReviewRecord
from fleet.ledger.stores.peers.reviews import ReviewsStore
from fleet.repos.desk import RepoError
from fleet.repos.landing.gated import GateRecords, ungated
from fleet.repos.schema import ReviewPolicy

Policy = Callable[[str], ReviewPolicy | None]
"""Who reviews a repository's work: its ``review:``, else its forge's (``None``: nobody)."""

Drafter = Callable[[ReviewRecord, str], Awaitable[bool]]
"""The forge's side of a held push: the open pull request of the forge run ``approved``
was of made a draft before its head becomes ``tip`` — whether there was one (a
:class:`~fleet.repos.desk.RepoError` when the forge refused: nothing is pushed then)."""


class Unapproved(RepoError):
    """A line's tip is not the commit its review agent approved: not landed."""


def standing(rounds: Sequence[ReviewRecord]) -> ReviewRecord | None:
    """The approval that stands on a line whose rounds are ``rounds`` (oldest first): the
    newest round that approved, whatever came after it; else ``None``."""
    return next((r for r in reversed(rounds) if r.state == "approved"), None)


def unapproved(
    line: LineRecord, tip: str | None, rounds: Sequence[ReviewRecord], verb: str
) -> str | None:
    """Why ``verb`` (``merge``, ``push``) may not act on ``line`` at ``tip``: its standing
    approval is of another commit — the reason, what goes on and the fix; ``None``: nothing
    holds it."""
    approved = standing(rounds)
    if approved is None or tip is None or tip == approved.commit:
        return None
    asked = next((r for r in reversed(rounds) if r.state == "asked" and r.commit == tip), None)
    if asked is not None:
        then = (
            f"round {asked.round} of {asked.rounds} of its review ({asked.reviewer}) reads "
            f"{tip[:12]} now: {verb} it once that round approves it"
        )
    else:
        then = "no round of its review has approved it"
    done = "merged" if verb == "merge" else "pushed"
    return (
        f"{line.branch} of {line.repo} changed since it was approved: {approved.reviewer} "
        f"approved commit {approved.commit[:12]} (round {approved.round} of "
        f"{approved.rounds}), and its tip is {tip[:12]}; {then}. Nothing was {done}. "
        f"`diff {line.branch}` shows it; an admin's `{verb} --unreviewed {line.branch}` "
        f"{'lands' if verb == 'merge' else 'pushes'} it as it is, in the audit trail."
    )


class ApprovalHold:
    """Whether a line may land at its tip, by its rounds of review in ``reviews`` when
    ``policy`` says its repository has a review stage, and by the pipelines' gates taken
    on it in ``gates`` (``None``: none kept); ``drafter``: the forges' side of a push its
    review holds (``None``: none, such a push is refused)."""

    def __init__(
        self,
        reviews: ReviewsStore,
        policy: Policy,
        drafter: Drafter | None = None,
        gates: GateRecords | None = None,
    ) -> None:
        self._reviews = reviews
        self._policy = policy
        self._drafter = drafter
        self._gates = gates

    async def may_push(self, line: LineRecord, tip: str, *, draft: bool) -> None:
        """Refuse (:class:`Unapproved`) to push ``line`` upstream at ``tip`` when its
        standing approval is of another commit — unless ``draft`` (a forge run's push, a
        run's end) and its forge run's open pull request is made a draft first, so that
        the forge merges the unreviewed head for no one until a round approves it. A
        head no pipeline's gate passed is never pushed (no draft stands for a gate)."""
        gated = await self.why_ungated(line, tip, "push")
        if gated is not None:
            raise Unapproved(gated)
        why = await self.why_unreviewed(line, tip, "push")
        if why is None:
            return
        approved = await self.approved(line)
        drafter = self._drafter if draft and approved is not None else None
        if drafter is not None and approved is not None and await drafter(approved, tip):
            return
        raise Unapproved(why)

    async def why_not(self, line: LineRecord, tip: str | None, verb: str) -> str | None:
        """Why ``verb`` may not act on ``line`` at ``tip``: its review (see
        :func:`unapproved`), else its pipeline's gates (:func:`~.gated.ungated`)."""
        why = await self.why_unreviewed(line, tip, verb)
        return why if why is not None else await self.why_ungated(line, tip, verb)

    async def why_unreviewed(self, line: LineRecord, tip: str | None, verb: str) -> str | None:
        """Why ``verb`` may not act on ``line`` at ``tip`` by its review's rounds."""
        if self._policy(line.repo) is None:
            return None
        rounds = await self._reviews.of_line(line.repo, line.branch, line.created_at)
        return unapproved(line, tip, rounds, verb)

    async def why_ungated(self, line: LineRecord, tip: str | None, verb: str) -> str | None:
        """Why ``verb`` may not act on ``line`` at ``tip`` by the gates taken on it."""
        if self._gates is None:
            return None
        stages, missions = await self._gates.of_line(line)
        return ungated(line, tip, stages, missions, verb)

    async def approved(self, line: LineRecord) -> ReviewRecord | None:
        """The approval standing on ``line``, or ``None``."""
        rounds = await self._reviews.of_line(line.repo, line.branch, line.created_at)
        return standing(rounds)

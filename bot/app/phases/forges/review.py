"""The review phase: the review stage (:mod:`fleet.peers.review`) over the running fleet, when
a repository or a forge names a ``review:`` agent. A chat task's run that ends with its
change on a branch asks the review agent (the task runs tell it, as it listens for their
reviews), a forge run's published ``done`` does (forge work's
:class:`~fleet.forge.runs.reviewing.ForgeReviewing`);
each verdict is a message of the postbox's, told to the operators as every message is."""

from __future__ import annotations

from collections.abc import Callable

from bot.app.desks import Desks
from bot.app.grounds import Grounds
from bot.app.phases.core.ledger import Ledgered
from bot.app.phases.fleet.launching import Fleeted
from bot.app.phases.fleet.peers import Peered
from bot.app.phases.forges.work import Forged
from bot.config import Config
from fleet.ledger.records.peers import ReviewRecord
from fleet.peers.review.chat import ChatReviews
from fleet.peers.review.handoff import ReviewStores
from fleet.peers.review.stage import ReviewStage
from fleet.repos.schema import ReviewPolicy
from fleet.repos.service import Repos


async def start_review(
    at: Grounds,
    ledgered: Ledgered,
    fleeted: Fleeted,
    peered: Peered,
    repos: Repos | None,
    forged: Forged,
    desks: Desks,
) -> ReviewStage | None:
    """The review stage, bound to the task runs and forge work (``None``: no repository or
    forge names a review agent, or there are no repositories); the rounds whose review
    agent's run ended while Fleetwarden was away ended (:meth:`ReviewStage.sweep`)."""
    cfg, ledger = at.cfg, ledgered.ledger
    if repos is None or not (
        any(e.review for e in cfg.repos.values()) or any(f.review for f in cfg.forges.values())
    ):
        return None
    policy = review_policy(cfg, repos)
    stage = review_stage(at, ledgered, fleeted, peered, repos, forged, policy)
    desks.open_review(stage)  # forge work's side of the rounds reaches it from now on
    fleeted.fleet.subscribe(stage.hear)  # a review agent's run that ended without a verdict
    desks.open_verdicts(stage)  # `fw-msg review` answers the round asked
    chat = ChatReviews(
        stage=stage, lines=ledger.lines, reviews=ledger.reviews, policy=policy, tip=repos.line_tip
    )
    fleeted.register.runs.listen_for_review(chat.up_for_review)  # a task's change: a round
    await stage.sweep()
    return stage


def review_policy(cfg: Config, repos: Repos) -> Callable[[str], ReviewPolicy | None]:
    """A repository's review stage as Fleetwarden works on it now: a repository a `roster
    reload` took on has its own (a changed one is refused until a restart)."""

    def policy(repo: str) -> ReviewPolicy | None:
        entry = repos.entry(repo) if repo in repos.names() else cfg.repos.get(repo)
        forge = cfg.forges.get(entry.forge) if entry is not None and entry.forge else None
        return None if entry is None else entry.review_of(forge.review if forge else None)

    return policy


def review_stage(
    at: Grounds,
    ledgered: Ledgered,
    fleeted: Fleeted,
    peered: Peered,
    repos: Repos,
    forged: Forged,
    policy: Callable[[str], ReviewPolicy | None],
) -> ReviewStage:
    """The stage over the fleet's admission and the postbox (each verdict told as every
    message is); the reviewer's right read again when its verdict comes, of the review
    agent ``policy`` (or its forge run's forge) names then."""
    ledger, fleet = ledgered.ledger, fleeted.fleet

    async def send(agent: str, text: str) -> object:
        return await fleet.send(agent, text, by="its review agent")

    async def stop(agent: str, by: str) -> object:
        return await fleet.stop_agent(agent, by=by)

    async def may_review(reviewer: str, review: ReviewRecord) -> str | None:
        named = policy(review.repo)
        if review.forge_run is not None and forged.reviewing is not None:
            record = await ledger.forge.forge_run(review.forge_run)
            named = forged.reviewing.policy(record) if record is not None else None
        return peered.postbox.rules.may_review(reviewer, named.agent if named else None)

    stores = ReviewStores(
        ledger.reviews, ledger.messages, ledger.tasks, ledger.runs, ledger.spawn_queue, ledger.lines
    )
    return ReviewStage(
        stores=stores,
        admit=fleeted.admission.admit,
        diff=repos.line_diff,
        redact=at.redactor.redact,
        heard=peered.postbox.tell,  # told as every message is: both threads, `msgs`, pages
        send=send,
        stop=stop,
        forge=forged.reviewing,
        may_review=may_review,
        launched=fleeted.register.runs.launched,  # a verdict as soon as its run starts
    )

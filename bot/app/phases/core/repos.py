"""The app's repositories phase: the mirrors and runs' lines of the config's ``repos:``
(:class:`~fleet.repos.service.Repos`), made over the heartbeat endpoint, whose git door
serves them (a checkout's ``origin`` names the door: their lines are its desk), and the
commands' verbs on them (:class:`~fleet.repos.verbs.RepoVerbs`)."""

from __future__ import annotations

from collections.abc import Mapping

from bot import build
from bot.app.desks import Desks
from bot.app.grounds import Grounds
from bot.app.phases.core.ledger import Ledgered
from bot.app.stops import Stop
from bot.config.checks.forges import repo_credentials
from fleet.repos.desk import RepoError
from fleet.repos.landing.approval import ApprovalHold
from fleet.repos.landing.gated import GateRecords
from fleet.repos.schema import ReviewPolicy
from fleet.repos.service import Repos
from fleet.repos.stores import RepoStores
from fleet.repos.verbs import RepoVerbs
from fleet.timing.clock import Clock
from fleet.watchdog.heartbeat import HeartbeatServer


def version() -> str:
    """Fleetwarden's build in words, for what its commits, summaries and footers say of it."""
    return build.current().words


async def open_repos(
    at: Grounds,
    ledgered: Ledgered,
    desks: Desks,
    *,
    environ: Mapping[str, str],
    endpoint: HeartbeatServer,
) -> Repos | None:
    """The repositories, their directories and hooks made, their lines the git door's desk
    in ``desks``; ``None`` without ``repos:``. ``environ``: what their git reads (the
    forges' App tokens over the app's); ``endpoint``: the heartbeat endpoint, whose git
    door a checkout's ``origin`` names."""
    cfg = at.cfg
    if not cfg.repos:
        return None

    def door_url(agent: str, repo: str) -> str:
        token = endpoint.token_for(agent)
        return f"http://{agent}:{token}@127.0.0.1:{endpoint.port}/git/{agent}/{repo}.git"

    ledger = ledgered.ledger
    repos = Repos(
        state_dir=cfg.state_dir,
        entries=cfg.repos,
        stores=RepoStores(ledger.lines, ledger.agents, ledger.forge, ledger.refusals),
        environ=environ,
        version=version(),
        credentials=repo_credentials(cfg.repos, cfg.forges),
        door_url=door_url,
        hosts=at.hosts,  # an agent placed on one gets its checkout there
    )
    # The pool gives its entries ahead to the uid the next new agent gets (the sandboxes'
    # lanes, kept in the same file), so that agent's launch finds its checkout its own.
    repos.ready.next_uid = at.sandboxes.lanes.next_uid
    await repos.start()
    at.stops.add(Stop.REPOS, repos.stop)
    desks.open_lines(repos.door)
    return repos


def repo_verbs(
    repos: Repos | None,
    clock: Clock,
    at: Grounds | None = None,
    ledgered: Ledgered | None = None,
    desks: Desks | None = None,
) -> RepoVerbs | None:
    """The operators' verbs on the repositories (``None``: none configured); with the
    config and the ledger, a line its review agent approved lands only at the commit it
    approved (:class:`~fleet.repos.landing.approval.ApprovalHold`), a forge run's head past
    it pushed once forge work made its pull request a draft (its drafts in ``desks``)."""
    if repos is None:
        return None
    hold = None
    if at is not None and ledgered is not None:
        grounds = at

        def policy(repo: str) -> ReviewPolicy | None:
            try:
                entry = repos.entry(repo)
            except RepoError:  # taken out of the config: no merge reaches it anyway
                return None
            forge = grounds.cfg.forges.get(entry.forge) if entry.forge else None
            return entry.review_of(forge.review if forge is not None else None)

        drafter = desks.draft_head if desks is not None else None
        ledger = ledgered.ledger
        gates = GateRecords(ledger.stages, ledger.missions)  # a pipeline's gate, of a commit
        hold = ApprovalHold(ledger.reviews, policy, drafter, gates)
        repos.hold = hold  # every upstream push passes it too, not only the verbs'
    return RepoVerbs(repos, clock, hold)

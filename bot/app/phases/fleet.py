"""The app's fleet phase: the supervisor (:class:`~fleet.supervisor.fleet.Fleet`), which
reconciles the ledger with what runs and starts the roster's autostart agents; the
sandboxes' doors and the shared tokens it launches with; the feeds of its work and of its
agents' asks (:mod:`bot.approvals`); the spawn queue its autostart waits in; the peer
roster that tells each agent its peers (:mod:`fleet.peers.roster`); the work register over
its admission; and the asks at its runs' caps, whose cutoffs are carried out on it. The
postbox between its agents is the next phase's (:mod:`bot.app.phases.peers`)."""

from __future__ import annotations

import functools
from dataclasses import dataclass

from bot.app import assembly as wiring
from bot.app.desks import Desks
from bot.app.grounds import Grounds
from bot.app.phases.ledger import Ledgered, redact_register
from bot.app.phases.spend import Spend
from bot.app.shared_tokens import SharedTokens
from bot.app.stops import Stop
from bot.approvals.wiring import attach_feed
from bot.chat.agent_feed import AgentFeed
from bot.commands.handlers.launches.spawn_queue import SpawnQueue, admission_of
from bot.config import Config
from bot.config.resolved import model_priced
from fleet.approvals.spend import SpendAsks
from fleet.budgets.quoting.service import Quoting
from fleet.budgets.runs.watch import CapCutoffs
from fleet.peers.roster import PeerRoster
from fleet.repos.service import Repos
from fleet.runs.launch.launch_kit import LaunchKit, RunDoors, RunPlace, RunSpend
from fleet.supervisor.admission.queue import LaunchQueue
from fleet.supervisor.fleet import Fleet
from fleet.supervisor.stores import FleetStores
from fleet.tasks.register import Register
from fleet.tasks.runs import TaskRuns
from fleet.tasks.spent import TaskSpend
from fleet.watchdog.heartbeat import HeartbeatServer


@dataclass(frozen=True, slots=True)
class Fleeted:
    """What the fleet phase made."""

    fleet: Fleet
    feed: AgentFeed
    queue: SpawnQueue
    spend_asks: SpendAsks | None  # asks at a run's cap; None when metering is off
    register: Register  # the tasks and missions, started through the fleet's admission
    peer_roster: PeerRoster  # each agent's peers: told at launch, by `fw-msg peers`


async def start_fleet(
    at: Grounds,
    ledgered: Ledgered,
    heartbeats: HeartbeatServer,
    spend: Spend,
    repos: Repos | None,
    desks: Desks,
) -> Fleeted:
    """The fleet started and its events become notices; the asks at its runs' caps, whose
    cutoffs are carried out on it. The agents' asks are posted through the running
    connectors; ``repos``: where runs of agents with a ``repo`` get their branch and
    checkout. Its live sessions answer TUIs' permission hooks (their desk in ``desks``)."""
    cfg, clock, stops, sandboxes = at.cfg, at.clock, at.stops, at.sandboxes
    ledger, notifier, approvals = ledgered.ledger, ledgered.notifier, ledgered.approvals
    metering = spend.proxy
    await sandboxes.start(wiring.refusal_book(ledger, notifier, metering))
    # A locked agent's beats and model requests come through its doors: served there,
    # not piped to the ports.
    sandboxes.serve_in_place(heartbeats.port, heartbeats.connection)
    if metering is not None:
        sandboxes.serve_in_place(metering.port, metering.connection)
    sets = [("heartbeat", heartbeats.secrets)]
    if metering is not None:
        sets.append(("metering", metering.secrets))
    tokens = SharedTokens(ledger.agents, sets)
    await tokens.start()  # a standby accepts the agents it takes over
    # Each run bound to its task as it starts; the task moved as its runs end.
    task_runs = TaskRuns(
        tasks=ledger.tasks,
        actuals=ledger.actuals,
        runs=ledger.runs,
        lines=ledger.lines,
        spawn_queue=ledger.spawn_queue,
    )
    # Each agent's peers, read from the fleet's roster as it is now (a reload applies).
    peer_roster = PeerRoster(
        roster=lambda: fleet.roster(),
        agents=ledger.agents,
        state_dir=cfg.state_dir,
        reviewers=functools.partial(review_agents, cfg, repos),
    )
    fleet = Fleet(
        stores=FleetStores(
            agents=ledger.agents,
            runs=ledger.runs,
            heartbeats=ledger.heartbeats,
            metering=ledger.metering,
            budgets=ledger.budgets,
            lines=ledger.lines,
            refusals=ledger.refusals,
            forge=ledger.forge,
            spawn_queue=ledger.spawn_queue,
        ),
        clock=clock,
        kit=LaunchKit(
            runtimes=at.runtimes,
            backends=at.backends,
            settings=wiring.fleet_settings(cfg),
            environ=at.environ,
            doors=RunDoors(
                heartbeats=heartbeats,
                approvals=approvals,  # its live sessions open their CLIs' asks here
                publish_tokens=tokens.publish,
                preamble=peer_roster.preamble,  # its comms block: before its prompt, in its HOME
            ),
            spend=RunSpend(
                provider_urls=metering,
                accounts=spend.accounts,
                run_caps=spend.run_caps,  # armed in each launch, before the agent starts
            ),
            # A run's sandbox, host, and branch and checkout (made before it launches).
            place=RunPlace(sandboxes=sandboxes, hosts=at.hosts, repos=repos),
        ),
        roster=wiring.roster_of(cfg),
        admission=admission_of(
            cfg,
            ledger.agents,
            ledger.spawn_queue,
            spend.accounts,
            spend.budgets,
            Quoting(
                ledger.runs,
                ledger.quotes,
                clock,
                default_runtime=cfg.defaults.runtime,
                # Without the metering proxy no cap in dollars binds: no model counts as priced.
                priced=model_priced(cfg) or _unpriced,
            ),
            spend.budgets.holds,
            task_runs,
            ledger.forge if cfg.forges else None,  # an agent working on an issue is its
            repos,
        ),
    )
    stops.add(Stop.FLEET, fleet.stop)
    desks.open_hook_asks(fleet.sessions.hook_asks.ask)  # TUIs' permission hooks
    fleet.subscribe(spend.budgets.holds.on_fleet_event)  # a run's end lets its hold go, first
    fleet.subscribe(task_runs.hear)  # and a turn's end: a task whose agent waits, for review
    fleet.subscribe(peer_roster.on_fleet_event)  # a peer started or ended: PEERS.md again
    spent = TaskSpend(tasks=ledger.tasks, actuals=ledger.actuals)  # a run's summary shows it
    feed = AgentFeed(fleet, notifier.post, clock, typing=notifier.typing, task_line=spent.of_run)
    stops.add(Stop.FEED, feed.stop)
    fleet.subscribe(feed.on_fleet_event)
    attach_feed(cfg, approvals, ledger.chat, ledger.audit, fleet, notifier, at.serving.running)
    spend_asks = None
    if spend.run_caps is not None:  # a run's end disarms its cap
        fleet.subscribe(spend.run_caps.on_fleet_event)
        caps = spend.run_caps.caps
        spend_asks = SpendAsks(
            approvals, ledger.spend_asks, ledger.agents, ledger.runs, caps, fleet
        )
        await spend_asks.start()  # asks open before a restart are answerable again
        spend.run_caps.listen(CapCutoffs(fleet, caps, spend_asks))  # a capped run cut on it
    # The queue the admission writes launches beyond a cap to (autostart's too).
    launches = LaunchQueue(store=ledger.spawn_queue, admission=fleet.admission, clock=clock)
    queue = SpawnQueue(launches=launches, forge=ledger.forge, clock=clock, notices=notifier)
    stops.add(Stop.QUEUE, queue.stop)
    await fleet.start()
    await peer_roster.refresh()  # the agents reattached: live to their peers
    await redact_register(ledger)  # the words stored before they were redacted as stored
    register = Register(
        tasks=ledger.tasks,
        missions=ledger.missions,
        actuals=ledger.actuals,
        runs=task_runs,
        admission=fleet.admission,
        stop=fleet,
    )
    stops.add(Stop.TASKS, register.stop)
    await task_runs.sweep()  # the tasks whose runs ended while Fleetwarden was away
    await feed.follow_running()
    return Fleeted(fleet, feed, queue, spend_asks, register, peer_roster)


def review_agents(cfg: Config, repos: Repos | None = None) -> frozenset[str]:
    """The agents a repository (as ``repos`` works on them now: a reload may add one) or a
    forge of ``cfg`` names to review its work."""
    entries = (
        [repos.entry(n) for n in repos.names()] if repos is not None else list(cfg.repos.values())
    )
    policies = [e.review for e in entries] + [f.review for f in cfg.forges.values()]
    return frozenset(p.agent for p in policies if p is not None)


def _unpriced(model: str | None) -> bool:
    """No model is priced (the config turns the metering proxy off)."""
    return False

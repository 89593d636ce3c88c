"""The app's fleet phase: the supervisor (:class:`~fleet.supervisor.fleet.Fleet`), which
reconciles the ledger with what runs and starts the roster's autostart agents; the
sandboxes' doors and the shared tokens it launches with; the feeds of its work and of its
agents' asks (:mod:`bot.approvals`); the spawn queue its autostart waits in; the peer
roster that tells each agent its peers (:mod:`fleet.peers.roster`); the work register over
its admission; and the asks at its runs' caps, whose cutoffs are carried out on it. The
postbox between its agents is the next phase's (:mod:`bot.app.phases.fleet.peers`).

The launch is made in the order it runs: the roster as it is now and the fleet's listeners,
the launcher over them (:class:`~fleet.supervisor.launcher.Launcher`, with the run keeper
and the live sessions), the one admission over the launcher
(:mod:`bot.app.phases.fleet.admission`: its chain checked whole as it is made), then the
fleet handed both. The admission is :attr:`Fleeted.admission`: every later phase takes it
from there."""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from bot.app import assembly as wiring
from bot.app.desks import Desks
from bot.app.grounds import Grounds
from bot.app.phases.core.ledger import Ledgered, redact_register
from bot.app.phases.core.mcp import ending_sessions, run_charge
from bot.app.phases.core.spend import Spend
from bot.app.phases.fleet.admission import make_admission
from bot.app.phases.fleet.approval_desk import attach_feed
from bot.app.shared_tokens import SharedTokens
from bot.app.stops import Stop
from bot.chat.agent_feed import AgentFeed
from bot.chat.run_states import RunStates, run_title
from bot.commands.handlers.launches.spawn_queue import SpawnQueue
from bot.config import Config
from fleet.agents.current import CurrentRoster
from fleet.approvals.spend import SpendAsks
from fleet.budgets.runs.watch import CapCutoffs
from fleet.events import Listeners
from fleet.peers.roster import PeerRoster
from fleet.pipelines.flow import Pipelines
from fleet.pipelines.judged import Judged, no_tip
from fleet.pipelines.schema import PipelineEntry
from fleet.repos.service import Repos
from fleet.runs.launch.launch_kit import LaunchKit, RunDoors, RunPlace, RunSpend
from fleet.supervisor.admission.admit import Admission
from fleet.supervisor.admission.queue import LaunchQueue
from fleet.supervisor.fleet import Fleet
from fleet.supervisor.launcher import Launcher
from fleet.supervisor.stores import FleetStores
from fleet.tasks.register import Register
from fleet.tasks.runs import TaskRuns
from fleet.tasks.spent import TaskSpend
from fleet.timing.clock import Clock
from fleet.watchdog.heartbeat import HeartbeatServer

if TYPE_CHECKING:  # the MCP door loads only where the config has MCP servers
    from fleet.mcp.door.routes import McpDoor


@dataclass(frozen=True, slots=True)
class Fleeted:
    """What the fleet phase made."""

    fleet: Fleet
    feed: AgentFeed
    queue: SpawnQueue
    spend_asks: SpendAsks | None  # asks at a run's cap; None when metering is off
    register: Register  # the tasks and missions, started through the fleet's admission
    peer_roster: PeerRoster  # each agent's peers: told at launch, by `fw-msg peers`
    # The one admission every launch passes, made once here: the spawn queue, the register,
    # the postbox, forge work and the review stage take it from here, never from the fleet.
    admission: Admission
    pipelines: Pipelines | None = None  # the missions made from the config's pipelines


async def start_fleet(
    at: Grounds,
    ledgered: Ledgered,
    heartbeats: HeartbeatServer,
    spend: Spend,
    repos: Repos | None,
    desks: Desks,
    mcp: McpDoor | None = None,
) -> Fleeted:
    """The fleet started and its events become notices; the asks at its runs' caps, whose
        cutoffs are carried out on it. The agents' asks are posted through the running
        connectors; ``repos``: where runs of agents with a ``repo`` get their branch and
        checkout. Its live sessions answer TUIs' permission hooks (their desk in ``desks``), and
    its roster and runs' caps stand behind ``mcp``, the MCP door, whose sessions of an agent
    end with its run."""
    ledger = ledgered.ledger
    tokens = await _doors(at, ledgered, heartbeats, spend)
    task_runs = _task_runs(ledgered)
    # The roster as it is now (a reload replaces it): made first, read by the launcher, the
    # supervisor and the peer roster alike.
    roster = CurrentRoster(wiring.roster_of(at.cfg), wiring.mcp_rules(at.cfg))
    peer_roster = _peer_roster(at, ledgered, roster, repos)
    # The launch runs one way: origin → admission → launcher → run keeper. The launcher is
    # made first, the one admission over it, and the supervisor is handed both.
    launcher = _launcher(at, ledgered, heartbeats, spend, repos, tokens, roster, peer_roster)
    admission = make_admission(at.cfg, ledgered, launcher, spend, task_runs, at.clock, repos)
    fleet = Fleet(launcher=launcher, admission=admission)
    at.stops.add(Stop.FLEET, fleet.stop)
    _open_desks(desks, fleet, roster, spend, at.clock)
    _hear_runs(fleet, roster, spend, task_runs, peer_roster, mcp)
    feed = _feed(at, ledgered, fleet)
    spend_asks = await _spend_asks(ledgered, spend, fleet)
    queue = _spawn_queue(at, ledgered, admission)
    await fleet.start()
    await peer_roster.refresh()  # the agents reattached: live to their peers
    await redact_register(ledger)  # the words stored before they were redacted as stored
    register, pipelines = _work(at, ledgered, task_runs, admission, fleet, repos)
    await task_runs.sweep()  # the tasks whose runs ended while Fleetwarden was away
    await feed.follow_running()
    return Fleeted(fleet, feed, queue, spend_asks, register, peer_roster, admission, pipelines)


async def _doors(
    at: Grounds, ledgered: Ledgered, heartbeats: HeartbeatServer, spend: Spend
) -> SharedTokens:
    """The sandboxes started, with the doors a locked agent's beats and model requests come
    through (served there, not piped to the ports), and the shared tokens its runs launch
    with (started: a standby accepts the agents it takes over)."""
    sandboxes, metering = at.sandboxes, spend.proxy
    await sandboxes.start(spend.refusals)  # the proxies' refused egress, told
    sandboxes.serve_in_place(heartbeats.port, heartbeats.connection)
    if metering is not None:
        sandboxes.serve_in_place(metering.port, metering.connection)
    sets = [("heartbeat", heartbeats.secrets)]
    if metering is not None:
        sets.append(("metering", metering.secrets))
    tokens = SharedTokens(ledgered.ledger.agents, sets)
    await tokens.start()
    return tokens


def _task_runs(ledgered: Ledgered) -> TaskRuns:
    """Each run bound to its task as it starts; the task moved as its runs end."""
    ledger = ledgered.ledger
    return TaskRuns(
        tasks=ledger.tasks,
        actuals=ledger.actuals,
        runs=ledger.runs,
        lines=ledger.lines,
        spawn_queue=ledger.spawn_queue,
    )


def _peer_roster(
    at: Grounds, ledgered: Ledgered, roster: CurrentRoster, repos: Repos | None
) -> PeerRoster:
    """Each agent's peers, read from ``roster`` (a reload applies)."""
    return PeerRoster(
        roster=roster.specs,
        agents=ledgered.ledger.agents,
        state_dir=at.cfg.state_dir,
        reviewers=functools.partial(review_agents, at.cfg, repos),
    )


def _launcher(
    at: Grounds,
    ledgered: Ledgered,
    heartbeats: HeartbeatServer,
    spend: Spend,
    repos: Repos | None,
    tokens: SharedTokens,
    roster: CurrentRoster,
    peers: PeerRoster,
) -> Launcher:
    """The launcher over ``roster`` and the fleet's listeners (who hears its events), with
    what each run launches with: its doors, its spend and its place."""
    ledger = ledgered.ledger
    kit = LaunchKit(
        runtimes=at.runtimes,
        backends=at.backends,
        settings=wiring.fleet_settings(at.cfg),
        environ=at.environ,
        doors=RunDoors(
            heartbeats=heartbeats,
            approvals=ledgered.approvals,  # its live sessions open their CLIs' asks here
            publish_tokens=tokens.publish,
            preamble=peers.preamble,  # its comms block: before its prompt, in its HOME
        ),
        spend=RunSpend(
            provider_urls=spend.proxy,
            accounts=spend.accounts,
            run_caps=spend.run_caps,  # armed in each launch, before the agent starts
        ),
        # A run's sandbox, host, and branch and checkout (made before it launches).
        place=RunPlace(sandboxes=at.sandboxes, hosts=at.hosts, repos=repos),
    )
    stores = FleetStores(
        agents=ledger.agents,
        runs=ledger.runs,
        heartbeats=ledger.heartbeats,
        metering=ledger.metering,
        budgets=ledger.budgets,
        lines=ledger.lines,
        refusals=ledger.refusals,
        forge=ledger.forge,
        spawn_queue=ledger.spawn_queue,
    )
    return Launcher(stores=stores, clock=at.clock, kit=kit, roster=roster, events=Listeners())


def _open_desks(
    desks: Desks, fleet: Fleet, roster: CurrentRoster, spend: Spend, clock: Clock
) -> None:
    """The desks the heartbeat endpoint's doors reach the fleet through: TUIs' permission
    hooks, an agent's MCP grants as its spec has them now, a priced MCP call billed to its
    run."""
    desks.open_hook_asks(fleet.sessions.hook_asks.ask)
    desks.open_mcp_roster(roster)
    desks.open_mcp_charge(run_charge(spend, clock))


def _hear_runs(
    fleet: Fleet,
    roster: CurrentRoster,
    spend: Spend,
    tasks: TaskRuns,
    peers: PeerRoster,
    mcp: McpDoor | None,
) -> None:
    """What hears a run start and end, in this order."""
    fleet.subscribe(roster.on_fleet_event)  # an agent taken out of it ended: ad hoc from then
    if mcp is not None:
        fleet.subscribe(ending_sessions(mcp))  # a run's end ends its MCP sessions
    fleet.subscribe(spend.budgets.holds.on_fleet_event)  # a run's end lets its hold go, first
    fleet.subscribe(tasks.hear)  # and a turn's end: a task whose agent waits, for review
    fleet.subscribe(peers.on_fleet_event)  # a peer started or ended: PEERS.md again


def _feed(at: Grounds, ledgered: Ledgered, fleet: Fleet) -> AgentFeed:
    """The feed of the fleet's work (a run's summary shows its task's spend), each run's
    threads showing its state (told a run's end before the feed closes its asks), and the
    feed of the agents' asks."""
    ledger, notifier, approvals = ledgered.ledger, ledgered.notifier, ledgered.approvals
    spent = TaskSpend(tasks=ledger.tasks, actuals=ledger.actuals)
    clock = at.clock
    feed = AgentFeed(fleet, notifier.post, clock, typing=notifier.typing, task_line=spent.of_run)
    at.stops.add(Stop.FEED, feed.stop)
    fleet.subscribe(feed.on_fleet_event)
    title = run_title(ledger.tasks, fleet.spec)
    states = RunStates(ledger.chat, at.serving.running, title, ordering=notifier.ordering)
    fleet.subscribe(states.on_fleet_event)
    approvals.subscribe(states.on_approval)
    attach_feed(at.cfg, approvals, ledger.chat, ledger.audit, fleet, notifier, at.serving.running)
    return feed


async def _spend_asks(ledgered: Ledgered, spend: Spend, fleet: Fleet) -> SpendAsks | None:
    """The asks at the runs' caps (``None``: metering is off), whose cutoffs are carried out
    on ``fleet``; a run's end disarms its cap."""
    if spend.run_caps is None:
        return None
    ledger = ledgered.ledger
    fleet.subscribe(spend.run_caps.on_fleet_event)
    caps = spend.run_caps.caps
    asks = SpendAsks(ledgered.approvals, ledger.spend_asks, ledger.agents, ledger.runs, caps, fleet)
    await asks.start()  # asks open before a restart are answerable again
    spend.run_caps.listen(CapCutoffs(fleet, caps, asks))  # a capped run cut on it
    return asks


def _spawn_queue(at: Grounds, ledgered: Ledgered, admission: Admission) -> SpawnQueue:
    """The queue the admission writes launches beyond a cap to (autostart's too)."""
    ledger = ledgered.ledger
    launches = LaunchQueue(store=ledger.spawn_queue, admission=admission, clock=at.clock)
    queue = SpawnQueue(
        launches=launches, forge=ledger.forge, clock=at.clock, notices=ledgered.notifier
    )
    at.stops.add(Stop.QUEUE, queue.stop)
    return queue


def _work(
    at: Grounds,
    ledgered: Ledgered,
    task_runs: TaskRuns,
    admission: Admission,
    fleet: Fleet,
    repos: Repos | None,
) -> tuple[Register, Pipelines]:
    """The work register over the admission, and the missions made from the config's
    pipelines, which move stage by stage as their tasks end, through gates."""
    ledger, cfg = ledgered.ledger, at.cfg
    register = Register(
        tasks=ledger.tasks,
        missions=ledger.missions,
        actuals=ledger.actuals,
        runs=task_runs,
        admission=admission,
        stop=fleet,
    )

    def configured() -> Mapping[str, PipelineEntry]:
        return cfg.document.pipelines

    pipelines = Pipelines(
        register=register,
        stages=ledger.stages,
        tasks=ledger.tasks,
        missions=ledger.missions,
        runs=ledger.runs,
        reviews=ledger.reviews,
        # a gate is of the commit its line's door repo holds
        judged=Judged(ledger.tasks, ledger.lines, ledger.runs, repos.line_tip if repos else no_tip),
        notices=ledgered.notifier,
        pipelines=configured,
        roster=fleet.roster,
    )
    fleet.subscribe(pipelines.hear)  # after the tasks': a line moved past a gate's commit

    async def stop_tasks() -> None:
        await pipelines.stop()  # no gate runs on, and none starts a stage, once tasks stop
        await register.stop()

    at.stops.add(Stop.TASKS, stop_tasks)
    return register, pipelines


def review_agents(cfg: Config, repos: Repos | None = None) -> frozenset[str]:
    """The agents a repository (as ``repos`` works on them now: a reload may add one) or a
    forge of ``cfg`` names to review its work."""
    entries = (
        [repos.entry(n) for n in repos.names()] if repos is not None else list(cfg.repos.values())
    )
    policies = [e.review for e in entries] + [f.review for f in cfg.forges.values()]
    return frozenset(p.agent for p in policies if p is not None)

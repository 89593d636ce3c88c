"""Forge work wired for tests over a real ledger: the in-memory forge
(:mod:`tests.unit.fleet.forge.forge_double`), a fake launcher that records every call and
whose running agents the test controls, and builders for the forge's events."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from fleet.errors import AgentNotRunning, FleetError, FleetwardenError
from fleet.events import EventKind as FleetKind
from fleet.events import FleetEvent, Listener
from fleet.forge.events.kept import kept
from fleet.forge.fleet_launcher import Waits
from fleet.forge.launcher import LaunchRefused, OtherLine, Started
from fleet.forge.model import EventKind, ForgeApiError, ForgeEvent
from fleet.forge.posts.provenance import Expected, ProvenanceSource, RunRecords
from fleet.forge.posts.publish import Tell
from fleet.forge.runs.built import build_work
from fleet.forge.runs.desk import ForgeDesk
from fleet.forge.runs.watch import ForgeWatch
from fleet.forge.runs.work import ForgeWork
from fleet.forge.schema import ForgeEntry
from fleet.forge.tasks import ForgeTasks
from fleet.ledger import Ledger
from fleet.ledger.records.budgets import Freeze
from fleet.ledger.records.forge import ForgeRunRecord
from fleet.ledger.records.lines import LineRecord, LineState
from fleet.ledger.stores.code.forge import ForgeStore
from fleet.model import AgentState
from fleet.names import agent_name
from fleet.repos.desk import NoLine
from fleet.repos.schema import RepoEntry
from fleet.supervisor.admission.request import LaunchRequest
from fleet.supervisor.turns import Turns
from fleet.timing.clock import ManualClock
from tests.unit.fleet.forge.forge_double import BOT, HEAD_SHA, SLUG, WHEN, Comment, FakeForgeApi

FORGE = "hub"
AGENT = "coder"
LABEL = "fleetwarden:coder"
BRANCH = "fw/coder/issue-3"
SECRET = "sk-live-SECRET0123456789"
NO_SCOPE = ForgeApiError(
    "GitHub refused POST /repos/acme/app/pulls: 403 Resource not accessible by personal "
    "access token",
    403,
)
"""GitHub's refusal of a pull request to a token without pull requests write."""
_NAMES = {
    EventKind.LABELED: "issues",
    EventKind.UNLABELED: "issues",
    EventKind.ASSIGNED: "issues",
    EventKind.UNASSIGNED: "issues",
    EventKind.OPENED: "issues",
    EventKind.CLOSED: "issues",
    EventKind.COMMENT: "issue_comment",
    EventKind.REVIEW: "pull_request_review",
    EventKind.PULL_CLOSED: "pull_request",
}
_deliveries = itertools.count(1)


def redact(text: str) -> str:
    """The app's redactor, as far as the tests need it: the one known secret."""
    return text.replace(SECRET, "[REDACTED]")


def event(kind: EventKind, number: int = 3, actor: str = "alice", **fields: Any) -> ForgeEvent:
    """An event of ``kind`` on ``number`` of acme/app by ``actor``, with a fresh delivery."""
    fields.setdefault("is_pull", False)
    return ForgeEvent(
        forge=fields.pop("forge", FORGE),
        delivery=fields.pop("delivery", f"d-{next(_deliveries)}"),
        kind=kind,
        name=_NAMES.get(kind, "other"),
        repo=fields.pop("repo", SLUG),
        number=number,
        actor=actor,
        at=WHEN,
        **fields,
    )


__all__ = ["BOT", "HEAD_SHA", "SLUG", "WHEN", "Comment", "FakeForgeApi"]


def provenance_source(
    ledger: Ledger, clock: ManualClock, tasks: ForgeTasks | None = None
) -> ProvenanceSource:
    """Forge runs' provenance read from ``ledger``'s stores, for a test version
    (``tasks``: the forge runs' tasks, none without)."""
    return ProvenanceSource(
        RunRecords(
            agents=ledger.agents,
            runs=ledger.runs,
            metering=ledger.metering,
            approvals=ledger.approvals,
            lines=ledger.lines,
            refusals=ledger.refusals,
            forge=ledger.forge,
        ),
        clock=clock,
        version="9.9.9-test",
        expected=Expected(quotes=ledger.quotes, tasks=tasks),
    )


@dataclass
class FakeLauncher:
    """The fleet as forge work drives it: records every call; ``running`` is the test's.
    A start stands for the admission too: its agent not free for the run (``busy_why``:
    the words the admission would give, a full cap's among them; ``running``; at work on
    another issue's run of ``forge``) writes the run to the spawn queue (``in_queue``) and
    says why; ``drain``: the spawn queue's turn, started when a run's end kicks it."""

    repos: dict[str, str] = field(default_factory=lambda: {AGENT: "app"})
    running: set[str] = field(default_factory=set)
    frozen: set[str] = field(default_factory=set)
    other_work: dict[str, int] = field(default_factory=dict)  # agent → the line it works on
    busy_why: dict[str, str] = field(default_factory=dict)  # the admission's words
    forge: ForgeStore | None = None  # the runs the ownership stage reads
    drain: Callable[[], None] = lambda: None  # the spawn queue looks for what may start
    kicks: int = 0
    in_queue: set[int] = field(default_factory=set)  # forge runs waiting in the spawn queue
    refuse: dict[str, str | LaunchRefused] = field(default_factory=dict)
    sessionless: set[str] = field(default_factory=set)  # a follow-up needs their live run
    headless: set[str] = field(default_factory=set)  # a follow-up waits for their run's end
    push_error: FleetwardenError | None = None
    door_refused: str | None = None  # why the git door refused the run's last push
    base_ref: str = "trunk"
    newest: int = 7  # the agent's newest live line (its session works on it)
    ended: dict[int, LineState] = field(default_factory=dict)  # lines merged or discarded
    calls: list[tuple[Any, ...]] = field(default_factory=list)
    starts: list[dict[str, str]] = field(default_factory=list)
    co_authors: list[str | None] = field(default_factory=list)  # each start's requester
    quote_unders: list[float | None] = field(default_factory=list)  # each start's limit
    tasks: list[int | None] = field(default_factory=list)  # each start's task
    asked: asyncio.Event = field(default_factory=asyncio.Event)
    listeners: list[Listener] = field(default_factory=list)  # the fleet's, as Turns hears it
    turns: Turns = field(init=False)
    _runs: itertools.count[int] = field(default_factory=lambda: itertools.count(100))

    def __post_init__(self) -> None:
        self.turns = Turns(self.listeners.append)

    async def tell(self, agent: str, kind: FleetKind, *, ending: bool = False) -> None:
        """The fleet tells ``kind`` of ``agent`` (a TURN_OVER whose process ends with it
        when ``ending``); its run's end leaves it not running."""
        if kind in (FleetKind.ENDED, FleetKind.GAVE_UP):
            self.running.discard(agent)
        idle = kind is FleetKind.TURN_OVER and not ending
        state = AgentState.IDLE if idle else AgentState.RUNNING
        event = FleetEvent(agent_name(agent), kind, state, str(kind), False, 100)
        for listener in list(self.listeners):
            await listener(event)

    def named(self, method: str) -> list[tuple[Any, ...]]:
        return [call for call in self.calls if call[0] == method]

    def ops(self) -> list[str]:
        return [call[0] for call in self.calls if call[0] not in ("is_running", "line", "busy")]

    async def repo_of(self, agent: str) -> str | None:
        return self.repos.get(agent)

    async def agents(self) -> dict[str, str | None]:
        return dict(self.repos)

    async def queued(self, key: int) -> bool:
        return key in self.in_queue

    async def unqueue(self, key: int) -> None:
        self.calls.append(("unqueue", key))
        self.in_queue.discard(key)

    def kick(self) -> None:
        self.kicks += 1
        self.drain()

    async def _not_free(self, agent: str, key: int) -> str | None:
        """Why the admission holds forge run ``key`` of ``agent`` (``None``: it does not)."""
        if agent in self.busy_why:
            return self.busy_why[agent]
        if agent in self.running:
            return f"{agent} is running"
        other = await self.forge.agent_forge_run(agent) if self.forge is not None else None
        if other is not None and other.id != key:
            return f"{agent} works on {other.slug}#{other.issue} until its PR closes"
        return None

    async def start(self, request: LaunchRequest, *, key: int | None = None) -> Started:
        agent, branch = request.agent, request.branch
        why = None if key is None else await self._not_free(agent, key)
        if why is not None and key is not None:
            self.in_queue.add(key)  # written to the spawn queue (back in its place)
            raise Waits(why)
        self.calls.append(("start", agent, branch))
        self.quote_unders.append(request.quote_under)
        self.tasks.append(request.task)
        self._refused(agent)
        self.starts.append(
            {"agent": agent, "repo": request.repo or "", "branch": branch or "",
             "prompt": request.prompt or "", "by": request.by}
        )  # fmt: skip
        self.co_authors.append(request.co_author)
        self.running.add(agent)
        return Started(run_id=next(self._runs), line_id=7)

    def _refused(self, agent: str) -> None:
        """Refuse ``agent``'s launch as :attr:`refuse` says (its words, or the refusal)."""
        refusal = self.refuse.get(agent)
        if isinstance(refusal, LaunchRefused):
            raise refusal
        if refusal is not None:
            raise LaunchRefused(refusal)

    async def start_on_line(self, request: LaunchRequest, line_id: int | None) -> Started:
        agent = request.agent
        self.calls.append(("start_on_line", agent, line_id))
        self.quote_unders.append(request.quote_under)
        self.tasks.append(request.task)
        self._refused(agent)
        self.starts.append(
            {"agent": agent, "repo": request.repo or "", "line": str(line_id),
             "prompt": request.prompt or "", "by": request.by}
        )  # fmt: skip
        self.running.add(agent)
        return Started(run_id=next(self._runs), line_id=line_id)

    async def follow_up(
        self, agent: str, text: str, *, by: str, line_id: int | None = None
    ) -> int | None:
        self.calls.append(("follow_up", agent, text, by))
        if line_id is not None and line_id != self.newest:
            raise OtherLine(f"not continued: {agent} works on another branch now")
        if agent in self.sessionless and agent not in self.running:
            raise AgentNotRunning(f"{agent} is exited, not running — spawn it first")
        if agent in self.headless and agent in self.running and agent not in self.frozen:
            raise FleetError(f"{agent}'s turn is under way")
        self.running.add(agent)
        return next(self._runs)

    async def is_running(self, agent: str) -> bool:
        self.calls.append(("is_running", agent))
        self.asked.set()
        return agent in self.running

    async def is_frozen(self, agent: str) -> bool:
        return agent in self.frozen

    async def stop(self, agent: str, *, by: str, line_id: int | None = None) -> None:
        if line_id is not None and self.other_work.get(agent) not in (None, line_id):
            return  # the agent runs other work: not the forge run's to stop
        self.calls.append(("stop", agent, by))
        self.running.discard(agent)

    async def freeze(self, agent: str, *, by: str) -> None:
        self.calls.append(("freeze", agent, by))
        self.running.discard(agent)
        self.frozen.add(agent)

    async def line(self, agent: str, line_id: int | None = None) -> LineRecord | None:
        self.calls.append(("line", agent))
        key = self.newest if line_id is None else line_id
        return LineRecord(
            id=key,
            repo=self.repos.get(agent, "app"),
            agent=agent,
            line=100,
            branch=BRANCH if key == 7 else f"fw/{agent}/{key}",
            base_ref=self.base_ref if key == 7 else "other-base",
            fork_sha=HEAD_SHA,
            checkout="/nonexistent/checkout",
            state=self.ended.get(key, LineState.LIVE),
            created_at=WHEN,
        )

    async def push(self, agent: str, line_id: int | None = None) -> str:
        self.calls.append(("push", agent, self.newest if line_id is None else line_id))
        if (line_id or self.newest) in self.ended:
            raise NoLine(f"the branch of {agent}'s line {line_id} is no longer live")
        if self.push_error is not None:
            raise self.push_error
        return HEAD_SHA

    async def push_at_end(self, agent: str) -> None:
        self.calls.append(("push_at_end", agent))

    async def push_refused(self, agent: str, line_id: int | None = None) -> str | None:
        return self.door_refused

    async def discard(self, agent: str, *, line_id: int | None = None) -> None:
        self.calls.append(("discard", agent))


def forge_entry(**changes: Any) -> ForgeEntry:
    fields: dict[str, Any] = {
        "kind": "github",
        "token_env": "FORGE_TOKEN",
        "webhook_secret_env": "FORGE_HOOK_SECRET",
        "login": BOT,
        "agent": AGENT,
    }
    return ForgeEntry.model_validate(fields | changes)


@dataclass
class WorkRig:
    """Forge work, its publisher, desk and watch over a real ledger and the fakes."""

    ledger: Ledger
    clock: ManualClock
    api: FakeForgeApi
    launcher: FakeLauncher
    entry: ForgeEntry
    work: ForgeWork
    desk: ForgeDesk
    watch: ForgeWatch

    @classmethod
    def make(
        cls,
        ledger: Ledger,
        clock: ManualClock,
        *,
        entry: ForgeEntry | None = None,
        turn_wait: float = 0.05,
        redactor: Callable[[str], str] = redact,
        api: FakeForgeApi | None = None,
        launcher: FakeLauncher | None = None,
        tell: Tell | None = None,
        freezes: Callable[[], Awaitable[list[Freeze]]] | None = None,
        tasks: ForgeTasks | None = None,
    ) -> WorkRig:
        """Forge work over ``ledger``; a fresh forge holding issue #3 (alice may write)
        and a fresh launcher unless given (a restart keeps the forge and the fleet);
        ``tasks``: the forge runs' tasks (none without)."""
        entry = entry or forge_entry()
        if api is None:
            api = FakeForgeApi()
            api.add_issue()
            api.allow("alice")
        launcher = launcher or FakeLauncher()
        launcher.forge = ledger.forge
        built = build_work(
            forges={FORGE: entry},
            apis={FORGE: api},
            repos={"app": RepoEntry(url="https://github.com/acme/app.git", forge=FORGE)},
            launcher=launcher,
            source=provenance_source(ledger, clock, tasks),
            redact=redactor,
            tell=tell,
            freezes=freezes,
            turn_wait=turn_wait,
        )
        work = built.work
        rig = cls(ledger, clock, api, launcher, entry, work, built.desk, built.watch)
        launcher.drain = lambda: work.spawn(rig.queue_turn(), "the spawn queue")
        return rig

    async def queue_turn(self) -> None:
        """The spawn queue's drain: each forge run waiting there, oldest first, started as
        its listener (:class:`fleet.forge.runs.queued.QueuedRuns`) starts it — one its
        agent is not free for goes back in its place."""
        for key in sorted(self.launcher.in_queue):
            record = await self.ledger.forge.forge_run(key)
            self.launcher.in_queue.discard(key)
            if record is None or record.ended_at is not None or record.state != "queued":
                continue
            async with self.work.lock(record.forge, record.slug, record.issue):
                await self.work.starts.launch(record, own_turn=True)

    async def deliver(self, ev: ForgeEvent) -> str:
        """Take ``ev`` as the endpoint does, let its work finish; the delivery's outcome."""
        assert await self.ledger.forge.take_delivery(ev.forge, ev.delivery, ev.name, kept(ev))
        await self.work.receive(ev)
        await self.work.settle()
        for taken in await self.ledger.forge.deliveries(ev.forge, limit=1000):
            if taken.delivery == ev.delivery:
                return taken.outcome
        raise AssertionError(f"delivery {ev.delivery} was not kept")

    async def started(self, number: int = 3) -> ForgeRunRecord:
        """Label issue ``number`` for the agent by alice; its live run."""
        outcome = await self.deliver(event(EventKind.LABELED, number, label=LABEL))
        assert outcome.startswith("started"), outcome
        return await self.run(number)

    async def refused_at_done(self) -> ForgeRunRecord:
        """A run whose agent said `done ok` (its turn over) while the forge refuses pull
        requests (:data:`NO_SCOPE`); the run as it stands then."""
        record = await self.started()
        self.api.failures["open_pull"] = NO_SCOPE
        self.launcher.running.discard(AGENT)
        scope = await self.desk.scope_of(AGENT)
        assert scope is not None
        await self.desk.done(scope, "ok", "Fixed the parser.")
        await self.work.settle()
        return await self.record(record.id)

    async def run(self, number: int = 3) -> ForgeRunRecord:
        record = await self.ledger.forge.live_forge_run(FORGE, SLUG, number)
        assert record is not None
        return record

    async def record(self, key: int) -> ForgeRunRecord:
        record = await self.ledger.forge.forge_run(key)
        assert record is not None
        return record

    def status(self, record: ForgeRunRecord) -> Comment:
        """The run's one status comment, as the forge keeps it."""
        assert record.comment_id is not None
        return self.api.posted[record.comment_id]

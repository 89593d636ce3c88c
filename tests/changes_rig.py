"""A ledger's worth of changes for the cost-per-merged-change report: a dozen runs of two
agents on two runtimes and two models, some merged (here and on the forge), one closed
unmerged, some abandoned, one open, with usage, approvals and forge audits written through
the real stores — and the figures summed by hand (:data:`EXPECTED`).

The clock is moved by hand: every time in the ledger is known to the second."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from fleet.ledger import Ledger
from fleet.ledger.records.approvals import ApprovalState, Ask
from fleet.ledger.records.forge import ForgeRunState, NewForgeRun, Slug
from fleet.ledger.records.lines import LineState
from fleet.ledger.stores.running.runs import RunStart
from fleet.metering.counting.events import Outcome, Tokens, UsageEvent
from fleet.model import AgentSpec, DesiredState, ExitInfo, RunHandle
from fleet.names import AgentName
from fleet.timing.clock import ManualClock

WINDOW = timedelta(days=1)
"""From the rig's first run to where the report's window begins: the old change before it
is left out. :func:`build` returns that time."""
SONNET = "claude-sonnet-4-5"
GPT = "gpt-5-codex"
HOSTILE = "=cmd|' /C calc'!A0 <b>*bold*</b> | @room"
"""A model name an agent chose: most of the tokens of the tester's open change."""


@dataclass(frozen=True, slots=True)
class Use:
    model: str
    tokens: int
    cost_usd: float | None  # None: no price


def _event(agent: str, at: datetime, use: Use) -> UsageEvent:
    return UsageEvent(
        at=at,
        agent=agent,
        provider="anthropic" if use.model == SONNET else "openai",
        api="responses",
        requested_model=use.model,
        served_model=use.model,
        tokens=Tokens(input=use.tokens // 2, output=use.tokens - use.tokens // 2),
        stream=True,
        status=200,
        outcome=Outcome.OK,
        latency_ms=500.0,
        ttfb_ms=100.0,
        request_id=None,
        cost_usd=use.cost_usd,
        priced=use.cost_usd is not None,
    )


class Rig:
    """Writes runs, lines and their spending into a ledger as Fleetwarden does."""

    def __init__(self, ledger: Ledger, clock: ManualClock) -> None:
        self.ledger = ledger
        self.clock = clock
        self.asks = 0

    async def agent(self, name: str, runtime: str, model: str) -> None:
        spec = AgentSpec(
            name=AgentName(name), runtime=runtime, backend="tmux", model=model, prompt="work"
        )
        await self.ledger.agents.upsert_agent(spec, DesiredState.RUNNING)

    async def line(self, agent: str, branch: str) -> int:
        return await self.ledger.lines.add_line(
            repo="app", agent=agent, branch=branch, base_ref="main", fork_sha="0" * 40,
            checkout=f"/srv/checkouts/app/{branch}",
        )  # fmt: skip

    async def run(
        self,
        line: int,
        agent: str,
        runtime: str,
        uses: tuple[Use, ...],
        *,
        asks: int = 0,
        ruled: int = 0,
        end: bool = True,
    ) -> int:
        """A run of ``agent`` on ``line``: started, its requests metered a minute apart,
        its asks recorded (``asks`` put to people, ``ruled`` allowed at once by a rule),
        ended ten minutes after it began (unless ``end`` is false)."""
        began = self.clock.now()
        handle = RunHandle("tmux", 4000, 4000, Path("/run/fw"), Path("/run/fw/log"))
        record = await self.ledger.runs.start_run(agent, handle)
        await self.ledger.lines.line_ran(line, record.id)
        start = RunStart("spawned by @ops:example.org", (), None, None, 0, runtime, None)
        await self.ledger.runs.record_run_start(record, start)
        for n, use in enumerate(uses, 1):
            await self.ledger.metering.record_metering(
                [_event(agent, began + timedelta(minutes=n), use)], []
            )
        for n in range(asks + ruled):
            self.asks += 1
            await self.ledger.approvals.open_approval(
                agent=agent, run_id=record.id, channel="claude",
                ask=Ask(native_id=f"ask-{self.asks}", tool="Bash", subject="make test"),
                deadline=began + timedelta(hours=1), starter=None,
                **({} if n < asks else {"state": ApprovalState.ALLOWED, "how": "rule"}),
            )  # fmt: skip
        if end:
            self.clock.advance((began + timedelta(minutes=10) - self.clock.now()).total_seconds())
            await self.ledger.runs.end_run(record.id, ExitInfo(exit_code=0, reason="done"))
        return record.id

    def later(self, minutes: float) -> None:
        self.clock.advance(minutes * 60)

    async def forge_run(self, agent: str, line: int, issue: int) -> int:
        added = await self.ledger.forge.add_forge_run(NewForgeRun(
            forge="github", repo="app", slug=Slug("acme", "app"), issue=issue, title="fix it",
            agent=agent, branch=f"fw/{issue}", requester="alice", issue_url="",
            state=ForgeRunState.WORKING,
        ))  # fmt: skip
        assert added is not None
        await self.ledger.forge.update_forge_run(added.id, line_id=line, pull=issue + 100)
        return added.id

    async def pull_closed(self, agent: str, line: int, forge_run: int, how: str) -> None:
        """As forge work ends a run whose pull request closed: its line discarded, the run
        ended, ``end`` audited."""
        await self.ledger.lines.update_line(line, state=LineState.DISCARDED, ended_at=None)
        await self.ledger.forge.update_forge_run(
            forge_run, state=ForgeRunState.ENDED, ended_at=self.clock.now()
        )
        record = await self.ledger.forge.forge_run(forge_run)
        assert record is not None
        said = f"PR #{record.pull} {how}"
        await self.ledger.forge.audit_forge(forge_run, agent, "end", True, said)


async def build(ledger: Ledger, clock: ManualClock) -> datetime:
    """The changes, from the clock's time on: see :data:`EXPECTED` for what the report
    since the time returned must say of them. The clock is left 5 minutes after the last
    request, the tester's last run still at work."""
    rig = Rig(ledger, clock)
    since = clock.now() + WINDOW
    await rig.agent("coder", "claude", SONNET)
    await rig.agent("tester", "codex", GPT)
    # Before the window: merged a day early, never in the report.
    old = await rig.line("coder", "fw/old")
    await rig.run(old, "coder", "claude", (Use(SONNET, 9000, 4.0),))
    await ledger.lines.update_line(old, state=LineState.MERGED, ended_at=None)
    clock.advance((since + timedelta(hours=1) - clock.now()).total_seconds())
    # A: coder, chat, two runs, merged here; one ask.
    a = await rig.line("coder", "fw/a")
    await rig.run(a, "coder", "claude", (Use(SONNET, 1000, 0.5),), asks=1)
    rig.later(5)  # a request between runs belongs to no run
    await ledger.metering.record_metering([_event("coder", clock.now(), Use(SONNET, 7, 0.5))], [])
    rig.later(5)
    await rig.run(a, "coder", "claude", (Use(SONNET, 500, 0.25),))
    await ledger.lines.update_line(a, state=LineState.MERGED, ended_at=None)  # 30 min after cut
    # B: coder, forge, its pull request merged; served by two models, sonnet the most.
    b = await rig.line("coder", "fw/b")
    fb = await rig.forge_run("coder", b, 7)
    await rig.run(b, "coder", "claude", (Use(SONNET, 2000, 1.0), Use(GPT, 100, 0.125)))
    rig.later(50)
    await rig.pull_closed("coder", b, fb, "merged")  # 60 min after cut
    # C: coder, forge, its pull request closed unmerged.
    c = await rig.line("coder", "fw/c")
    fc = await rig.forge_run("coder", c, 8)
    await rig.run(c, "coder", "claude", (Use(SONNET, 400, 0.25),))
    await rig.pull_closed("coder", c, fc, "closed")
    # D: coder, chat, discarded; a fresh branch E cut while it was live (merged), and a run
    # on D after E ended: runs D, E, D — E's run is E's alone.
    d = await rig.line("coder", "fw/d")
    await rig.run(d, "coder", "claude", (Use(SONNET, 300, 0.125),))
    e = await rig.line("coder", "fw/e")
    await rig.run(e, "coder", "claude", (Use(SONNET, 800, 0.5),))
    rig.later(80)
    await ledger.lines.update_line(e, state=LineState.MERGED, ended_at=None)  # 90 min after cut
    await rig.run(d, "coder", "claude", (Use(SONNET, 200, 0.0625),))
    await ledger.lines.update_line(d, state=LineState.DISCARDED, ended_at=None)
    # F: tester, chat, merged; two runs, one request unpriced, two asks.
    f = await rig.line("tester", "fw/f")
    await rig.run(f, "tester", "codex", (Use(GPT, 1200, 0.75),))
    uses = (Use(GPT, 600, 0.375), Use(GPT, 50, None))
    await rig.run(f, "tester", "codex", uses, asks=2, ruled=1)  # the rule's is no ask of people
    await ledger.lines.update_line(f, state=LineState.MERGED, ended_at=None)  # 20 min after cut
    # G: tester, forge, the issue unlabelled: the run stopped, its branch left live.
    g = await rig.line("tester", "fw/g")
    fg = await rig.forge_run("tester", g, 9)
    await rig.run(g, "tester", "codex", (Use(GPT, 100, 0.0625),))
    await ledger.forge.update_forge_run(fg, state=ForgeRunState.STOPPED, ended_at=clock.now())
    # H: tester, still at work: its run has not ended.
    h = await rig.line("tester", "fw/h")
    await rig.run(h, "tester", "codex", (Use(GPT, 300, 0.25), Use(HOSTILE, 400, 0.125)), end=False)
    rig.later(5)
    return since


@dataclass(frozen=True, slots=True)
class Expected:
    """One row of the report, summed by hand."""

    agent: str
    runtime: str
    model: str
    merged: int
    closed: int
    abandoned: int
    open: int
    tokens: int
    cost_usd: float
    merged_cost_usd: float
    median_merged_cost_usd: float | None
    median_time_to_merge: float | None
    approvals: int
    unpriced: int


CODER = Expected(
    agent="coder", runtime="claude", model=SONNET,
    merged=3, closed=1, abandoned=1, open=0,
    tokens=1000 + 500 + 2000 + 100 + 400 + 300 + 800 + 200,  # A, B, C, D, E
    cost_usd=0.5 + 0.25 + 1.0 + 0.125 + 0.25 + 0.125 + 0.5 + 0.0625,
    merged_cost_usd=0.75 + 1.125 + 0.5,  # A, B, E
    median_merged_cost_usd=0.75,  # of 0.5, 0.75, 1.125
    median_time_to_merge=60 * 60.0,  # of 30, 60, 90 minutes
    approvals=1, unpriced=0,
)  # fmt: skip
TESTER = Expected(
    agent="tester", runtime="codex", model=GPT,
    merged=1, closed=0, abandoned=1, open=0,
    tokens=1200 + 600 + 50 + 100,  # F, G
    cost_usd=0.75 + 0.375 + 0.0625,
    merged_cost_usd=1.125,
    median_merged_cost_usd=1.125,
    median_time_to_merge=20 * 60.0,
    approvals=2, unpriced=1,
)  # fmt: skip
OPEN = Expected(
    agent="tester", runtime="codex", model=HOSTILE,
    merged=0, closed=0, abandoned=0, open=1,
    tokens=300 + 400,  # H: most of it served by the hostile name
    cost_usd=0.25 + 0.125,
    merged_cost_usd=0.0, median_merged_cost_usd=None, median_time_to_merge=None,
    approvals=0, unpriced=0,
)  # fmt: skip
EXPECTED = (CODER, TESTER, OPEN)
"""The report's rows since the time :func:`build` returns, most changes first."""

"""Tests for fleet.forge.fleet_launcher: forge work's hands on the fleet act on the forge run's
own line — a follow-up goes into the agent's session only while that session works on the
run's line (the newest live one), and a push pushes the line it is given, an earlier live
one too, never the agent's newer work — over a real ledger's lines."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import datetime
from typing import cast

import pytest

from fleet.budgets.quoting.quote import quote_of
from fleet.budgets.quoting.words import over_limit
from fleet.forge.fleet_launcher import HELD_BY_BUDGET, NOT_ADMITTED, FleetLauncher, Waits
from fleet.forge.launcher import LaunchRefused, OtherLine
from fleet.ledger import Ledger
from fleet.ledger.records.lines import LineRecord, LineState
from fleet.repos.desk import NoLine
from fleet.repos.service import Repos
from fleet.repos.verbs import RepoVerbs
from fleet.supervisor.admission.admit import Admission
from fleet.supervisor.admission.request import Queued, Refused
from fleet.supervisor.fleet import Fleet
from tests.fakes.doubles.fleet import FakeFleet
from tests.unit.chat_fakes import T0

AGENT = "coder"


@dataclass
class FakeRepos:
    """The repositories over the ledger's lines; pushes recorded, never made."""

    ledger: Ledger
    pushed: list[int] = field(default_factory=list)
    launching: set[str] = field(default_factory=set)
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    async def line_of(self, agent: str) -> LineRecord | None:
        return await self.ledger.lines.live_line(agent)

    def lock(self, agent: str) -> asyncio.Lock:
        return self._lock

    async def live(self, agent: str) -> LineRecord:
        line = await self.ledger.lines.live_line(agent)
        if line is None:
            raise NoLine(f"{agent} has no branch")
        return line

    async def push_line(
        self, line: LineRecord, *, unreviewed: bool = False, draft: bool = False
    ) -> str:
        assert draft and not unreviewed  # a forge run's push: its pull request a draft if held
        self.pushed.append(line.id)
        return "0" * 40


async def _line(ledger: Ledger, branch: str) -> int:
    return await ledger.lines.add_line(
        repo="app", agent=AGENT, branch=branch, base_ref="main", fork_sha="1" * 40, checkout="/x"
    )


@pytest.fixture
def parts(ledger: Ledger) -> tuple[FleetLauncher, FakeFleet, FakeRepos]:
    fleet, repos = FakeFleet(live={AGENT}), FakeRepos(ledger)
    launcher = FleetLauncher(
        cast(Fleet, fleet),
        cast(Repos, repos),
        cast(RepoVerbs, None),
        ledger.agents,
        ledger.runs,
        ledger.lines,
        cast(Admission, None),
    )
    return launcher, fleet, repos


async def test_a_follow_up_goes_only_into_a_session_on_the_runs_line(
    ledger: Ledger, parts: tuple[FleetLauncher, FakeFleet, FakeRepos]
) -> None:
    """The forge run's line is the newest live one: the words are sent. A newer line cut
    since (other work): refused, nothing sent, the other branch not named; the run's line
    ended: refused saying so."""
    launcher, fleet, _ = parts
    own = await _line(ledger, "fw/coder/issue-3")
    await launcher.follow_up(AGENT, "cover the cookie", by="@ann on gh", line_id=own)
    assert fleet.sent == [(AGENT, "cover the cookie", "@ann on gh")]
    newer = await _line(ledger, "fw/coder/9")
    with pytest.raises(OtherLine, match="works on another branch now") as refused:
        await launcher.follow_up(AGENT, "and the tests", by="@ann on gh", line_id=own)
    assert "fw/coder/9" not in str(refused.value)
    assert fleet.sent == [(AGENT, "cover the cookie", "@ann on gh")]
    await ledger.lines.update_line(newer, state=LineState.DISCARDED)
    await ledger.lines.update_line(own, state=LineState.DISCARDED)
    with pytest.raises(OtherLine, match="has ended"):
        await launcher.follow_up(AGENT, "and the tests", by="@ann on gh", line_id=own)
    assert len(fleet.sent) == 1


async def test_a_push_pushes_the_line_it_is_given_never_a_newer_one(
    ledger: Ledger, parts: tuple[FleetLauncher, FakeFleet, FakeRepos]
) -> None:
    """Line `own` pushed though a newer live line exists; `line` tells the run's line in
    whatever state; once discarded it is not pushed (NoLine), nor is the newer one."""
    launcher, _, repos = parts
    own = await _line(ledger, "fw/coder/issue-3")
    newer = await _line(ledger, "fw/coder/9")
    await launcher.push(AGENT, own)
    assert repos.pushed == [own]
    await ledger.lines.update_line(own, state=LineState.DISCARDED)
    found = await launcher.line(AGENT, own)
    assert found is not None and found.state is LineState.DISCARDED
    assert await launcher.line("someone-else", own) is None
    with pytest.raises(NoLine):
        await launcher.push(AGENT, own)
    assert repos.pushed == [own]
    newest = await launcher.line(AGENT)
    assert newest is not None and newest.id == newer


async def test_a_budgets_deferral_is_said_on_the_issue_in_general_words(
    parts: tuple[FleetLauncher, FakeFleet, FakeRepos],
) -> None:
    """A cap's words are the issue's; a budget's deferral names the operator's budget, so
    the issue hears the general words and the operator the budget's."""
    launcher, _, _ = parts

    async def deferred() -> Queued:
        return Queued("agent:coder is queued until 14:00 UTC", until=datetime(2025, 3, 1, 14))

    with pytest.raises(Waits) as waits:
        await launcher.launched(AGENT, deferred())
    assert waits.value.public == HELD_BY_BUDGET
    assert "agent:coder is queued until 14:00 UTC" in waits.value.detail

    async def capped() -> Queued:
        return Queued("global max_running 1 reached (1 running)")

    with pytest.raises(Waits) as waits:
        await launcher.launched(AGENT, capped())
    assert waits.value.public == "global max_running 1 reached (1 running)"


async def test_a_quote_over_its_limit_is_said_on_the_issue_and_holds_in_general_words(
    parts: tuple[FleetLauncher, FakeFleet, FakeRepos],
) -> None:
    """A launch refused over its quote tells the issue the quote and the fix (agent,
    runtime, model, dollars: the footer's own facts); a budget's holds keep the run queued
    in the general words, the numbers the operator's."""
    launcher, _, _ = parts
    quote = quote_of(AGENT, "claude", "sonnet", [(1, 9_000, 3.1)], None, T0)
    why = over_limit(quote, 2.0, "config")

    async def over() -> Refused:
        return Refused(why, quote)

    with pytest.raises(LaunchRefused) as refused:
        await launcher.launched(AGENT, over())
    assert refused.value.public == f"not started: {why}"
    assert "raise its `quote_under:` to 3.50 in the config" in refused.value.public

    async def budget_refused() -> Refused:
        return Refused("agent:coder reached its limit")

    with pytest.raises(LaunchRefused) as refused:
        await launcher.launched(AGENT, budget_refused())
    assert refused.value.public == NOT_ADMITTED

    async def held() -> Queued:
        return Queued("global: $0.40 spent + $2.70 held by 3 runs …", held=True)

    with pytest.raises(Waits) as waits:
        await launcher.launched(AGENT, held())
    assert waits.value.public == HELD_BY_BUDGET and "$2.70 held" in waits.value.detail


async def test_a_next_run_whose_agent_is_busy_is_refused_in_the_ownership_stages_words(
    parts: tuple[FleetLauncher, FakeFleet, FakeRepos],
) -> None:
    """A next run on the same line has nowhere to wait: the ownership stage refuses it
    (agent busy) in words fit for the issue, said there as "not started: …"; a budget's
    refusal still says only the general words."""
    launcher, _, _ = parts

    async def busy() -> Refused:
        return Refused("coder is running on other work", public=True)

    with pytest.raises(LaunchRefused) as refused:
        await launcher.launched(AGENT, busy())
    assert refused.value.public == "not started: coder is running on other work"
    assert not isinstance(refused.value, Waits)

"""Tests for an issue given to no agent that can start there: the issue is told that the
agent does not work on it and which labels do, naming no other repository of the config;
chat hears the issue, the label and why, once for the delivery."""

from __future__ import annotations

import pytest

from bot.render.forge import no_run_news
from fleet.forge.facts import NoRunNews, PullNews
from fleet.forge.model import EventKind, ForgeApiError
from fleet.ledger import Ledger
from fleet.timing.clock import ManualClock
from tests.unit.fleet.forge.runs.work_rig import SLUG, WorkRig, event


@pytest.fixture
def no_run_news_told() -> list[PullNews | NoRunNews]:
    return []


@pytest.fixture
def no_run_news_rig(
    ledger: Ledger, clock: ManualClock, no_run_news_told: list[PullNews | NoRunNews]
) -> WorkRig:
    async def tell(news: PullNews | NoRunNews) -> None:
        no_run_news_told.append(news)

    return WorkRig.make(ledger, clock, tell=tell)


async def test_an_agent_of_a_config_only_repository_is_not_named_on_the_issue(
    no_run_news_rig: WorkRig, no_run_news_told: list[PullNews | NoRunNews]
) -> None:
    """`fleetwarden:slow` for an agent on the config's `lib`: the issue reads that slow does
    not work here and the labels that do, never `lib`; chat hears why, with `lib`."""
    no_run_news_rig.launcher.repos["slow"] = "lib"
    outcome = await no_run_news_rig.deliver(event(EventKind.LABELED, label="fleetwarden:slow"))
    assert outcome == "answered: slow works on repository lib, not on app"
    [said] = no_run_news_rig.api.texts_on(3)
    body = said.split("<details>")[0]
    assert "**slow** does not work on this repository." in body
    assert "The labels that start a run here: `fleetwarden:coder`" in body
    assert "lib" not in body and "config" not in body
    [news] = no_run_news_told
    assert news == NoRunNews(
        agent="slow",
        slug=SLUG,
        issue=3,
        forge="hub",
        actor="alice",
        label="fleetwarden:slow",
        why="slow works on repository lib, not on app",
    )
    assert (
        await no_run_news_rig.work.resume_kept() == 0
    )  # acted on again after a restart: not told again
    assert len(no_run_news_told) == 1 and len(no_run_news_rig.api.texts_on(3)) == 1


async def test_chat_hears_of_a_refused_label_even_when_the_issue_cannot_be_told(
    no_run_news_rig: WorkRig, no_run_news_told: list[PullNews | NoRunNews]
) -> None:
    """The forge refusing the answer: chat still hears the label and why."""
    no_run_news_rig.api.failures["comment"] = ForgeApiError("GitHub refused POST: 502", 502)
    outcome = await no_run_news_rig.deliver(event(EventKind.LABELED, label="fleetwarden:nobody"))
    assert outcome.startswith("ignored: no agent is named nobody (not said on the issue")
    [news] = no_run_news_told
    assert isinstance(news, NoRunNews) and news.why == "no agent is named nobody"


def test_chats_line_names_the_issue_the_label_and_why_escaped() -> None:
    """One line: the issue, the label (forge text, escaped), who gave it, and why."""
    news = NoRunNews(
        agent="nobody",
        slug=SLUG,
        issue=3,
        forge="hub",
        actor="alice",
        label="fleetwarden:**x**",
        why="no agent is named nobody",
    )
    line = no_run_news(news)
    assert "\n" not in line and line.startswith("⚠ acme/app#3: the label")
    assert "**x**" not in line and "by @alice on hub" in line
    assert line.endswith("started no run — no agent is named nobody.")
    assign = no_run_news(NoRunNews("x", SLUG, 3, "hub", "alice", None, "no agent is named x"))
    assert "assigning it (by @alice on hub) started no run" in assign

"""Tests for fleet.forge.runs.decide: what each forge event asks of forge runs, decided from
the event, the issue's live run and the forge's config alone — no forge, no ledger."""

from __future__ import annotations

from dataclasses import replace

import pytest

from fleet.forge.model import EventKind, ForgeEvent
from fleet.forge.runs.decide import (
    Action,
    Begin,
    Continue,
    End,
    Ignore,
    IssueClosed,
    Spend,
    Stop,
    decide,
    mentions,
    trigger_agent,
)
from fleet.forge.schema import ForgeEntry, ForgeTrigger
from fleet.ledger.records.forge import ForgeRunRecord, ForgeRunState, Slug
from tests.unit.chat_fakes import T0

REPO = Slug("acme", "app")
ENTRY = ForgeEntry(
    kind="github", token_env="GH_TOKEN", poll_seconds=60, login="fw-bot", agent="coder"
)
RUN = ForgeRunRecord(
    id=1,
    forge="gh",
    repo="app",
    slug=REPO,
    issue=12,
    title="Fix it",
    agent="coder",
    branch="fleetwarden/coder/issue-12",
    state=ForgeRunState.WORKING.value,
    requester="alice",
    pull=30,
    pull_url=None,
    issue_url="https://github.example/acme/app/issues/12",
    comment_id=None,
    check_id=None,
    run_id=7,
    line_id=3,
    done_signal=None,
    done_status=None,
    summary=None,
    started_at=T0,
    activity_at=None,
    ended_at=None,
)
NO_PULL = replace(RUN, pull=None)


def event(kind: EventKind, number: int = 12, **more: object) -> ForgeEvent:
    base = ForgeEvent(
        forge="gh",
        delivery="d-1",
        kind=kind,
        name="issues",
        repo=REPO,
        number=number,
        is_pull=False,
        actor="alice",
        at=T0,
    )
    return replace(base, **more)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("what", "happened", "run", "action"),
    [
        ("labelled", event(EventKind.LABELED, label="fleetwarden:coder"), None, Begin("coder")),
        (
            "labelled, other prefix",
            event(EventKind.LABELED, label="bug"),
            None,
            Ignore("no trigger"),
        ),
        (
            "labelled, a run there",
            event(EventKind.LABELED, label="fleetwarden:coder"),
            RUN,
            Ignore("#12 already has a run of coder"),
        ),
        ("assigned to the bot", event(EventKind.ASSIGNED, assignee="FW-Bot"), None, Begin("coder")),
        (
            "assigned to another",
            event(EventKind.ASSIGNED, assignee="bob"),
            None,
            Ignore("no trigger"),
        ),
        ("opened, mentioning", event(EventKind.OPENED, body="hi @fw-bot"), None, Begin("coder")),
        (
            "a pull request labelled",
            event(EventKind.LABELED, label="fleetwarden:coder", is_pull=True),
            None,
            Ignore("no trigger"),
        ),
        (
            "the bot's own",
            event(EventKind.LABELED, actor="fw-bot"),
            None,
            Ignore("the bot's own doing"),
        ),
        (
            "a comment it posted",
            event(EventKind.COMMENT, comment_id=99, body="@fw-bot"),
            RUN,
            Ignore("a comment Fleetwarden posted"),
        ),
        (
            "a comment mentioning, no run",
            event(EventKind.COMMENT, body="@fw-bot go"),
            None,
            Begin("coder"),
        ),
        (
            "a comment, no run, no mention",
            event(EventKind.COMMENT, body="go"),
            None,
            Ignore("no run on it, and no mention of the bot"),
        ),
        (
            "a comment on the run's pull request",
            event(EventKind.COMMENT, number=30, is_pull=True, body="more tests"),
            RUN,
            Continue(RUN, "comment"),
        ),
        (
            "a comment on the issue, no mention",
            event(EventKind.COMMENT, body="more tests"),
            RUN,
            Ignore("a comment on the issue without a mention of the bot"),
        ),
        (
            "changes requested",
            event(EventKind.REVIEW, number=30, is_pull=True, review_state="changes_requested"),
            RUN,
            Continue(RUN, "review"),
        ),
        (
            "approved",
            event(EventKind.REVIEW, number=30, is_pull=True, review_state="approved", body="ok"),
            RUN,
            Ignore("approved, nothing to continue"),
        ),
        (
            "a review without words",
            event(EventKind.REVIEW, number=30, is_pull=True, review_state="commented"),
            RUN,
            Ignore("a review without words"),
        ),
        (
            "a review of another pull request",
            event(EventKind.REVIEW, number=31, is_pull=True, review_state="changes_requested"),
            RUN,
            Ignore("a review of no pull request of a run"),
        ),
        (
            "unlabelled, no run",
            event(EventKind.UNLABELED, label="fleetwarden:coder"),
            None,
            Ignore("no run on it"),
        ),
        (
            "the pull request closed",
            event(EventKind.PULL_CLOSED, number=30, is_pull=True),
            RUN,
            End(RUN),
        ),
        (
            "the pull request merged by the bot (merge from chat)",
            event(EventKind.PULL_CLOSED, number=30, is_pull=True, actor="fw-bot", merged=True),
            RUN,
            End(RUN),
        ),
        (
            "another pull request closed",
            event(EventKind.PULL_CLOSED, number=31, is_pull=True),
            RUN,
            Ignore("nothing to do"),
        ),
        (
            "unlabelled",
            event(EventKind.UNLABELED, label="fleetwarden:coder"),
            RUN,
            Stop(RUN, "unlabelled"),
        ),
        ("unlabelled, Gitea's word", event(EventKind.UNLABELED), RUN, Stop(RUN, "unlabelled")),
        (
            "another label taken",
            event(EventKind.UNLABELED, label="bug"),
            RUN,
            Ignore("nothing to do"),
        ),
        (
            "unassigned from the bot",
            event(EventKind.UNASSIGNED, assignee="fw-bot"),
            RUN,
            Stop(RUN, "unassigned"),
        ),
        (
            "unassigned from another",
            event(EventKind.UNASSIGNED, assignee="bob"),
            RUN,
            Ignore("nothing to do"),
        ),
        ("closed, its pull request open or not", event(EventKind.CLOSED), RUN, IssueClosed(RUN)),
        ("closed, no pull request", event(EventKind.CLOSED), NO_PULL, Stop(NO_PULL, "closed")),
    ],
)
def test_each_event_asks_one_action(
    what: str, happened: ForgeEvent, run: ForgeRunRecord | None, action: Action
) -> None:
    assert decide(happened, run, ENTRY, posted={99}) == action, what


def test_the_same_event_asks_the_same_action() -> None:
    """Pure: the event, the run and the config decide it, nothing else."""
    labelled = event(EventKind.LABELED, label="fleetwarden:coder")
    assert decide(labelled, None, ENTRY) == decide(labelled, None, ENTRY) == Begin("coder")


def test_triggers_switched_off_start_nothing() -> None:
    quiet = ENTRY.model_copy(update={"trigger": ForgeTrigger(assign=False, mention=False)})
    assert trigger_agent(quiet, event(EventKind.ASSIGNED, assignee="fw-bot")) is None
    assert trigger_agent(quiet, event(EventKind.OPENED, body="@fw-bot")) is None
    assert decide(event(EventKind.COMMENT, body="@fw-bot go"), None, quiet) == Ignore(
        "no run on it, and no mention of the bot"
    )
    assert decide(
        event(EventKind.COMMENT, body="@fw-bot go"), None, ENTRY.model_copy(update={"agent": None})
    ) == Ignore("no run on it, and no mention of the bot")


@pytest.mark.parametrize(
    ("text", "said"),
    [
        ("hi @fw-bot", True),
        ("@FW-BOT, go", True),
        ("@fw-bot2", False),
        ("me@fw-bot.example", False),
    ],
)
def test_a_mention_is_a_whole_word(text: str, said: bool) -> None:
    assert mentions(text, "fw-bot") is said


@pytest.mark.parametrize(
    ("body", "said"),
    [
        ("@fw-bot raise +$2", ("raise", "+$2")),
        ("@FW-bot raise", ("raise", None)),
        ("raise +50k @fw-bot!", ("raise", "+50k")),
        ("@fw-bot stop.", ("stop", None)),
        ("@fw-bot raise it a bit please", None),
        ("@fw-bot please stop touching the tests", None),
        ("@fw-bot2 raise +$2", None),
    ],
)
def test_a_comment_that_says_only_raise_or_stop_answers_the_ask(
    body: str, said: tuple[str, str | None] | None
) -> None:
    """Only the words of an answer, with the bot mentioned, are one; anything else is
    words for the agent."""
    action = decide(event(EventKind.COMMENT, body=body), RUN, ENTRY)
    if said is None:
        assert isinstance(action, (Continue, Ignore))
    else:
        assert action == Spend(RUN, *said)

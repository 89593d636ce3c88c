"""Tests for fleet.forge.events.poller: the events a round of polling finds through a forge's API,
their delivery ids the same each time the same event is found, and the cursor kept where
the forge's own clock says."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Literal

import pytest

from fleet.forge.events.poller import Poller
from fleet.forge.model import (
    ChangeKind,
    CheckRun,
    EventKind,
    ForgeApi,
    ForgeApiError,
    ForgeComment,
    ForgeEvent,
    ForgeFile,
    ForgeIssue,
    ForgePull,
    ForgeReview,
    IssueChange,
    Permission,
)
from fleet.forge.schema import ForgeEntry
from fleet.ledger.records.forge import Slug
from fleet.timing.clock import ManualClock
from tests.unit.chat_fakes import T0

REPO = Slug("acme", "app")
OTHER = Slug("acme", "lib")
ENTRY = ForgeEntry(
    kind="github", token_env="GH_TOKEN", poll_seconds=60, login="fw-bot", agent="coder"
)


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def issue(number: int, minutes: float, **more: object) -> ForgeIssue:
    base = ForgeIssue(
        number=number,
        title=f"Issue {number}",
        body=f"the words of issue {number}",
        author="alice",
        labels=(),
        assignees=(),
        state="open",
        url=f"https://github.com/acme/app/issues/{number}",
        updated_at=at(minutes),
    )
    return replace(base, **more)  # type: ignore[arg-type]


@dataclass
class FakeApi:
    """Just enough of a forge for the poller: issues, comments, pulls and reviews by
    repository, ``since`` applied as GitHub applies it (updated at or after), and every
    call counted."""

    kind: Literal["github", "gitea"] = "github"
    issues: dict[Slug, dict[int, ForgeIssue]] = field(default_factory=dict)
    notes: dict[tuple[Slug, int], list[ForgeComment]] = field(default_factory=dict)
    pulls: dict[tuple[Slug, int], ForgePull] = field(default_factory=dict)
    reviewed: dict[tuple[Slug, int], list[ForgeReview]] = field(default_factory=dict)
    changed: dict[tuple[Slug, int], list[IssueChange]] = field(default_factory=dict)
    broken: set[Slug] = field(default_factory=set)
    calls: list[str] = field(default_factory=list)

    def put(self, repo: Slug, found: ForgeIssue) -> None:
        self.issues.setdefault(repo, {})[found.number] = found

    def change(
        self, repo: Slug, number: int, kind: ChangeKind, name: str, who: str, minutes: float
    ) -> None:
        self.changed.setdefault((repo, number), []).append(
            IssueChange(kind, name, who, at(minutes))
        )

    def note(self, repo: Slug, number: int, comment_id: int, minutes: float, who: str) -> None:
        comment = ForgeComment(comment_id, who, f"comment {comment_id}", at(minutes), "u")
        self.notes.setdefault((repo, number), []).append(comment)

    async def open_issues(self, repo: Slug, *, since: datetime | None = None) -> list[ForgeIssue]:
        self.calls.append(f"open_issues {repo} {since.isoformat() if since else None}")
        if repo in self.broken:
            raise ForgeApiError("GitHub refused GET /repos/acme/lib/issues: 502 Bad Gateway", 502)
        return [
            i
            for i in self.issues.get(repo, {}).values()
            if i.state == "open" and (since is None or i.updated_at >= since)
        ]

    async def issue(self, repo: Slug, number: int) -> ForgeIssue:
        self.calls.append(f"issue {repo}#{number}")
        return self.issues[repo][number]

    async def comments(self, repo: Slug, number: int, *, pull: bool = False) -> list[ForgeComment]:
        self.calls.append(f"comments {repo}#{number}")
        return list(self.notes.get((repo, number), []))

    async def pull(self, repo: Slug, number: int) -> ForgePull:
        self.calls.append(f"pull {repo}#{number}")
        return self.pulls[(repo, number)]

    async def reviews(self, repo: Slug, number: int) -> list[ForgeReview]:
        self.calls.append(f"reviews {repo}#{number}")
        return list(self.reviewed.get((repo, number), []))

    async def issue_changes(self, repo: Slug, number: int) -> list[IssueChange]:
        self.calls.append(f"issue_changes {repo}#{number}")
        return list(self.changed.get((repo, number), []))

    async def comment(
        self, repo: Slug, number: int, body: str, *, pull: bool = False
    ) -> ForgeComment:
        raise AssertionError("the poller only reads")

    async def edit_comment(
        self, repo: Slug, comment_id: int, body: str, *, number: int = 0, pull: bool = False
    ) -> None:
        raise AssertionError("the poller only reads")

    async def find_pull(self, repo: Slug, head: str) -> ForgePull | None:
        raise AssertionError("not used")

    async def open_pull(
        self, repo: Slug, *, head: str, base: str, title: str, body: str, draft: bool
    ) -> ForgePull:
        raise AssertionError("the poller only reads")

    async def edit_pull(
        self, repo: Slug, number: int, *, title: str | None = None, body: str | None = None
    ) -> None:
        raise AssertionError("the poller only reads")

    async def request_review(self, repo: Slug, number: int, reviewers: list[str]) -> None:
        raise AssertionError("the poller only reads")

    async def file(self, repo: Slug, path: str, ref: str | None = None) -> ForgeFile:
        raise AssertionError("not used")

    async def permission(self, repo: Slug, login: str) -> Permission:
        raise AssertionError("not used")

    async def in_org(self, org: str, login: str) -> bool:
        raise AssertionError("not used")

    async def commit_address(self, repo: Slug, login: str) -> str | None:
        raise AssertionError("not used")

    async def in_team(self, org: str, team: str, login: str) -> bool:
        raise AssertionError("not used")

    async def delete_branch(self, repo: Slug, branch: str) -> None:
        raise AssertionError("the poller only reads")

    async def check_run(self, repo: Slug, run: CheckRun, check_id: int | None = None) -> int | None:
        raise AssertionError("the poller only reads")

    async def whoami(self) -> str:
        raise AssertionError("not used")

    async def git_token(self, repo: Slug) -> str:
        raise AssertionError("not used")

    async def close(self) -> None:
        pass


@dataclass
class Rig:
    api: FakeApi
    clock: ManualClock
    cursors: dict[tuple[str, Slug], str] = field(default_factory=dict)
    watched: list[tuple[Slug, int, bool]] = field(default_factory=list)

    def poller(self, slugs: Sequence[Slug] = (REPO,), entry: ForgeEntry = ENTRY) -> Poller:
        api: ForgeApi = self.api  # the fake is a ForgeApi, as mypy checks here

        async def get_cursor(forge: str, slug: Slug) -> str | None:
            return self.cursors.get((forge, slug))

        async def set_cursor(forge: str, slug: Slug, cursor: str) -> None:
            self.cursors[(forge, slug)] = cursor

        async def watched() -> Sequence[tuple[Slug, int, bool]]:
            return list(self.watched)

        return Poller(
            "gh",
            entry,
            api,
            slugs,
            get_cursor=get_cursor,
            set_cursor=set_cursor,
            clock=self.clock,
            watched=watched,
        )


@pytest.fixture
def poller_rig(clock: ManualClock) -> Rig:
    return Rig(FakeApi(), clock)


def ids(events: Sequence[ForgeEvent]) -> list[str]:
    return [e.delivery for e in events]


async def test_a_labelled_issue_is_a_labeled_event(poller_rig: Rig) -> None:
    """An open issue with a trigger label is LABELED, named by its label; other labels
    are nothing."""
    poller_rig.api.put(REPO, issue(3, -5, labels=("bug", "fleetwarden:coder")))
    poller_rig.api.change(REPO, 3, "labeled", "bug", "alice", -9)
    poller_rig.api.change(REPO, 3, "labeled", "fleetwarden:coder", "bob", -6)
    [event] = await poller_rig.poller().poll_once()
    assert (event.kind, event.label, event.number, event.repo) == (
        EventKind.LABELED,
        "fleetwarden:coder",
        3,
        REPO,
    )
    assert event.delivery == f"poll:acme/app#3:label:fleetwarden:coder:{at(-6).isoformat()}"
    assert (event.forge, event.name, event.at, event.is_pull) == ("gh", "issues", at(-6), False)
    assert event.actor == "bob"  # who gave the label, not who wrote the issue


async def test_the_same_event_polled_twice_has_the_same_id(poller_rig: Rig) -> None:
    """Rounds over an unchanged forge find the same events under the same ids (the
    ledger's dedupe stops a second run), a round from scratch too; a later change adds
    only new ones."""
    poller_rig.api.put(REPO, issue(3, -4, labels=("fleetwarden:coder",), assignees=("fw-bot",)))
    poller_rig.api.change(REPO, 3, "labeled", "fleetwarden:coder", "bob", -4)
    poller_rig.api.change(REPO, 3, "assigned", "fw-bot", "bob", -4)
    poller_rig.api.note(REPO, 3, 101, -5, "bob")
    poller = poller_rig.poller()
    first = ids(await poller.poll_once())
    stamp = at(-4).isoformat()
    assert sorted(first) == [
        f"poll:acme/app#3:assign:{stamp}",
        "poll:acme/app#3:comment:101",
        f"poll:acme/app#3:label:fleetwarden:coder:{stamp}",
    ]
    poller_rig.clock.advance(60)
    second = ids(await poller.poll_once())
    assert sorted(second) == [
        f"poll:acme/app#3:assign:{stamp}",
        f"poll:acme/app#3:label:fleetwarden:coder:{stamp}",
    ]
    poller_rig.cursors.clear()  # the cursor lost: the same events again, the same ids
    assert sorted(ids(await poller_rig.poller().poll_once())) == sorted(first)
    poller_rig.api.note(REPO, 3, 102, 1, "bob")
    poller_rig.api.put(REPO, replace(poller_rig.api.issues[REPO][3], updated_at=at(1)))
    third = ids(await poller.poll_once())
    assert set(third) - set(first) == {"poll:acme/app#3:comment:102"}


async def test_an_assignment_to_the_bot_is_an_assigned_event(poller_rig: Rig) -> None:
    """Assigned to the bot is ASSIGNED to it; to someone else, nothing; with assignment
    not a trigger, nothing."""
    poller_rig.api.put(REPO, issue(4, -5, assignees=("alice", "fw-bot")))
    poller_rig.api.put(REPO, issue(5, -5, assignees=("alice",)))
    poller_rig.api.change(REPO, 4, "assigned", "FW-Bot", "carol", -5)
    poller_rig.api.change(REPO, 5, "assigned", "alice", "carol", -5)
    [event] = await poller_rig.poller().poll_once()
    assert (event.kind, event.assignee, event.number) == (EventKind.ASSIGNED, "fw-bot", 4)
    assert (event.actor, event.at) == ("carol", at(-5))
    no_assign = ENTRY.model_copy(
        update={"trigger": ENTRY.trigger.model_copy(update={"assign": False})}
    )
    poller_rig.cursors.clear()
    assert await poller_rig.poller(entry=no_assign).poll_once() == []


async def test_comments_since_the_cursor_are_comment_events(poller_rig: Rig) -> None:
    """Comments on updated issues and pull requests made since the cursor are COMMENTs,
    with their author, words and id; on a pull request, is_pull."""
    poller_rig.api.put(REPO, issue(3, -5))
    poller_rig.api.put(REPO, issue(8, -2, is_pull=True))
    poller_rig.api.note(REPO, 3, 101, -5, "bob")
    poller_rig.api.note(REPO, 8, 201, -2, "carol")
    events = await poller_rig.poller().poll_once()
    assert [(e.kind, e.number, e.actor, e.comment_id, e.is_pull) for e in events] == [
        (EventKind.COMMENT, 3, "bob", 101, False),
        (EventKind.COMMENT, 8, "carol", 201, True),
    ]
    assert events[0].body == "comment 101" and events[0].name == "issue_comment"


async def test_the_first_round_looks_back_as_far_as_the_stale_limit(poller_rig: Rig) -> None:
    """With no cursor, the first round asks since max_event_age_seconds ago; older
    comments are not events."""
    poller_rig.api.put(REPO, issue(3, -5))
    poller_rig.api.note(REPO, 3, 100, -(ENTRY.max_event_age_seconds / 60) - 1, "bob")
    poller_rig.api.note(REPO, 3, 101, -5, "bob")
    events = await poller_rig.poller().poll_once()
    assert ids(events) == ["poll:acme/app#3:comment:101"]
    since = T0 - timedelta(seconds=ENTRY.max_event_age_seconds)
    assert poller_rig.api.calls[0] == f"open_issues acme/app {since.isoformat()}"


async def test_the_cursor_is_the_forges_latest_update(poller_rig: Rig) -> None:
    """The cursor moves to the newest updated_at the forge reported, and the next round
    asks since then."""
    poller_rig.api.put(REPO, issue(3, -5))
    poller_rig.api.put(REPO, issue(4, -3))
    poller = poller_rig.poller()
    await poller.poll_once()
    assert poller_rig.cursors[("gh", REPO)] == at(-3).isoformat()
    poller_rig.api.calls.clear()
    await poller.poll_once()
    assert poller_rig.api.calls[0] == f"open_issues acme/app {at(-3).isoformat()}"


async def test_a_failing_repository_keeps_its_cursor(poller_rig: Rig) -> None:
    """A repository whose forge refuses is skipped (its cursor kept) and the others are
    polled."""
    poller_rig.api.put(REPO, issue(3, -5, labels=("fleetwarden:coder",)))
    poller_rig.api.change(REPO, 3, "labeled", "fleetwarden:coder", "alice", -5)
    poller_rig.api.broken.add(OTHER)
    poller_rig.cursors[("gh", OTHER)] = at(-60).isoformat()
    events = await poller_rig.poller(slugs=(OTHER, REPO)).poll_once()
    assert ids(events) == [f"poll:acme/app#3:label:fleetwarden:coder:{at(-5).isoformat()}"]
    assert poller_rig.cursors[("gh", OTHER)] == at(-60).isoformat()


def pull(number: int, minutes: float, *, state: str = "open", merged: bool = False) -> ForgePull:
    return ForgePull(
        number=number,
        title="Fix it",
        body="",
        author="fw-bot",
        head="fleetwarden/coder/issue-3",
        base="main",
        head_sha="ec26c3e57ca3a959ca5aad62de7213c562f8c821",
        state=state,  # type: ignore[arg-type]
        merged=merged,
        draft=True,
        url=f"https://github.com/acme/app/pull/{number}",
        updated_at=at(minutes),
    )


async def test_a_watched_pull_request_closed_is_a_pull_closed_event(poller_rig: Rig) -> None:
    """A pull request Fleetwarden watches, closed (so no longer among the open ones), is
    PULL_CLOSED with merged and its branch; an open one is not."""
    poller_rig.api.put(REPO, issue(8, -2, is_pull=True, state="closed"))
    poller_rig.api.pulls[(REPO, 8)] = pull(8, -2, state="closed", merged=True)
    poller_rig.api.put(REPO, issue(9, -2, is_pull=True))
    poller_rig.api.pulls[(REPO, 9)] = pull(9, -2)
    poller_rig.watched = [(REPO, 8, True), (REPO, 9, True), (OTHER, 8, True)]
    [event] = await poller_rig.poller().poll_once()
    assert (event.kind, event.merged, event.head, event.delivery) == (
        EventKind.PULL_CLOSED,
        True,
        "fleetwarden/coder/issue-3",
        "poll:acme/app#8:closed",
    )


async def test_reviews_of_a_watched_pull_request_are_review_events(poller_rig: Rig) -> None:
    """Reviews submitted since the cursor are REVIEWs with state and words; pending ones
    and older ones are not."""
    poller_rig.api.put(REPO, issue(8, -2, is_pull=True))
    poller_rig.api.pulls[(REPO, 8)] = pull(8, -2)
    poller_rig.api.reviewed[(REPO, 8)] = [
        ForgeReview(1, "bob", "changes_requested", "Please rename it.", at(-2)),
        ForgeReview(2, "bob", "pending", "draft", at(-1)),
        ForgeReview(3, "bob", "approved", "", at(-24 * 60)),
    ]
    poller_rig.watched = [(REPO, 8, True)]
    [event] = await poller_rig.poller().poll_once()
    assert (event.kind, event.review_state, event.body, event.comment_id) == (
        EventKind.REVIEW,
        "changes_requested",
        "Please rename it.",
        1,
    )
    assert (event.delivery, event.is_pull, event.actor) == ("poll:acme/app#8:review:1", True, "bob")


async def test_a_watched_issue_that_lost_its_trigger_is_said(poller_rig: Rig) -> None:
    """A watched issue closed is CLOSED; a trigger label taken away is UNLABELED with that
    label, the bot unassigned is UNASSIGNED from it — each by whoever did it; a round
    after, nothing new (what it finds again has the same id)."""
    poller_rig.api.put(REPO, issue(3, -5, labels=("bug",)))
    poller_rig.api.change(REPO, 3, "labeled", "fleetwarden:coder", "alice", -30)
    poller_rig.api.change(REPO, 3, "assigned", "fw-bot", "alice", -30)
    poller_rig.api.change(REPO, 3, "unlabeled", "fleetwarden:coder", "bob", -6)
    poller_rig.api.change(REPO, 3, "unassigned", "fw-bot", "carol", -5)
    poller_rig.api.put(REPO, issue(4, -5, state="closed"))
    poller_rig.api.put(REPO, issue(5, -5, labels=("fleetwarden:coder",), assignees=("fw-bot",)))
    poller_rig.api.change(REPO, 5, "labeled", "fleetwarden:coder", "alice", -5)
    poller_rig.api.change(REPO, 5, "assigned", "fw-bot", "alice", -5)
    poller_rig.watched = [(REPO, 3, False), (REPO, 4, False), (REPO, 5, False)]
    poller = poller_rig.poller()
    events = await poller.poll_once()
    kinds = {(e.number, e.kind, e.label, e.assignee, e.actor) for e in events}
    assert (3, EventKind.UNLABELED, "fleetwarden:coder", None, "bob") in kinds
    assert (3, EventKind.UNASSIGNED, None, "fw-bot", "carol") in kinds
    assert (4, EventKind.CLOSED, None, None, "alice") in kinds
    assert not {
        k for k in kinds if k[0] == 5 and k[1] not in (EventKind.LABELED, EventKind.ASSIGNED)
    }
    again = await poller.poll_once()
    assert {e.delivery for e in again if e.number in (3, 4)} <= {
        e.delivery for e in events if e.number in (3, 4)
    }
    assert f"poll:acme/app#3:unassign:{at(-5).isoformat()}" in ids(events)


async def test_a_watched_issue_that_never_had_the_bot_is_not_unassigned(poller_rig: Rig) -> None:
    """A run started by its label, on an issue the bot was never assigned: no UNASSIGNED,
    round after round; unassigning someone else, or taking away a label that is no
    trigger, is nothing either."""
    poller_rig.api.put(REPO, issue(3, -5, labels=("fleetwarden:coder",), assignees=("dave",)))
    poller_rig.api.change(REPO, 3, "labeled", "fleetwarden:coder", "alice", -20)
    poller_rig.api.change(REPO, 3, "labeled", "bug", "alice", -20)
    poller_rig.api.change(REPO, 3, "assigned", "carol", "alice", -20)
    poller_rig.api.change(REPO, 3, "unassigned", "carol", "alice", -5)
    poller_rig.api.change(REPO, 3, "unlabeled", "bug", "alice", -5)
    poller_rig.watched = [(REPO, 3, False)]
    poller = poller_rig.poller()
    for _ in range(2):
        events = await poller.poll_once()
        assert {e.kind for e in events} <= {EventKind.LABELED}
        poller_rig.clock.advance(60)


async def test_an_old_removal_is_no_event(poller_rig: Rig) -> None:
    """A trigger label or the bot's assignment taken away before the cursor (before the
    run began, say) stops nothing: only what was taken since is said."""
    poller_rig.api.put(REPO, issue(3, -5, assignees=("fw-bot",)))
    poller_rig.api.change(REPO, 3, "labeled", "fleetwarden:coder", "alice", -50)
    poller_rig.api.change(REPO, 3, "unlabeled", "fleetwarden:coder", "alice", -40)
    poller_rig.api.change(REPO, 3, "assigned", "fw-bot", "alice", -5)
    poller_rig.cursors[("gh", REPO)] = at(-10).isoformat()
    poller_rig.watched = [(REPO, 3, False)]
    events = await poller_rig.poller().poll_once()
    assert [(e.kind, e.actor) for e in events] == [(EventKind.ASSIGNED, "alice")]


async def test_a_label_the_record_does_not_account_for_is_no_event(poller_rig: Rig) -> None:
    """A trigger label or bot assignment no recorded change gave (or whose newest change
    took it away) is no event: the poller never guesses who acted."""
    poller_rig.api.put(REPO, issue(3, -5, labels=("fleetwarden:coder",), assignees=("fw-bot",)))
    poller_rig.api.put(REPO, issue(4, -5, labels=("fleetwarden:coder",)))
    poller_rig.api.change(REPO, 4, "labeled", "fleetwarden:coder", "alice", -9)
    poller_rig.api.change(REPO, 4, "unlabeled", "fleetwarden:coder", "alice", -8)
    assert await poller_rig.poller().poll_once() == []
    assert "issue_changes acme/app#3" in poller_rig.api.calls


async def test_a_label_given_by_a_triager_is_the_triagers(poller_rig: Rig) -> None:
    """The maintainer's issue labelled by a triager is LABELED by the triager (whom forge
    work then refuses), never by the issue's author."""
    poller_rig.api.put(REPO, issue(3, -5, author="maintainer", labels=("fleetwarden:coder",)))
    poller_rig.api.change(REPO, 3, "labeled", "fleetwarden:coder", "trudy", -5)
    [event] = await poller_rig.poller().poll_once()
    assert (event.kind, event.actor) == (EventKind.LABELED, "trudy")


async def test_a_label_given_again_is_a_new_event(poller_rig: Rig) -> None:
    """A trigger label taken away and given again (a writer's answer to a triager's label,
    say) is a new delivery: the first one's refusal does not swallow it."""
    poller_rig.api.put(REPO, issue(3, -5, labels=("fleetwarden:coder",)))
    poller_rig.api.change(REPO, 3, "labeled", "fleetwarden:coder", "trudy", -5)
    poller = poller_rig.poller()
    [first] = await poller.poll_once()
    poller_rig.api.change(REPO, 3, "unlabeled", "fleetwarden:coder", "alice", 1)
    poller_rig.api.change(REPO, 3, "labeled", "fleetwarden:coder", "alice", 2)
    poller_rig.api.put(REPO, replace(poller_rig.api.issues[REPO][3], updated_at=at(2)))
    poller_rig.clock.advance(180)
    [second] = await poller.poll_once()
    assert (first.actor, second.actor) == ("trudy", "alice")
    assert first.delivery != second.delivery


async def test_the_record_is_asked_once_a_round_per_issue(poller_rig: Rig) -> None:
    """An issue both carrying a trigger and watched has its changes asked once a round;
    an issue that carries no trigger and is not watched, never."""
    poller_rig.api.put(REPO, issue(3, -5, labels=("fleetwarden:coder",), assignees=("fw-bot",)))
    poller_rig.api.put(REPO, issue(4, -5, labels=("bug",)))
    poller_rig.api.change(REPO, 3, "labeled", "fleetwarden:coder", "alice", -5)
    poller_rig.watched = [(REPO, 3, False)]
    await poller_rig.poller().poll_once()
    asked = [c for c in poller_rig.api.calls if c.startswith("issue_changes")]
    assert asked == ["issue_changes acme/app#3"]
    assert "issue acme/app#3" not in poller_rig.api.calls  # read among the open ones already


async def test_a_watched_pull_request_is_read_as_one(poller_rig: Rig) -> None:
    """A watched pull request is read as a pull request (with its reviews), never asked
    for as an issue first."""
    poller_rig.api.put(REPO, issue(8, -2, is_pull=True))
    poller_rig.api.pulls[(REPO, 8)] = pull(8, -2)
    poller_rig.watched = [(REPO, 8, True)]
    await poller_rig.poller().poll_once()
    assert "issue acme/app#8" not in poller_rig.api.calls
    assert {"pull acme/app#8", "reviews acme/app#8"} <= set(poller_rig.api.calls)
